"""The Label Studio side: the labeling config, result <-> records conversion (unit), and the
client against a real Label Studio server (integration)."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from label_studio_sdk.label_interface import LabelInterface

from review.client import LabelStudioClient, LabelStudioError
from review.config import (
    CONTROLS,
    EVIDENCE_COLOUR,
    EVIDENCE_LABEL,
    adjudication_config,
    instructions_html,
    label_config,
    parse_controls,
)
from review.results import (
    document_score,
    from_result,
    heading,
    machine_stances,
    sentence_spans,
    to_prediction,
    to_result,
    to_task,
    write_import_file,
)
from schemas.labeling import DOCUMENT_FLAGS, ENTITY_LABELS, STANCE_LABELS
from schemas.records import (
    AnnotatedDocument,
    DocumentMetadata,
    Entity,
    Evidence,
    SpanLabel,
    Stance,
    StanceLabel,
)
from services.labelstudio import LabelStudioService

TEXT = "Angela Merkel praised the European Union. Critics in Berlin attacked the EU budget."
#       0         1         2         3         4         5         6         7         8
#       0123456789012345678901234567890123456789012345678901234567890123456789012345678901


def _doc(
    doc_id: str = "d1",
    text: str = TEXT,
    model_version: str = "m1",
    entities: list[Entity] | None = None,
    stances: list[Stance] | None = None,
) -> AnnotatedDocument:
    if entities is None:
        entities = [
            Entity(start=0, end=13, label="PERSON", text="Angela Merkel", score=0.91),
            Entity(start=26, end=40, label="ORG", text="European Union", score=0.8),
            Entity(start=53, end=59, label="GPE", text="Berlin", score=0.99),
        ]
    if stances is None:
        stances = [
            Stance(
                target="European Union",
                label="FAVOR",
                score=0.7,
                evidence=[Evidence(start=0, end=41)],
            )
        ]
    return AnnotatedDocument(
        source=f"corpus/samples/{doc_id}.txt",
        doc_id=doc_id,
        text=text,
        metadata=DocumentMetadata(title=f"Title {doc_id}"),
        content_hash=f"hash-{doc_id}-{len(text)}",
        entities=entities,
        stances=stances,
        model_version=model_version,
    )


# ---------------------------------------------------------------- config (unit)


def test_labelstudio_config_controls_read_back_from_xml() -> None:
    config = label_config()
    root = ET.fromstring(config)
    assert parse_controls(config) == CONTROLS
    assert CONTROLS.text == "text"
    by_name = {node.get("name"): node for node in root.iter() if node.get("name")}
    entity_values = [x.get("value") for x in by_name[CONTROLS.entities].iter("Label")]
    assert entity_values == list(ENTITY_LABELS)
    assert [x.get("value") for x in by_name[CONTROLS.evidence].iter("Label")] == [EVIDENCE_LABEL]
    assert [x.get("value") for x in by_name[CONTROLS.stance].iter("Choice")] == list(STANCE_LABELS)
    assert [x.get("value") for x in by_name[CONTROLS.flags].iter("Choice")] == list(DOCUMENT_FLAGS)
    assert by_name[CONTROLS.flags].get("choice") == "multiple"
    for per_region in (CONTROLS.stance, CONTROLS.stance_target):
        assert by_name[per_region].get("perRegion") == "true"
    # every variable of the config is a field of our task data; `$source` is not one (the
    # labeling UI resolves it to its own task source and showed the raw task JSON)
    variables = {o.value_name for o in LabelInterface(config).objects if o.value_is_variable}
    variables |= {"heading"}  # the Header's, which LabelInterface does not list as an object
    assert variables <= set(to_task(_doc())) and "$source" not in config
    assert by_name[CONTROLS.text].get("showLabels") == "true"  # labels written on the spans


def test_labelstudio_config_lays_out_stance_beside_the_text_with_own_colours_and_keys() -> None:
    root = ET.fromstring(label_config())
    side = next(v for v in root.iter("View") if v.get("className") == "cf-side")
    beside = {n.get("name") for n in side.iter() if n.get("name")}
    assert {CONTROLS.stance, CONTROLS.stance_target, CONTROLS.flags} <= beside
    assert CONTROLS.text not in beside  # the text is in the other column
    (shown_when,) = [v for v in side.iter("View") if v.get("visibleWhen") == "region-selected"]
    assert shown_when.get("whenTagName") == CONTROLS.evidence
    entity_colours = {
        x.get("background") for x in root.iter("Label") if x.get("value") != EVIDENCE_LABEL
    }
    assert EVIDENCE_COLOUR not in entity_colours and len(entity_colours) == len(ENTITY_LABELS)
    keys = [
        x.get("hotkey") for x in root.iter() if x.tag in ("Label", "Choice") and x.get("hotkey")
    ]
    assert len(keys) == len(set(keys)) == len(ENTITY_LABELS) + 1 + len(STANCE_LABELS)
    assert "u" not in keys  # Label Studio's own "unselect region"


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        pytest.param(
            ('name="flags"', 'name="flags" perRegion="true"'), "two stance", id="two-stance"
        ),
        pytest.param(
            ('name="stance" toName="text" perRegion="true"', 'name="stance" toName="text"'),
            "two flags",
            id="two-flags",
        ),
        pytest.param(('perRegion="true" editable', "editable"), "lacks", id="no-target"),
    ],
)
def test_labelstudio_config_missing_control_is_refused(
    broken: tuple[str, str], message: str
) -> None:
    config = label_config()
    assert broken[0] in config
    with pytest.raises(ValueError, match=message):
        parse_controls(config.replace(*broken))


def test_labelstudio_adjudication_config_is_valid_and_keeps_review_controls() -> None:
    config = adjudication_config()
    LabelInterface(config).validate()
    assert parse_controls(config) == CONTROLS
    assert config.index("$disputes_html") < config.index('value="$text"')  # disputes first


def test_labelstudio_instructions_are_html() -> None:
    html = instructions_html()
    assert html.startswith("<h3>") and html.count("<li>") >= 3


# ---------------------------------------------------------------- result <-> records (unit)


E_MERKEL = SpanLabel(start=0, end=13, label="PERSON")
E_EU = SpanLabel(start=26, end=40, label="ORG")
E_BERLIN = SpanLabel(start=53, end=59, label="GPE")
S1 = Evidence(start=0, end=41)
S2 = Evidence(start=42, end=82)


@pytest.mark.parametrize(
    ("entities", "stances", "flags"),
    [
        ([], [], []),
        ([E_MERKEL], [], []),
        ([E_MERKEL, E_EU, E_BERLIN], [], []),
        ([], [StanceLabel(target="European Union", label="FAVOR", evidence=(S1,))], []),
        (
            [E_MERKEL],
            [StanceLabel(target="European Union", label="AGAINST", evidence=(S1, S2))],
            ["cleaning_error"],
        ),
        (
            [E_EU],
            [
                StanceLabel(target="Angela Merkel", label="NEUTRAL", evidence=(S2,)),
                StanceLabel(target="European Union", label="FAVOR", evidence=(S1,)),
            ],
            ["cleaning_error", "unusable"],
        ),
        # two targets on the same sentence stay apart
        (
            [],
            [
                StanceLabel(target="Berlin", label="AGAINST", evidence=(S2,)),
                StanceLabel(target="European Union", label="AGAINST", evidence=(S2,)),
            ],
            [],
        ),
    ],
)
def test_labelstudio_result_round_trip(
    entities: list[SpanLabel], stances: list[StanceLabel], flags: list[str]
) -> None:
    result = to_result(TEXT, entities, stances, flags)
    assert from_result(result) == (entities, stances, flags)
    assert from_result(json.loads(json.dumps(result))) == (entities, stances, flags)


def _region(rid: str, start: int, end: int, target: str | None, stance: str | None) -> list[dict]:
    items: list[dict] = [
        {
            "id": rid,
            "from_name": CONTROLS.evidence,
            "to_name": CONTROLS.text,
            "type": "labels",
            "value": {"start": start, "end": end, "text": "x", "labels": [EVIDENCE_LABEL]},
        }
    ]
    if target is not None:
        items.append(
            {
                "id": rid,
                "from_name": CONTROLS.stance_target,
                "to_name": CONTROLS.text,
                "type": "textarea",
                "value": {"start": start, "end": end, "text": [target]},
            }
        )
    if stance is not None:
        items.append(
            {
                "id": rid,
                "from_name": CONTROLS.stance,
                "to_name": CONTROLS.text,
                "type": "choices",
                "value": {"start": start, "end": end, "choices": [stance]},
            }
        )
    return items


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param(_region("a", 0, 41, None, "FAVOR"), [], id="no-target-dropped"),
        pytest.param(_region("a", 0, 41, "EU", None), [], id="no-stance-dropped"),
        pytest.param(_region("a", 0, 41, "   ", "FAVOR"), [], id="blank-target-dropped"),
        pytest.param(
            _region("a", 0, 41, "  EU ", "FAVOR"),
            [StanceLabel(target="EU", label="FAVOR", evidence=(S1,))],
            id="target-stripped",
        ),
        pytest.param(
            _region("b", 42, 82, "EU", "AGAINST") + _region("a", 0, 41, "EU", "FAVOR"),
            [StanceLabel(target="EU", label="FAVOR", evidence=(S1, S2))],
            id="tie-goes-to-earliest-region",
        ),
        pytest.param(
            _region("a", 0, 41, "EU", "FAVOR")
            + _region("b", 42, 82, "EU", "AGAINST")
            + _region("c", 83, 90, "EU", "AGAINST"),
            [
                StanceLabel(
                    target="EU",
                    label="AGAINST",
                    evidence=(S1, S2, Evidence(start=83, end=90)),
                )
            ],
            id="majority-of-regions",
        ),
        pytest.param(
            [{"id": "z", "from_name": "other", "type": "labels", "value": {"labels": ["X"]}}],
            [],
            id="unknown-control-ignored",
        ),
    ],
)
def test_labelstudio_from_result_groups_stances_by_target(
    result: list[dict], expected: list[StanceLabel]
) -> None:
    entities, stances, flags = from_result(result)
    assert (entities, stances, flags) == ([], expected, [])


def test_labelstudio_to_result_leaves_out_labels_outside_schema() -> None:
    kept = Entity(start=0, end=13, label="PERSON", text="Angela Merkel", score=0.9)
    dropped = Entity(start=0, end=3, label="CARDINAL", text="Ang", score=0.9)
    entities, _, _ = from_result(to_result(TEXT, [kept, dropped]))
    assert entities == [E_MERKEL]


@pytest.mark.parametrize(
    ("entities", "target", "evidence"),
    [
        pytest.param(
            [Entity(start=53, end=59, label="GPE", text="Berlin", score=0.9)],
            "Berlin",
            Evidence(start=42, end=len(TEXT)),
            id="sentence-of-entity-mention",
        ),
        pytest.param([], "european union", S1, id="sentence-of-name-in-text"),
        pytest.param([], "Paris", S1, id="first-sentence"),
    ],
)
def test_labelstudio_stance_without_evidence_gets_a_sentence_region(
    entities: list[Entity], target: str, evidence: Evidence
) -> None:
    doc = _doc(entities=entities, stances=[Stance(target=target, label="AGAINST", score=0.6)])
    _, stances, _ = from_result(to_prediction(doc)["result"])
    assert stances == [StanceLabel(target=target, label="AGAINST", evidence=(evidence,))]


def test_labelstudio_to_prediction_carries_scores_and_version() -> None:
    doc = _doc()
    prediction = to_prediction(doc)
    assert prediction["model_version"] == "m1"
    # half the lowest item score, half the mean of the entity and stance scores
    assert prediction["score"] == pytest.approx(0.5 * 0.7 + 0.5 * (0.91 + 0.8 + 0.99 + 0.7) / 4)
    regions = [r for r in prediction["result"] if r["type"] == "labels"]
    assert sorted(r["score"] for r in regions) == [0.7, 0.8, 0.91, 0.99]
    assert to_prediction(doc) == prediction  # stable region ids: same doc, same prediction
    for item in prediction["result"]:
        value = item["value"]
        if item["type"] == "labels":
            assert value["text"] == doc.text[value["start"] : value["end"]]


@pytest.mark.parametrize(
    ("title", "text", "shown"),
    [
        ("EU budget row", "EU budget row\n\nBerlin attacked it.", ""),  # the text's first line
        ("EU budget row", "  EU  budget row: the latest\nBerlin attacked it.", ""),  # spaces
        ("EU Budget Row", "eu budget row\nBerlin attacked it.", ""),  # case
        ("EU budget row", "Berlin attacked the EU budget row.", "EU budget row"),  # only later
        ("EU  budget\nrow", "Berlin attacked it.", "EU budget row"),  # shown on one line
        ("", "Berlin attacked it.", ""),  # no title
    ],
)
def test_labelstudio_heading_only_when_the_text_does_not_open_with_the_title(
    title: str, text: str, shown: str
) -> None:
    doc = _doc(text=text)
    doc.metadata.title = title
    assert heading(doc) == shown
    assert to_task(doc)["title"] == title and to_task(doc)["text"] == text  # neither is cut


def test_labelstudio_to_task_has_keys_and_display_fields() -> None:
    task = to_task(_doc())
    assert task == {
        "text": TEXT,
        "doc_id": "d1",
        "content_hash": f"hash-d1-{len(TEXT)}",
        "title": "Title d1",
        "heading": "Title d1",  # the text does not open with its title
        "byline": "Source: corpus/samples/d1.txt",
        "source_url": "corpus/samples/d1.txt",
    }
    linked = _doc()
    linked.metadata.source_url = "https://example.org/a?b=1&c=<2>"
    linked.metadata.authors = ["A. Writer"]
    assert to_task(linked)["byline"] == (
        'Source: <a href="https://example.org/a?b=1&amp;c=&lt;2&gt;" target="_blank" '
        'rel="noopener">https://example.org/a?b=1&amp;c=&lt;2&gt;</a> · A. Writer'
    )


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("", []),
        ("One sentence without a stop", ["One sentence without a stop"]),
        (TEXT, [TEXT[0:41], TEXT[42:]]),
        ("Title\n1. The EU acted. It won.", ["Title", "The EU acted.", "It won."]),
        (
            "Mr. Smith met J. Doe in the U.S. on Monday. Then he left!",
            ["Mr. Smith met J. Doe in the U.S. on Monday.", "Then he left!"],
        ),
        ("  - A bullet. \n\n 2) Another one?\n3.", ["A bullet.", "Another one?"]),
        ("He said: “Yes.” Then silence.", ["He said: “Yes.”", "Then silence."]),
    ],
)
def test_labelstudio_sentence_spans(text: str, sentences: list[str]) -> None:
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == sentences
    assert all(text[s:e].strip() == text[s:e] for s, e in spans)


def test_labelstudio_machine_evidence_is_a_sentence_one_region_per_sentence_and_target() -> None:
    text = "EU sanctions\n1. Brussels defended the EU plan. Critics in Berlin attacked the EU."
    doc = _doc(
        text=text,
        entities=[],
        stances=[
            # the model's evidence: the title plus the list number, and a half sentence
            Stance(
                target="European Union",
                label="FAVOR",
                score=0.6,
                evidence=[Evidence(start=0, end=15), Evidence(start=20, end=30)],
            ),
            Stance(
                target="Berlin",
                label="AGAINST",
                score=0.5,
                evidence=[Evidence(start=48, end=60), Evidence(start=60, end=80)],
            ),
        ],
    )
    doc.metadata.title = "EU sanctions"
    (eu, berlin) = machine_stances(doc)
    sentence_1 = (text.index("Brussels"), text.index("plan.") + 5)
    sentence_2 = (text.index("Critics"), len(text))
    assert [(e.start, e.end) for e in eu.evidence] == [sentence_1]
    assert [(e.start, e.end) for e in berlin.evidence] == [sentence_2]
    regions = [r for r in to_prediction(doc)["result"] if r["from_name"] == CONTROLS.evidence]
    assert sorted((r["value"]["start"], r["value"]["end"]) for r in regions) == [
        sentence_1,
        sentence_2,
    ]
    # two targets on one sentence: one region each, both kept
    both = _doc(
        stances=[
            Stance(target="Berlin", label="AGAINST", score=0.5, evidence=[S2]),
            Stance(target="European Union", label="AGAINST", score=0.5, evidence=[S2, S2]),
        ]
    )
    evidence = [r for r in to_prediction(both)["result"] if r["from_name"] == CONTROLS.evidence]
    assert len(evidence) == 2 and len({r["id"] for r in evidence}) == 2


@pytest.mark.parametrize(
    ("entity_scores", "stance_scores", "expected"),
    [
        pytest.param([], [], 1.0, id="nothing-to-review"),
        pytest.param([0.9], [], 0.9, id="one-item"),
        pytest.param(
            [0.37, 0.37],
            [0.9],
            pytest.approx(0.37 / 2 + (0.37 * 2 + 0.9) / 6),
            id="prior-ties-broken-by-stance",
        ),
        pytest.param([0.8, 0.2], [], pytest.approx(0.1 + 0.25), id="lowest-weighs-half"),
    ],
)
def test_labelstudio_document_score(
    entity_scores: list[float], stance_scores: list[float], expected: float
) -> None:
    doc = _doc(
        entities=[
            Entity(start=0, end=13, label="PERSON", text="Angela Merkel", score=s)
            for s in entity_scores
        ],
        stances=[Stance(target="EU", label="FAVOR", score=s, evidence=[S1]) for s in stance_scores],
    )
    assert document_score(doc) == expected


def test_labelstudio_write_import_file(tmp_path: Path) -> None:
    path = tmp_path / "review" / "import.json"
    docs = [_doc("a"), _doc("b", model_version="", entities=[], stances=[])]
    assert write_import_file(docs, path) == 2
    tasks = json.loads(path.read_text())
    assert [t["data"]["doc_id"] for t in tasks] == ["a", "b"]
    assert tasks[0]["predictions"][0]["model_version"] == "m1"
    assert "predictions" not in tasks[1]  # nothing to predict


# ---------------------------------------------------------------- integration


def _project(client: LabelStudioClient) -> int:
    return client.ensure_project(f"test-{uuid.uuid4().hex[:8]}", label_config())


def _annotator(client: LabelStudioClient, name: str) -> tuple[str, str]:
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.org"
    password = f"pw-{uuid.uuid4().hex}"
    client.create_user(email, password, first_name=name)
    return email, password


@pytest.mark.integration
def test_labelstudio_service_start_reuses_running_server(label_studio: LabelStudioService) -> None:
    if not isinstance(label_studio, LabelStudioService):
        pytest.skip("the session reuses a Label Studio it did not start")
    pid = label_studio.status()["pid"]
    label_studio.start(timeout=10)  # live, ours, token works: nothing to do
    status = label_studio.status()
    assert status["running"] is True and status["pid"] == pid
    assert status["url"] == label_studio.url


@pytest.mark.integration
def test_labelstudio_ensure_project_is_idempotent(
    ls_client: LabelStudioClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    title = f"idem-{uuid.uuid4().hex[:8]}"
    first = ls_client.ensure_project(title, label_config(), instructions_html())
    calls: list[str] = []
    hooks = ls_client.http.event_hooks["request"]
    monkeypatch.setattr(
        ls_client.http,
        "event_hooks",
        {
            "request": [*hooks, lambda r: calls.append(r.method)],
            "response": ls_client.http.event_hooks["response"],
        },
    )
    assert ls_client.ensure_project(title, label_config(), instructions_html()) == first
    assert calls and set(calls) == {"GET"}  # nothing to change, nothing written
    monkeypatch.undo()
    assert [p["id"] for p in ls_client.projects() if p["title"] == title] == [first]
    # a changed config is applied in place
    changed = label_config().replace('value="Document flags"', 'value="Flags"')
    assert ls_client.ensure_project(title, changed, instructions_html(), overlap=2) == first
    project = ls_client.project(first)
    assert project["label_config"] == changed
    assert project["maximum_annotations"] == 2
    assert project["expert_instruction"] == instructions_html()
    # uncertain work first: the label stream samples by prediction score, and the Data
    # Manager has a tab listing tasks that way (created once)
    assert project["sampling"] == "Uncertainty sampling"
    assert ls_client.ensure_uncertain_first_tab(first) == ls_client.ensure_uncertain_first_tab(
        first
    )


@pytest.mark.integration
def test_labelstudio_config_round_trips_through_server(ls_client: LabelStudioClient) -> None:
    project = ls_client.project(_project(ls_client))
    assert parse_controls(project["label_config"]) == CONTROLS
    # the server's own parse of the config names the same controls
    parsed = project.get("parsed_label_config") or {}
    assert set(parsed) == {
        CONTROLS.entities,
        CONTROLS.evidence,
        CONTROLS.stance_target,
        CONTROLS.stance,
        CONTROLS.flags,
    }
    assert all(parsed[name]["to_name"] == [CONTROLS.text] for name in parsed)


@pytest.mark.integration
def test_labelstudio_push_is_idempotent(ls_client: LabelStudioClient) -> None:
    project = _project(ls_client)
    docs = [_doc(f"doc-{i}") for i in range(5)]
    report = ls_client.push(project, docs, batch_size=2)
    assert (report.created, report.updated, report.unchanged, report.skipped_human) == (5, 0, 0, 0)
    assert set(report.task_ids) == {d.doc_id for d in docs}

    again = ls_client.push(project, docs)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert again.task_ids == report.task_ids

    tasks = ls_client.tasks(project)
    assert sorted(t["data"]["doc_id"] for t in tasks) == sorted(d.doc_id for d in docs)
    for task in tasks:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "m1"
        entities, stances, _ = from_result(prediction["result"])
        assert [(e.start, e.end, e.label) for e in entities] == [
            (e.start, e.end, e.label) for e in docs[0].entities
        ]
        assert [(s.target, s.label) for s in stances] == [("European Union", "FAVOR")]
    assert ls_client.project(project)["model_version"] == "m1"


@pytest.mark.integration
def test_labelstudio_push_repairs_interrupted_import_without_duplicates(
    ls_client: LabelStudioClient,
) -> None:
    project = _project(ls_client)
    docs = [_doc(f"doc-{i}") for i in range(4)]
    ls_client.push(project, docs[:2])  # the run that died before recording anything
    report = ls_client.push(project, docs)
    assert (report.created, report.unchanged) == (2, 2)
    doc_ids = [t["data"]["doc_id"] for t in ls_client.tasks(project, fields=["id", "data"])]
    assert sorted(doc_ids) == sorted(d.doc_id for d in docs)


@pytest.mark.integration
def test_labelstudio_push_updates_untouched_predictions_keeps_annotated(
    ls_client: LabelStudioClient,
) -> None:
    project = _project(ls_client)
    email, password = _annotator(ls_client, "ann")
    v1 = [_doc("keep"), _doc("move"), _doc("human")]
    ids = ls_client.push(project, v1).task_ids
    human_result = to_result(TEXT, [E_MERKEL])
    ls_client.submit_annotation(ids["human"], human_result, email=email, password=password)
    before = {t["id"]: t for t in ls_client.tasks(project)}

    new_entities = [Entity(start=0, end=6, label="PERSON", text="Angela", score=0.5)]
    v2 = [
        _doc("keep"),  # same model_version and content: unchanged
        _doc("move", model_version="m2", entities=new_entities),
        _doc("human", model_version="m2", entities=new_entities),
    ]
    report = ls_client.push(project, v2)
    assert (report.created, report.updated, report.unchanged, report.skipped_human) == (0, 1, 1, 1)
    assert ls_client.project(project)["model_version"] == "m2"

    predictions = ls_client._predictions_by_task(project)
    (moved,) = predictions[ids["move"]]
    assert moved["id"] == before[ids["move"]]["predictions"][0]["id"]  # replaced in place
    assert moved["model_version"] == "m2"
    assert from_result(moved["result"])[0] == [SpanLabel(start=0, end=6, label="PERSON")]
    (kept,) = predictions[ids["human"]]
    assert (
        kept["model_version"] == "m1"
        and kept["result"] == (before[ids["human"]]["predictions"][0]["result"])
    )
    assert len(ls_client.tasks(project, fields=["id"])) == 3

    # changed text of an untouched document updates the task data too
    v3 = [_doc("keep", text=TEXT + " More.")]
    assert ls_client.push(project, v3).updated == 1
    (task,) = [t for t in ls_client.tasks(project) if t["id"] == ids["keep"]]
    assert task["data"]["text"] == TEXT + " More."


@pytest.mark.integration
def test_labelstudio_collect_two_annotators_with_identity(ls_client: LabelStudioClient) -> None:
    project = _project(ls_client)
    ids = ls_client.push(project, [_doc("a"), _doc("b")]).task_ids
    (alice, alice_pw), (bob, bob_pw) = _annotator(ls_client, "alice"), _annotator(ls_client, "bob")
    stance = StanceLabel(target="European Union", label="AGAINST", evidence=(S1, S2))
    alice_result = to_result(TEXT, [E_MERKEL, E_EU], [stance], ["cleaning_error"])
    bob_result = to_result(TEXT, [E_MERKEL])
    ls_client.submit_annotation(
        ids["a"], alice_result, email=alice, password=alice_pw, lead_time=42.5
    )
    ls_client.submit_annotation(ids["a"], bob_result, email=bob, password=bob_pw)
    ls_client.submit_annotation(ids["b"], [], email=bob, password=bob_pw, was_cancelled=True)

    collected = ls_client.collect(project, adjudicators=[bob])
    assert collected.cancelled == 1
    (task,) = collected
    assert (task.task_id, task.doc_id, task.text) == (ids["a"], "a", TEXT)
    by_annotator = {a.annotator: a for a in task.annotations}
    assert set(by_annotator) == {alice, bob}
    a = by_annotator[alice]
    assert (a.entities, a.stances, a.flags, a.lead_time) == (
        [E_MERKEL, E_EU],
        [stance],
        ["cleaning_error"],
        42.5,
    )
    assert a.role == "annotator" and by_annotator[bob].role == "adjudicator"
    assert by_annotator[bob].entities == [E_MERKEL] and by_annotator[bob].stances == []
    assert collected.cursor is not None and task.updated_at is not None


@pytest.mark.integration
def test_labelstudio_collect_is_incremental(ls_client: LabelStudioClient) -> None:
    project = _project(ls_client)
    ids = ls_client.push(project, [_doc("a"), _doc("b"), _doc("c")]).task_ids
    email, password = _annotator(ls_client, "inc")
    first_id = ls_client.submit_annotation(
        ids["a"], to_result(TEXT, [E_MERKEL]), email=email, password=password
    )
    first = ls_client.collect(project)
    assert [t.doc_id for t in first] == ["a"]

    nothing = ls_client.collect(project, since=first.cursor)
    assert list(nothing) == [] and nothing.cursor == first.cursor
    assert first.cursor is not None
    naive = first.cursor.removesuffix("Z")  # a cursor without a zone is read as UTC
    assert list(ls_client.collect(project, since=naive)) == []

    # pushing predictions again touches tasks but brings no human work
    ls_client.push(project, [_doc("c", model_version="m9")])
    assert list(ls_client.collect(project, since=first.cursor)) == []

    ls_client.submit_annotation(ids["b"], to_result(TEXT, [E_EU]), email=email, password=password)
    second = ls_client.collect(project, since=first.cursor)
    assert [t.doc_id for t in second] == ["b"]
    assert second.cursor is not None and second.cursor > first.cursor  # type: ignore[operator]

    # an edited annotation brings its task back, with all its annotations
    ls_client.update_annotation(
        first_id, to_result(TEXT, [E_BERLIN]), email=email, password=password
    )
    third = ls_client.collect(project, since=second.cursor)
    assert [t.doc_id for t in third] == ["a"]
    assert third[0].annotations[0].entities == [E_BERLIN]


@pytest.mark.integration
def test_labelstudio_client_reports_http_errors(ls_client: LabelStudioClient) -> None:
    with pytest.raises(LabelStudioError) as info:
        ls_client.project(999_999)
    assert info.value.status == 404
    bad = LabelStudioClient(ls_client.url, "0" * 40)
    with pytest.raises(LabelStudioError) as info:
        bad.projects()
    assert info.value.status == 401


@pytest.mark.integration
def test_labelstudio_export_snapshot_has_full_predictions_and_all_tasks(
    ls_client: LabelStudioClient,
) -> None:
    project = _project(ls_client)
    ids = ls_client.push(project, [_doc("a"), _doc("b")]).task_ids
    email, password = _annotator(ls_client, "exp")
    ls_client.submit_annotation(
        ids["a"], to_result(TEXT, [E_MERKEL]), email=email, password=password
    )
    exported = {t["data"]["doc_id"]: t for t in ls_client.export_snapshot(project)}
    assert set(exported) == {"a", "b"}  # the unannotated task too
    (prediction,) = exported["b"]["predictions"]
    assert prediction["model_version"] == "m1" and prediction["result"]
    (annotation,) = exported["a"]["annotations"]
    assert annotation["completed_by"]["email"] == email
    only = ls_client.export_snapshot(project, only_annotated=True)
    assert [t["data"]["doc_id"] for t in only] == ["a"]


@pytest.mark.integration
def test_labelstudio_uncertain_first_tab_lists_least_certain_documents_first(
    ls_client: LabelStudioClient,
) -> None:
    project = _project(ls_client)
    docs = []
    for name, score in (("sure", 0.95), ("doubtful", 0.2), ("middling", 0.6)):
        doc = _doc(name)
        doc.entities = [e.model_copy(update={"score": score}) for e in doc.entities]
        doc.stances = [s.model_copy(update={"score": score}) for s in doc.stances]
        docs.append(doc)
    ids = ls_client.push(project, docs).task_ids
    scores = {t["id"]: t["predictions"][0]["score"] for t in ls_client.tasks(project)}
    assert scores[ids["doubtful"]] < scores[ids["middling"]] < scores[ids["sure"]]
    tab = ls_client.ensure_uncertain_first_tab(project)
    expected = [ids["doubtful"], ids["middling"], ids["sure"]]
    assert [t["id"] for t in ls_client.tasks(project, fields=["id"], view=tab)] == expected
    by_score = ls_client.tasks(project, fields=["id"], ordering=["tasks:predictions_score"])
    assert [t["id"] for t in by_score] == expected


def test_labelstudio_client_unreachable_server_is_an_error_without_status() -> None:
    from tests.ls_fixtures import free_port

    client = LabelStudioClient(f"http://127.0.0.1:{free_port()}", "0" * 40, timeout=5)
    with pytest.raises(LabelStudioError) as info:
        client.projects()
    assert info.value.status is None  # worth retrying (flows/tasks.py), unlike a 4xx
