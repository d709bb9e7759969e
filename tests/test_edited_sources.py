"""A source edited after human review (issue 14), against a real Label Studio: the reviewed
version is kept in history/ under its old hash; an edit far from the labels re-bases the human
annotations onto the new text (the LOC span still reads "Brussels"); an edit over a label
replaces the task, and the old annotation never reaches the new text in the release; a re-run
creates nothing more; the run report names every such document."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from corpus.history import kept_versions
from corpus.pull import pull
from corpus.store import open_store
from flows.tasks import keys
from review.client import SUPERSEDED_BY, LabelStudioClient
from review.config import label_config
from review.results import to_result
from schemas import SpanLabel
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
