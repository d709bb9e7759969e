"""Collect at scale against a real Label Studio: paged and incremental, an annotation saved
while a collect is paging is not lost, skipped annotations are counted, and a push that dies
between import and bookkeeping is repaired by the re-run without duplicates."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from review.client import LabelStudioClient
from review.config import label_config
from review.results import to_result
from tests.ls_fixtures import ReviewTeam
from tests.test_labelstudio import E_BERLIN, E_MERKEL, TEXT, _doc

pytestmark = pytest.mark.integration


def _project(client: LabelStudioClient) -> int:
    return client.ensure_project(f"col-{uuid.uuid4().hex[:8]}", label_config(), overlap=1)


def test_review_collect_pages_and_is_incremental(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    project = _project(ls_client)
    ids = ls_client.push(project, [_doc(f"p{i}") for i in range(7)]).task_ids
    a, b, _ = review_team.annotators
    for i in range(5):
        ls_client.submit_annotation(
            ids[f"p{i}"], to_result(TEXT, [E_MERKEL]), email=a.email, password=a.password
        )
    ls_client.submit_annotation(
        ids["p5"], [], email=b.email, password=b.password, was_cancelled=True
    )

    seen: list[str] = []
    first = ls_client.collect(project, page_size=2)  # four pages
    seen += [t.doc_id for t in first]
    assert sorted(seen) == [f"p{i}" for i in range(5)] and first.cancelled == 1
    assert all(t.done and t.annotators == 1 for t in first)
    # the cursor may be held back by a second (several pages were read), so a task can come
    # again; it settles at once, and nothing new means nothing collected. The hold-back is
    # the server's Date (whole seconds): a re-collect within the same second as the first page
    # gets the same cursor back, so each waits for the server clock to move on (without the
    # wait, four quick re-collects inside one second failed this now and then)
    cursor = first.cursor
    for _ in range(4):
        time.sleep(1.1)
        again = ls_client.collect(project, since=cursor, page_size=2)
        assert {t.doc_id for t in again} <= set(seen)
        if not again and again.cursor == cursor:
            break
        cursor = again.cursor
    else:
        pytest.fail("collect never settled")

    ls_client.submit_annotation(
        ids["p6"], to_result(TEXT, [E_BERLIN]), email=b.email, password=b.password
    )
    fresh = ls_client.collect(project, since=cursor, page_size=2)
    assert [t.doc_id for t in fresh] == ["p6"]
    assert fresh[0].annotations[0].entities == [E_BERLIN]
    assert fresh.cursor is not None and cursor is not None and fresh.cursor > cursor


def test_review_collect_keeps_annotation_saved_while_paging(
    ls_client: LabelStudioClient, review_team: ReviewTeam, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An annotation saved on a task whose page was already read, while later pages hold newer
    work, must come with the next collect: the cursor is not moved past it."""
    project = _project(ls_client)
    ids = ls_client.push(project, [_doc(f"r{i}") for i in range(4)]).task_ids
    a, b, _ = review_team.annotators
    for name in ("r0", "r1", "r3"):
        ls_client.submit_annotation(
            ids[name], to_result(TEXT, [E_MERKEL]), email=a.email, password=a.password
        )
    real_pages = ls_client._tasks_pages

    def pages_with_a_save_in_between(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for n, task in enumerate(real_pages(*args, **kwargs)):
            if n == 1:  # pages r0, r1 are read: r0, then r3 (not yet read) get annotations
                for name in ("r0", "r3"):
                    ls_client.submit_annotation(
                        ids[name], to_result(TEXT, [E_BERLIN]), email=b.email, password=b.password
                    )
            yield task

    monkeypatch.setattr(ls_client, "_tasks_pages", pages_with_a_save_in_between)
    first = ls_client.collect(project, page_size=1)
    monkeypatch.undo()
    by_doc = {t.doc_id: t for t in first}
    assert len(by_doc["r0"].annotations) == 1  # read before b's save
    assert len(by_doc["r3"].annotations) == 2  # read after: newer than r0's second one
    later = {t.doc_id: t for t in ls_client.collect(project, since=first.cursor)}
    assert "r0" in later and len(later["r0"].annotations) == 2


def test_review_push_crash_between_import_and_bookkeeping_is_repaired(
    ls_client: LabelStudioClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(ls_client)
    docs = [_doc(f"k{i}") for i in range(5)]
    real = ls_client.sdk.projects.import_tasks
    imports = 0

    def dies_after_second_import(*args: Any, **kwargs: Any) -> object:
        nonlocal imports
        answer = real(*args, **kwargs)
        imports += 1
        if imports == 2:
            raise KeyboardInterrupt("killed between import and bookkeeping")
        return answer

    monkeypatch.setattr(ls_client.sdk.projects, "import_tasks", dies_after_second_import)
    with pytest.raises(KeyboardInterrupt):
        ls_client.push(project, docs, batch_size=2)
    monkeypatch.undo()
    assert len(ls_client.tasks(project, fields=["id"])) == 4  # two batches landed
    report = ls_client.push(project, docs, batch_size=2)
    assert (report.created, report.unchanged) == (1, 4)
    again = ls_client.push(project, docs, batch_size=2)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    doc_ids = sorted(t["data"]["doc_id"] for t in ls_client.tasks(project, fields=["id", "data"]))
    assert doc_ids == [d.doc_id for d in docs]


def test_review_collect_brings_back_task_after_an_annotation_is_deleted(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    project = _project(ls_client)
    ids = ls_client.push(project, [_doc("del"), _doc("calm")]).task_ids
    a, b, _ = review_team.annotators
    for person in (a, b):
        ls_client.submit_annotation(
            ids["calm"], to_result(TEXT, [E_BERLIN]), email=person.email, password=person.password
        )
    ls_client.submit_annotation(
        ids["del"], to_result(TEXT, [E_MERKEL]), email=a.email, password=a.password
    )
    gone = ls_client.submit_annotation(
        ids["del"], to_result(TEXT, [E_BERLIN]), email=b.email, password=b.password
    )
    first = ls_client.collect(project)
    assert {t.doc_id: len(t.annotations) for t in first} == {"del": 2, "calm": 2}
    ls_client.delete_annotation(gone)
    (back,) = ls_client.collect(project, since=first.cursor)
    assert back.doc_id == "del" and [h.annotator for h in back.annotations] == [a.email]
    assert (back.annotators, back.done) == (1, True)  # overlap 1
    assert list(ls_client.collect(project, since=first.cursor)) != []  # same cursor: again
    later = ls_client.collect(project, since=ls_client.collect(project, since=first.cursor).cursor)
    assert list(later) == []
