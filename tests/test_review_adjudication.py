"""A dispute goes to the adjudication project and comes back resolved; re-runs create nothing
twice; a crash between import and bookkeeping is repaired by the re-run. Real Label Studio."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from corpus.adjudication import adjudicate
from review.adjudication import (
    ADJUDICATION_SUFFIX,
    AGREED_VERSION,
    AdjudicationItem,
    adjudication_task,
    adjudication_title,
)
from review.client import LabelStudioClient
from review.config import adjudication_config, label_config, parse_controls
from review.results import from_result, to_result
from schemas.records import AdjudicationInput, HumanAnnotation, SpanLabel, StanceLabel
from tests.ls_fixtures import ReviewTeam
from tests.test_labelstudio import E_BERLIN, E_MERKEL, S1, TEXT, _doc

E_MERKEL_ORG = SpanLabel(start=0, end=13, label="ORG")


def test_review_adjudication_config_keeps_review_controls() -> None:
    config = adjudication_config()
    assert parse_controls(config) == parse_controls(label_config())
    assert 'value="$disputes_html"' in config
    assert adjudication_title("news") == "news" + ADJUDICATION_SUFFIX


@pytest.mark.integration
def test_review_adjudication_dispute_goes_to_adjudicator_and_comes_back_resolved(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    title = f"adj-{uuid.uuid4().hex[:8]}"
    review = ls_client.ensure_project(title, label_config(), overlap=2)
    doc, calm = _doc("disputed"), _doc("agreed")
    ids = ls_client.push(review, [doc, calm]).task_ids
    a, b, _ = review_team.annotators
    judge = review_team.adjudicator
    # a and b disagree on Merkel's label and agree on Berlin; both agree on the calm document
    ls_client.submit_annotation(
        ids["disputed"], to_result(TEXT, [E_MERKEL, E_BERLIN]), email=a.email, password=a.password
    )
    ls_client.submit_annotation(
        ids["disputed"],
        to_result(TEXT, [E_MERKEL_ORG, E_BERLIN]),
        email=b.email,
        password=b.password,
    )
    for person in (a, b):
        ls_client.submit_annotation(
            ids["agreed"], to_result(TEXT, [E_BERLIN]), email=person.email, password=person.password
        )
    collected = {t.doc_id: t for t in ls_client.collect(review, adjudicators=[judge.email])}
    assert all(t.done for t in collected.values())
    results = {
        d: adjudicate(AdjudicationInput(doc_id=d, annotations=t.annotations))
        for d, t in collected.items()
    }
    assert results["agreed"].status == "adjudicated" or results["agreed"].status == "reviewed"
    assert results["disputed"].status == "disputed"
    disputes = results["disputed"].disputes
    assert disputes

    adj = ls_client.ensure_adjudication_project(title)
    assert ls_client.ensure_adjudication_project(title) == adj
    project = ls_client.project(adj)
    assert project["title"] == adjudication_title(title) and project["maximum_annotations"] == 1
    assert project["show_skip_button"] is False  # a dispute is decided, not skipped
    items = [AdjudicationItem(doc, collected["disputed"].annotations, results["disputed"])]
    report = ls_client.push_adjudication(adj, items)
    assert (report.created, report.unchanged) == (1, 0)
    again = ls_client.push_adjudication(adj, items)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert again.task_ids == report.task_ids

    # the task shows both versions of the disputed span, without emails; the draft the UI
    # pre-fills holds only what both agreed on (Berlin), not Merkel's disputed label
    (task,) = ls_client.tasks(adj)
    assert task["data"]["doc_id"] == "disputed" and task["data"]["disputes"] == len(disputes)
    table = task["data"]["disputes_html"]
    assert "annotator-1 said" in table and "annotator-2 said" in table
    assert "Angela Merkel" in table and "PERSON" in table and "ORG" in table
    assert a.email not in table and b.email not in table
    (draft,) = ls_client._predictions_by_task(adj)[task["id"]]
    assert draft["model_version"] == AGREED_VERSION
    assert from_result(draft["result"])[0] == [E_BERLIN]
    assert ls_client.project(adj)["model_version"] == AGREED_VERSION

    # the adjudicator gets it from the label stream and decides; an annotator who wanders
    # into the adjudication project is not taken as an adjudicator
    offered = ls_client.next_task(adj, email=judge.email, password=judge.password)
    assert offered is not None and offered["id"] == task["id"]
    ls_client.submit_annotation(
        task["id"],
        to_result(TEXT, [E_MERKEL, E_BERLIN]),
        email=judge.email,
        password=judge.password,
    )
    ls_client.submit_annotation(
        task["id"], to_result(TEXT, [E_MERKEL_ORG]), email=a.email, password=a.password
    )
    decided = ls_client.collect_adjudication(adj, adjudicators=[judge.email])
    (back,) = decided
    assert decided.ignored == 1
    assert back.doc_id == "disputed" and back.done
    assert [(h.annotator, h.role) for h in back.annotations] == [(judge.email, "adjudicator")]
    assert ls_client.collect_adjudication(adj, decided.cursor, adjudicators=[judge.email]) == []

    final = adjudicate(
        AdjudicationInput(
            doc_id="disputed", annotations=[*collected["disputed"].annotations, *back.annotations]
        )
    )
    assert final.status == "adjudicated" and not final.disputes
    assert [(e.start, e.end, e.label) for e in final.entities] == [
        (0, 13, "PERSON"),
        (53, 59, "GPE"),
    ]

    # a task holding the adjudicator's work is never altered nor duplicated
    late = [
        AdjudicationItem(
            doc, [*collected["disputed"].annotations, _late(a.email)], results["disputed"]
        )
    ]
    after = ls_client.push_adjudication(adj, late)
    assert (after.created, after.skipped_human) == (0, 1)
    assert len(ls_client.tasks(adj, fields=["id"])) == 1


def _late(email: str) -> HumanAnnotation:
    return HumanAnnotation(annotator=email, entities=[E_BERLIN])


@pytest.mark.integration
def test_review_adjudication_updates_untouched_task_when_versions_change(
    ls_client: LabelStudioClient,
) -> None:
    adj = ls_client.ensure_adjudication_project(f"adj-up-{uuid.uuid4().hex[:8]}")
    doc = _doc("d")
    v1 = [HumanAnnotation(annotator="x@e.org", entities=[E_MERKEL]), _late("y@e.org")]
    first = ls_client.push_adjudication(adj, [_item(doc, v1)])
    v2 = [v1[0], HumanAnnotation(annotator="y@e.org", entities=[E_MERKEL_ORG])]
    second = ls_client.push_adjudication(adj, [_item(doc, v2)])
    assert (second.created, second.updated) == (0, 1)
    assert second.task_ids == first.task_ids
    (task,) = ls_client.tasks(adj)
    assert "ORG" in task["data"]["disputes_html"]


def _item(doc: Any, annotations: list[HumanAnnotation]) -> AdjudicationItem:
    decision = adjudicate(AdjudicationInput(doc_id=doc.doc_id, annotations=annotations))
    return AdjudicationItem(doc, annotations, decision)


@pytest.mark.integration
def test_review_adjudication_crash_after_import_is_repaired_without_duplicates(
    ls_client: LabelStudioClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after Label Studio imported the tasks and before push_adjudication
    returned (so before the caller recorded anything): the re-run finds them and adds none."""
    adj = ls_client.ensure_adjudication_project(f"adj-crash-{uuid.uuid4().hex[:8]}")
    items = [
        _item(_doc(f"c{i}"), [HumanAnnotation(annotator="x@e.org", entities=[E_MERKEL])])
        for i in range(3)
    ]
    real = ls_client.sdk.projects.import_tasks

    def dies_after_import(*args: Any, **kwargs: Any) -> object:
        real(*args, **kwargs)
        raise KeyboardInterrupt("killed between import and bookkeeping")

    monkeypatch.setattr(ls_client.sdk.projects, "import_tasks", dies_after_import)
    with pytest.raises(KeyboardInterrupt):
        ls_client.push_adjudication(adj, items)
    monkeypatch.undo()
    assert len(ls_client.tasks(adj, fields=["id"])) == 3  # imported, then the crash
    report = ls_client.push_adjudication(adj, items)
    assert (report.created, report.unchanged) == (0, 3)
    assert sorted(report.task_ids) == ["c0", "c1", "c2"]
    assert len(ls_client.tasks(adj, fields=["id"])) == 3


def test_review_adjudication_task_shows_versions_side_by_side_and_drafts_only_agreement() -> None:
    doc = _doc("u")
    eu = StanceLabel(target="European Union", label="FAVOR", evidence=(S1,))
    annotations = [
        HumanAnnotation(annotator="zed@e.org", entities=[E_MERKEL_ORG]),
        HumanAnnotation(annotator="amy@e.org", entities=[E_BERLIN, E_MERKEL], stances=[eu]),
        # resubmitted: the last one wins
        HumanAnnotation(
            annotator="zed@e.org",
            entities=[E_MERKEL_ORG, E_BERLIN],
            stances=[eu.model_copy(update={"label": "AGAINST"})],
            flags=["cleaning_error"],
        ),
        HumanAnnotation(annotator="judge@e.org", role="adjudicator", entities=[]),
    ]
    annotators_only = [a for a in annotations if a.role == "annotator"]
    decision = adjudicate(AdjudicationInput(doc_id="u", annotations=annotators_only))
    assert decision.status == "disputed" and len(decision.disputes) == 2
    data, predictions = adjudication_task(AdjudicationItem(doc, annotations, decision))
    table = data["disputes_html"]
    assert "@" not in table
    # amy is annotator-1, zed annotator-2 (order of emails); each row holds both versions
    assert table.index("annotator-1 said") < table.index("annotator-2 said")
    rows = table.split("<tr>")[2:]
    assert len(rows) == 3  # two disputes, then the flag only one of them raised
    assert "“Angela Merkel”" in rows[0] and "<td>PERSON</td><td>ORG</td>" in rows[0]
    assert "European Union" in rows[1] and "<b>FAVOR</b>" in rows[1] and "<b>AGAINST</b>" in rows[1]
    assert "cleaning_error" in rows[2] and "<td>no</td><td>yes</td>" in rows[2]
    assert (data["doc_id"], data["annotators"], data["disputes"]) == ("u", 2, 2)
    (draft,) = predictions
    assert draft["model_version"] == AGREED_VERSION
    # only the agreed Berlin: no disputed span, no disputed stance, no minority flag
    assert from_result(draft["result"]) == ([E_BERLIN], [], [])
