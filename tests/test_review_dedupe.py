"""Duplicate review tasks (issue 14): Label Studio has no unique key on task data, so a re-import
or two pushes at once can give a document two tasks. Push and collect find them, merge them
into the lowest task id with every annotator's work, and report it. Against a real server."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import pytest

from review.client import LabelStudioClient
from review.config import label_config
from review.results import to_import_task, to_result
from tests.ls_fixtures import ReviewTeam
from tests.test_labelstudio import E_EU, E_MERKEL, TEXT, _doc


def _project(client: LabelStudioClient) -> int:
    return client.ensure_project(f"dedupe-{uuid.uuid4().hex[:8]}", label_config())


def _raw_import(client: LabelStudioClient, project: int, doc_ids: list[str]) -> list[int]:
    """Import tasks as a re-import would, bypassing push's check: duplicates on purpose."""
    body = client.sdk.projects.import_tasks(
        project,
        request=[to_import_task(_doc(d)) for d in doc_ids],  # type: ignore[misc]
        return_task_ids=True,
    )
    return [int(t) for t in body.task_ids or []]  # type: ignore[attr-defined]


def _tasks_by_doc(client: LabelStudioClient, project: int) -> dict[str, list[dict[str, Any]]]:
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for task in client.tasks(project):
        by_doc.setdefault(task["data"]["doc_id"], []).append(task)
    return by_doc


@pytest.mark.integration
def test_review_dedupe_push_merges_copies_keeping_both_annotators(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    project = _project(ls_client)
    (first,) = _raw_import(ls_client, project, ["a"])
    (second,) = _raw_import(ls_client, project, ["a"])
    alice, bob, _ = review_team.annotators
    alice_result = to_result(TEXT, [E_MERKEL, E_EU])
    ls_client.submit_annotation(
        first, alice_result, email=alice.email, password=alice.password, lead_time=12.5
    )
    ls_client.submit_annotation(
        second, to_result(TEXT, [E_MERKEL]), email=bob.email, password=bob.password, lead_time=7.0
    )

    report = ls_client.push(project, [_doc("a"), _doc("b")])

    assert (report.duplicates_found, report.duplicates_merged, report.annotations_moved) == (
        1,
        1,
        1,
    )
    assert report.duplicates_left == 0 and report.duplicate_problems == []
    assert report.created == 1 and report.task_ids["a"] == first
    by_doc = _tasks_by_doc(ls_client, project)
    assert sorted(by_doc) == ["a", "b"] and [t["id"] for t in by_doc["a"]] == [first]
    (kept,) = by_doc["a"]
    emails = ls_client.users()
    got = {emails[int(a["completed_by"])]: a for a in kept["annotations"]}
    assert set(got) == {alice.email, bob.email}
    assert got[bob.email]["lead_time"] == 7.0 and got[alice.email]["lead_time"] == 12.5

    collected = ls_client.collect(project)
    (task,) = collected
    assert task.task_id == first and task.annotators == 2
    assert {a.annotator for a in task.annotations} == {alice.email, bob.email}
    assert {a.annotator: a.entities for a in task.annotations}[bob.email] == [E_MERKEL]

    again = ls_client.push(project, [_doc("a"), _doc("b")])
    assert (again.duplicates_found, again.created, again.skipped_human) == (0, 0, 1)


@pytest.mark.integration
def test_review_dedupe_copy_without_annotations_is_just_deleted(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    project = _project(ls_client)
    first, second, third = _raw_import(ls_client, project, ["a", "a", "a"])
    alice = review_team.annotators[0]
    # the work is on the highest copy: it moves down to the lowest id
    ls_client.submit_annotation(
        third, to_result(TEXT, [E_EU]), email=alice.email, password=alice.password
    )

    report = ls_client.push(project, [_doc("a")])

    assert (report.duplicates_found, report.duplicates_merged, report.annotations_moved) == (
        2,
        2,
        1,
    )
    by_doc = _tasks_by_doc(ls_client, project)
    assert [t["id"] for t in by_doc["a"]] == [first]
    assert [a["result"] for a in by_doc["a"][0]["annotations"]] == [to_result(TEXT, [E_EU])]
    assert {second, third}.isdisjoint(t["id"] for t in ls_client.tasks(project, fields=["id"]))


@pytest.mark.integration
def test_review_dedupe_skip_on_a_copy_is_moved_too(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    project = _project(ls_client)
    first, second = _raw_import(ls_client, project, ["a", "a"])
    bob = review_team.annotators[1]
    ls_client.submit_annotation(
        second, [], email=bob.email, password=bob.password, was_cancelled=True
    )

    report = ls_client.push(project, [_doc("a")])

    assert (report.duplicates_merged, report.annotations_moved, report.skipped_human) == (1, 1, 1)
    (kept,) = ls_client.tasks(project)
    assert kept["id"] == first and kept["cancelled_annotations"] == 1


@pytest.mark.integration
def test_review_dedupe_collect_merges_copies_both_annotated(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    project = _project(ls_client)
    first, second = _raw_import(ls_client, project, ["a", "a"])
    alice, bob, _ = review_team.annotators
    ls_client.submit_annotation(first, [], email=alice.email, password=alice.password)
    ls_client.submit_annotation(
        second, to_result(TEXT, [E_MERKEL]), email=bob.email, password=bob.password
    )

    collected = ls_client.collect(project)

    assert (collected.duplicates.duplicates_found, collected.duplicates.annotations_moved) == (1, 1)
    (task,) = collected
    assert task.task_id == first
    assert {a.annotator for a in task.annotations} == {alice.email, bob.email}
    assert [t["id"] for t in _tasks_by_doc(ls_client, project)["a"]] == [first]


@pytest.mark.integration
def test_review_dedupe_merge_run_twice_moves_each_annotation_once(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    """A merge interrupted after moving and before deleting is repeated without a second copy:
    the moved annotation's unique_id comes from its source, and the server refuses it twice."""
    project = _project(ls_client)
    first, second = _raw_import(ls_client, project, ["a", "a"])
    bob = review_team.annotators[1]
    ann = ls_client.submit_annotation(second, [], email=bob.email, password=bob.password)
    copy = ls_client.tasks(project)[1]
    assert copy["id"] == second
    assert ls_client._move_annotation(first, copy["annotations"][0]) is None  # the "crash"

    remaining = ls_client.merge_duplicates(project)

    assert [t["id"] for t in remaining["a"]] == [first]
    (kept,) = _tasks_by_doc(ls_client, project)["a"]
    assert [a["import_id"] for a in kept["annotations"]] == [ann]


@pytest.mark.integration
def test_review_dedupe_two_pushes_at_once_leave_one_task_per_doc(
    label_studio: Any,
) -> None:
    # separate clients (own connections), as two processes would have
    clients = [LabelStudioClient(label_studio.url, label_studio.token) for _ in range(2)]
    project = _project(clients[0])
    docs = [_doc(f"d{i:03d}") for i in range(120)]
    barrier = threading.Barrier(2)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run(client: LabelStudioClient) -> None:
        try:
            barrier.wait()
            reports.append(client.push(project, docs, batch_size=20))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors, errors
    counts = Counter(t["data"]["doc_id"] for t in clients[0].tasks(project, fields=["id", "data"]))
    assert len(counts) == 120 and set(counts.values()) == {1}
    # what the race made was found and merged, not left
    assert sum(r.duplicates_left for r in reports) == 0
    assert sum(r.created for r in reports) - sum(r.duplicates_merged for r in reports) <= 120


@pytest.mark.parametrize(
    ("collect", "row"),
    [
        (
            {"collected": 1, "duplicates_found": 2, "duplicates_merged": 1},
            "2 found, 1 merged, 0 annotations moved, 0 left (human work that could not be moved)",
        ),
        ({"collected": 0}, None),  # an older report: no row
    ],
)
def test_review_dedupe_run_summary_shows_duplicates(
    collect: dict[str, int], row: str | None
) -> None:
    from flows.pipeline import stage_rows

    collect = {"annotations_moved": 0, "duplicates_left": 0, **collect} if row else collect
    report = {
        "review": {"collect": collect, "adjudication": {}},
        "adjudication": {},
        "release": {"version": None},
        "store": "s3://corpus",
    }
    rows = dict(stage_rows(report))
    assert rows.get("duplicates (collect)") == row
    assert "duplicates" not in rows["collect"]  # counted once, in its own row


@pytest.mark.integration
def test_review_dedupe_incremental_collect_merges_new_copies_and_lists_only_touched_tasks(
    ls_client: LabelStudioClient, review_team: ReviewTeam, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a first collect, the merge looks only at the doc_ids of tasks updated since the
    cursor (then at every task of those): a copy annotated later is still merged, and a
    collect with nothing new hands over no task at all."""
    project = _project(ls_client)
    ids = ls_client.push(project, [_doc("a"), _doc("b"), _doc("c")]).task_ids
    alice, bob, _ = review_team.annotators
    ls_client.submit_annotation(ids["a"], [], email=alice.email, password=alice.password)
    first = ls_client.collect(project)
    assert [t.doc_id for t in first] == ["a"]

    (copy,) = _raw_import(ls_client, project, ["b"])  # a race left b two tasks
    ls_client.submit_annotation(ids["b"], [], email=alice.email, password=alice.password)
    ls_client.submit_annotation(
        copy, to_result(TEXT, [E_MERKEL]), email=bob.email, password=bob.password
    )
    handed: list[int] = []
    real = LabelStudioClient._tasks_pages

    def pages(self: LabelStudioClient, *args: Any, **kw: Any) -> Any:
        for task in real(self, *args, **kw):
            handed.append(int(task["id"]))
            yield task

    monkeypatch.setattr(LabelStudioClient, "_tasks_pages", pages)
    second = ls_client.collect(project, since=first.cursor)
    listed = set(handed)
    assert (second.duplicates.duplicates_found, second.duplicates.annotations_moved) == (1, 1)
    (task,) = [t for t in second if t.doc_id == "b"]
    assert task.task_id == ids["b"]
    assert {a.annotator for a in task.annotations} == {alice.email, bob.email}
    assert [t["id"] for t in _tasks_by_doc(ls_client, project)["b"]] == [ids["b"]]
    # untouched since the cursor (c never annotated, a before it): listed by neither the
    # merge nor the walk
    assert ids["c"] not in listed and ids["a"] not in listed

    handed.clear()
    third = ls_client.collect(project, since=second.cursor)
    assert len(third) == 0 and third.duplicates.duplicates_found == 0
    assert handed == []
