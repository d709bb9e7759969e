"""A source edited after human review (issue 14), against a real Label Studio: the reviewed
version is kept in history/ under its old hash; an edit far from the labels re-bases the human
annotations onto the new text (the LOC span still reads "Brussels"); an edit over a label
replaces the task, and the old annotation never reaches the new text in the release; a re-run
creates nothing more; the run report names every such document."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from corpus.adjudication import adjudicate
from corpus.history import kept_versions
from corpus.pull import pull
from corpus.store import open_store
from flows.tasks import keys
from review.adjudication import AdjudicationItem
from review.client import SUPERSEDED_BY, LabelStudioClient
from review.config import label_config
from review.results import to_result
from schemas import SpanLabel
from schemas.records import AdjudicationInput, HumanAnnotation
from services.labelstudio import LabelStudioService
from tests.ls_fixtures import ReviewTeam
from tests.test_labelstudio import _doc

FAR = "A first paragraph about the weather.\n\nThe summit was held in Brussels on Monday.\n"
NEAR = "Ministers met again.\n\nThe summit was held in Brussels on Friday.\n"


def _loc(text: str, word: str = "Brussels") -> SpanLabel:
    start = text.index(word)
    return SpanLabel(start=start, end=start + len(word), label="LOC")


def _release(store: Any, dest: Path) -> dict[str, dict[str, Any]]:
    folder = pull(store, "latest", dest=dest)
    rows = map(json.loads, (folder / "corpus.jsonl").read_text().splitlines())
    return {r["doc_id"]: r for r in rows}


def _spans(row: dict[str, Any]) -> list[tuple[int, int, str, str]]:
    return [
        (e["start"], e["end"], e["label"], row["text"][e["start"] : e["end"]])
        for e in row["entities"]
    ]


@pytest.mark.integration
@pytest.mark.model
def test_edited_sources_rebase_far_edits_replace_near_ones_and_keep_history(
    label_studio: LabelStudioService,
    review_team: ReviewTeam,
    prefect_harness: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.pipeline import corpus_pipeline, stage_rows

    store_url = f"file://{tmp_path / 'store'}"
    for key, value in {
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.token,
        "CORPUSFLOW_STORE": store_url,
        "CORPUSFLOW_LS_PROJECT": f"edited-{uuid.uuid4().hex[:8]}",
        "CORPUSFLOW_OVERLAP": "1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "far.txt").write_text(FAR)
    (sources / "near.txt").write_text(NEAR)
    store = open_store(store_url)
    client = LabelStudioClient(label_studio.url, label_studio.token)
    alice = review_team.annotators[0]

    first = corpus_pipeline(sources=str(sources))
    project = first["review"]["push"]["project_id"]
    tasks = {t["data"]["doc_id"]: t for t in client.tasks(project)}
    by_name = {Path(t["data"]["source_url"]).name: d for d, t in tasks.items()}
    far, near = by_name["far.txt"], by_name["near.txt"]
    old_text = {d: str(t["data"]["text"]) for d, t in tasks.items()}
    old_hash = {d: str(t["data"]["content_hash"]) for d, t in tasks.items()}
    for doc_id, task in tasks.items():  # the reviewer marks Brussels as a place, nothing more
        result = to_result(old_text[doc_id], [_loc(old_text[doc_id])])
        client.submit_annotation(task["id"], result, email=alice.email, password=alice.password)

    second = corpus_pipeline(sources=str(sources))
    assert second["adjudication"] == {"reviewed": 2}
    gold = _release(store, tmp_path / "r2")
    for doc_id in (far, near):
        start = old_text[doc_id].index("Brussels")
        assert _spans(gold[doc_id]) == [(start, start + 8, "LOC", "Brussels")]

    # the sources are edited: one far from the label, one over it
    (sources / "far.txt").write_text(FAR.replace("A first paragraph about the weather.", "Intro."))
    (sources / "near.txt").write_text(NEAR.replace("Brussels", "Antwerp"))
    third = corpus_pipeline(sources=str(sources))

    push = third["review"]["push"]
    assert (push["rebased"], push["replaced"], push["edited_left"]) == ([far], [near], [])
    assert push["created"] == 2
    edits = {e["doc_id"]: e for e in push["edited"]}
    assert edits[far]["annotations"] == 1 and edits[near]["annotations"] == 0
    assert "'Brussels'" in edits[near]["reason"]
    rows = [f"{stage} {result}" for stage, result in stage_rows(third)]
    assert any("far.txt" in r and "rebased" in r for r in rows if r.startswith("edited"))
    assert any("near.txt" in r and "replaced" in r for r in rows if r.startswith("edited"))

    # Label Studio: each old task is kept, marked superseded and out of the label stream; the
    # new task of the far document holds alice's annotation at the mapped offsets
    now = client.tasks(project)
    assert len(now) == 4
    old = {t["data"]["doc_id"]: t for t in now if t["data"].get(SUPERSEDED_BY)}
    new = {t["data"]["doc_id"]: t for t in now if not t["data"].get(SUPERSEDED_BY)}
    assert {d: t["id"] for d, t in old.items()} == {d: t["id"] for d, t in tasks.items()}
    assert all(t["is_labeled"] for t in old.values())
    new_far = str(new[far]["data"]["text"])
    assert new_far != old_text[far]
    (moved,) = new[far]["annotations"]
    assert client.users()[int(moved["completed_by"])] == alice.email
    (region,) = moved["result"]
    value = region["value"]
    assert new_far[value["start"] : value["end"]] == "Brussels" == value["text"]
    assert new[near]["annotations"] == [] and new[near]["predictions"]

    # history: the reviewed versions under their old hashes, with what the reviewer did
    for doc_id, action in ((far, "rebased"), (near, "replaced")):
        (kept,) = kept_versions(store, doc_id)
        assert kept["content_hash"] == old_hash[doc_id] and kept["text"] == old_text[doc_id]
        assert (
            kept["action"] == action
            and kept["superseded_by"] == new[doc_id]["data"]["content_hash"]
        )
        (ann,) = kept["annotations"]
        assert ann["annotator"] == alice.email and ann["result"][0]["value"]["text"] == "Brussels"

    # the release: far is gold on its new text; near holds no human label, only machine ones
    assert third["adjudication"] == {"reviewed": 1, "source_changed": 1}
    rel = _release(store, tmp_path / "r3")
    start = new_far.index("Brussels")
    assert rel[far]["review_status"] == "reviewed" and rel[far]["layer"] == "gold"
    assert _spans(rel[far]) == [(start, start + 8, "LOC", "Brussels")]
    assert rel[near]["review_status"] == "source_changed" and rel[near]["layer"] == "silver"
    assert rel[near]["annotators"] == []
    near_old = old_text[near].index("Brussels")
    assert (near_old, near_old + 8, "LOC") not in [s[:3] for s in _spans(rel[near])]
    assert all(s[3] != "Brussels" for s in _spans(rel[near]))
    human_near = store.get_json(keys.human(near))
    assert human_near["content_hash"] == old_hash[near]  # still the old text's, never applied

    # a re-run: no task, no history record, nothing edited, no release
    fourth = corpus_pipeline(sources=str(sources))
    push = fourth["review"]["push"]
    assert (push["created"], push["rebased"], push["replaced"], push["edited"]) == (0, [], [], [])
    assert len(client.tasks(project)) == 4
    assert len(list(store.list("history/"))) == 2
    assert fourth["release"] == {"version": third["release"]["version"], "created": False}

    # the new text of near is reviewed: it is gold again, on its own text
    new_near = str(new[near]["data"]["text"])
    client.submit_annotation(
        new[near]["id"],
        to_result(new_near, [_loc(new_near, "Antwerp")]),
        email=alice.email,
        password=alice.password,
    )
    fifth = corpus_pipeline(sources=str(sources))
    assert fifth["adjudication"] == {"reviewed": 2}
    rel = _release(store, tmp_path / "r5")
    start = new_near.index("Antwerp")
    assert _spans(rel[near]) == [(start, start + 7, "LOC", "Antwerp")]


@pytest.mark.integration
def test_edited_sources_push_interrupted_after_marking_finishes_the_rebase(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    """A push that marked the old task superseded and stopped before importing the new one:
    the next push imports it with the re-based annotations, keeping nothing twice."""
    project = ls_client.ensure_project(f"edited-{uuid.uuid4().hex[:8]}", label_config())
    old = _doc("a", text=FAR, entities=[], stances=[])
    (task_id,) = ls_client.push(project, [old]).task_ids.values()
    bob = review_team.annotators[1]
    ls_client.submit_annotation(
        task_id, to_result(FAR, [_loc(FAR)]), email=bob.email, password=bob.password
    )
    edited_text = "Intro.\n\n" + FAR.split("\n\n", 1)[1]
    edited = _doc("a", text=edited_text, entities=[], stances=[])
    kept: list[Any] = []

    class Stop(Exception):
        pass

    def keep_then_crash(version: Any) -> None:
        kept.append(version)

    real_import = ls_client.sdk.projects.import_tasks

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Stop

    ls_client.sdk.projects.import_tasks = crash  # type: ignore[method-assign]
    try:
        with pytest.raises(Stop):
            ls_client.push(project, [edited], keep=keep_then_crash)
    finally:
        ls_client.sdk.projects.import_tasks = real_import  # type: ignore[method-assign]
    assert len(kept) == 1 and kept[0].content_hash == old.content_hash
    (marked,) = ls_client.tasks(project)
    assert marked["data"][SUPERSEDED_BY] == edited.content_hash

    report = ls_client.push(project, [edited], keep=kept.append)

    assert report.rebased == ["a"] and report.created == 1
    assert len(kept) == 1  # the old task was superseded already: not handed over again
    tasks = {t["id"]: t for t in ls_client.tasks(project)}
    new = tasks[report.task_ids["a"]]
    (ann,) = new["annotations"]
    (region,) = ann["result"]
    assert edited_text[region["value"]["start"] : region["value"]["end"]] == "Brussels"
    again = ls_client.push(project, [edited], keep=kept.append)
    assert (again.created, again.rebased, again.skipped_human, len(kept)) == (0, [], 1, 1)
    assert len(ls_client.tasks(project)) == 2
    collected = ls_client.collect(project)
    assert [(t.task_id, t.content_hash) for t in collected] == [(new["id"], edited.content_hash)]


@pytest.mark.integration
def test_edited_sources_metadata_only_change_updates_the_task_in_place(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    project = ls_client.ensure_project(f"edited-{uuid.uuid4().hex[:8]}", label_config())
    old = _doc("m", text=FAR, entities=[], stances=[])
    (task_id,) = ls_client.push(project, [old]).task_ids.values()
    carol = review_team.annotators[2]
    ls_client.submit_annotation(
        task_id, to_result(FAR, [_loc(FAR)]), email=carol.email, password=carol.password
    )
    retitled = old.model_copy(update={"content_hash": "hash-m-retitled"})
    retitled.metadata.title = "A new title"
    kept: list[Any] = []

    report = ls_client.push(project, [retitled], keep=kept.append)

    assert report.rebased == ["m"] and report.created == 0
    assert "metadata" in report.edited[0].reason and report.edited[0].task_id == task_id
    assert [k.content_hash for k in kept] == [old.content_hash]
    (task,) = ls_client.tasks(project)
    assert task["id"] == task_id and task["data"]["content_hash"] == "hash-m-retitled"
    assert task["data"]["title"] == "A new title" and len(task["annotations"]) == 1
    (collected,) = ls_client.collect(project)
    assert collected.content_hash == "hash-m-retitled"
    again = ls_client.push(project, [retitled], keep=kept.append)
    assert (again.rebased, again.skipped_human, len(kept)) == ([], 1, 1)


@pytest.mark.integration
def test_edited_sources_two_pushes_at_once_rebase_each_annotation_once(
    label_studio: LabelStudioService, review_team: ReviewTeam
) -> None:
    """Without the run lease two pushes may both supersede the old task and import a new one:
    the merge of the copies keeps one re-based annotation per old one."""
    clients = [LabelStudioClient(label_studio.url, label_studio.token) for _ in range(2)]
    project = clients[0].ensure_project(f"edited-{uuid.uuid4().hex[:8]}", label_config())
    docs = [_doc(f"r{i}", text=FAR, entities=[], stances=[]) for i in range(5)]
    report = clients[0].push(project, docs)
    alice = review_team.annotators[0]
    for task_id in report.task_ids.values():
        clients[0].submit_annotation(
            task_id, to_result(FAR, [_loc(FAR)]), email=alice.email, password=alice.password
        )
    edited_text = "Intro.\n\n" + FAR.split("\n\n", 1)[1]
    edited = [d.model_copy(update={"text": edited_text, "content_hash": "new"}) for d in docs]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(client: LabelStudioClient) -> None:
        try:
            barrier.wait()
            client.push(project, edited)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    clients[0].push(project, edited)  # what the next run does: merges what the race left

    live = [t for t in clients[0].tasks(project) if not t["data"].get(SUPERSEDED_BY)]
    assert sorted(t["data"]["doc_id"] for t in live) == [d.doc_id for d in docs]
    for task in live:
        (ann,) = task["annotations"]
        (region,) = ann["result"]
        assert edited_text[region["value"]["start"] : region["value"]["end"]] == "Brussels"


@pytest.mark.integration
def test_edited_sources_decided_adjudication_task_is_replaced_for_the_new_text(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    """A dispute an adjudicator decided on the old text does not block the dispute on the new
    one: the old task is kept (superseded) and the new text gets its own adjudication task."""
    adj = ls_client.ensure_adjudication_project(f"edited-adj-{uuid.uuid4().hex[:8]}")
    doc = _doc("x", text=FAR, entities=[], stances=[])
    where = _loc(FAR)
    votes = [
        HumanAnnotation(annotator="x@e.org", entities=[where]),
        HumanAnnotation(annotator="y@e.org", entities=[where.model_copy(update={"label": "GPE"})]),
    ]
    (task_id,) = ls_client.push_adjudication(adj, [_adj_item(doc, votes)]).task_ids.values()
    judge = review_team.adjudicator
    ls_client.submit_annotation(
        task_id, to_result(FAR, [where]), email=judge.email, password=judge.password
    )
    text = FAR.replace("weather", "local climate")
    edited = _doc("x", text=text, entities=[], stances=[])
    kept: list[Any] = []

    report = ls_client.push_adjudication(adj, [_adj_item(edited, votes)], keep=kept.append)

    assert (report.replaced, report.created, report.skipped_human) == (["x"], 1, 0)
    assert [k.task_id for k in kept] == [task_id] and kept[0].content_hash == doc.content_hash
    tasks = {t["id"]: t for t in ls_client.tasks(adj)}
    assert tasks[task_id]["data"][SUPERSEDED_BY] == edited.content_hash
    new = tasks[report.task_ids["x"]]
    assert new["data"]["text"] == text and new["annotations"] == []
    # the old decision is not collected again; the new task waits for the adjudicator
    assert ls_client.collect_adjudication(adj) == []
    again = ls_client.push_adjudication(adj, [_adj_item(edited, votes)], keep=kept.append)
    assert (again.created, again.replaced, len(kept)) == (0, [], 1)


def _adj_item(doc: Any, annotations: list[HumanAnnotation]) -> AdjudicationItem:
    decision = adjudicate(AdjudicationInput(doc_id=doc.doc_id, annotations=annotations))
    return AdjudicationItem(doc, annotations, decision)
