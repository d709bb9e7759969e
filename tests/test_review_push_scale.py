"""A push holds one chunk of documents and asks the server only for that chunk's tasks
(review.client: PUSH_CHUNK, `id_pattern`), so what it costs follows what is pushed, not the
project's size; a push of nothing asks for nothing. Against a real Label Studio."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import review.client as client_module
from bench.push import Counted
from review.client import LabelStudioClient, id_pattern
from review.config import label_config
from review.results import to_prediction
from schemas.records import Entity
from tests.test_labelstudio import _doc
from tests.test_review_dedupe import _raw_import, _tasks_by_doc

_ID_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))


@settings(max_examples=300, deadline=None)
@given(
    ids=st.lists(st.text(_ID_CHARS, min_size=1, max_size=12), min_size=1, max_size=30),
    others=st.lists(st.text(_ID_CHARS, max_size=14), max_size=30),
)
def test_review_push_id_pattern_matches_exactly_its_ids(ids: list[str], others: list[str]) -> None:
    pattern = re.compile(id_pattern(ids))
    for text in ids:
        assert pattern.search(text), text
    for text in others:
        assert bool(pattern.search(text)) == (text in ids), text
    # prefixes and extensions of an id are not it
    for text in ids:
        for other in (text[:-1], text + "x", "x" + text, text + "\n"):
            assert bool(pattern.search(other)) == (other in ids), other


def test_review_push_id_pattern_shares_prefixes() -> None:
    assert id_pattern(["doc-10", "doc-11", "doc-2", "e"]) == r"^(?:doc\-(?:1(?:0|1)|2)|e)\Z"
    assert id_pattern(["a", "ab"]) == r"^a(?:b)?\Z"


def _chunked(label_studio: Any, monkeypatch: pytest.MonkeyPatch, chunk: int) -> tuple[Any, int]:
    """A client of its own (its requests counted: bench.push.Counted), a new project, and
    pushes of `chunk` documents at a time."""
    client = LabelStudioClient(label_studio.url, label_studio.token)
    project = client.ensure_project(f"push-scale-{uuid.uuid4().hex[:8]}", label_config())
    monkeypatch.setattr(client_module, "PUSH_CHUNK", chunk)
    return client, project


@pytest.mark.integration
def test_review_push_lists_only_the_chunk_of_documents_it_pushes(
    label_studio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, project = _chunked(label_studio, monkeypatch, 4)
    docs = [_doc(f"p-{i}") for i in range(10)] + [_doc("p-1x"), _doc("p-")]
    first = client.push(project, docs, batch_size=3)
    assert (first.created, first.updated, first.unchanged) == (12, 0, 0)
    assert sorted(first.task_ids) == sorted(d.doc_id for d in docs)
    by_doc = _tasks_by_doc(client, project)
    assert sorted(by_doc) == sorted(first.task_ids) and all(len(t) == 1 for t in by_doc.values())

    listing = Counted(client)
    nothing = client.push(project, [])
    assert nothing == client_module.PushReport() and (listing.requests, listing.tasks) == (0, 0)

    # one document changed and one new, in a project of 12: the server hands over its task only
    merkel = Entity(start=0, end=13, label="PERSON", text="Angela Merkel", score=0.5)
    changed = _doc("p-1", entities=[merkel])
    report = client.push(project, [changed, _doc("p-new")])
    assert (report.created, report.updated, report.unchanged) == (1, 1, 0)
    assert listing.tasks == 1 + 1  # p-1's task; then p-new's, read back after the import
    assert listing.prediction_reads == 0  # p-1's came with its task
    assert report.task_ids["p-1"] == first.task_ids["p-1"]
    (prediction,) = client._predictions_by_task(project, [first.task_ids["p-1"]])[
        first.task_ids["p-1"]
    ]
    entities = [r for r in prediction["result"] if "Angela Merkel" == r["value"].get("text")]
    assert [r.get("score") for r in entities] == [0.5]  # the changed document's prediction

    # the same again: nothing to do, still only those tasks asked for
    listing.tasks = 0
    again = client.push(project, [changed, _doc("p-new")])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert listing.tasks == 2


@pytest.mark.integration
def test_review_push_merges_duplicates_within_each_chunk(
    label_studio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, project = _chunked(label_studio, monkeypatch, 2)
    _raw_import(client, project, ["a", "a", "c", "c", "e"])
    report = client.push(project, [_doc(d) for d in ("a", "b", "c", "d", "e")])
    assert (report.duplicates_found, report.duplicates_merged) == (2, 2)
    assert (report.created, report.unchanged + report.updated) == (2, 3)
    by_doc = _tasks_by_doc(client, project)
    assert sorted(by_doc) == ["a", "b", "c", "d", "e"] and all(len(t) == 1 for t in by_doc.values())


@pytest.mark.integration
def test_review_push_sees_every_prediction_of_a_task_in_its_listing(
    label_studio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task list's predictions are every prediction of a task, of every model version
    (what push relies on instead of a read of the project's predictions): a task holding a
    second one, of another version, keeps one after a push, with no prediction read."""
    client, project = _chunked(label_studio, monkeypatch, 4)
    docs = [_doc(f"q-{i:02d}") for i in range(6)]
    ids = client.push(project, docs).task_ids
    other = to_prediction(_doc("q-01", model_version="m-other"))
    client.sdk.predictions.create(task=ids["q-01"], **other)
    assert len(client._predictions_by_task(project, [ids["q-01"]])[ids["q-01"]]) == 2

    listing = Counted(client)
    merkel = Entity(start=0, end=13, label="PERSON", text="Angela Merkel", score=0.4)
    report = client.push(project, [_doc(d.doc_id, entities=[merkel]) for d in docs])
    assert (report.updated, report.unchanged) == (6, 0) and listing.prediction_reads == 0
    (left,) = client._predictions_by_task(project, [ids["q-01"]])[ids["q-01"]]
    assert left["model_version"] == "m1"
    assert [
        r.get("score") for r in left["result"] if r["value"].get("text") == "Angela Merkel"
    ] == [0.4]
    again = client.push(project, [_doc(d.doc_id, entities=[merkel]) for d in docs])
    assert (again.updated, again.unchanged) == (0, 6)
