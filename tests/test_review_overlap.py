"""Overlap in Label Studio's open-source edition: `maximum_annotations` set through the API is
enforced by the label stream (each task goes to `overlap` distinct annotators, then leaves the
stream), and `collect` tells per task whether it is done. Real Label Studio, three annotators."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from review.client import LabelStudioClient
from review.config import label_config
from review.results import to_result
from tests.ls_fixtures import Person, ReviewTeam
from tests.test_labelstudio import E_MERKEL, TEXT, _doc

pytestmark = pytest.mark.integration


def _label_until_empty(
    client: LabelStudioClient, project: int, people: tuple[Person, ...]
) -> list[tuple[str, int]]:
    """Each person takes tasks from the label stream in turn, as in the UI, until it is dry."""
    done: list[tuple[str, int]] = []
    active = list(people)
    while active:
        for person in list(active):
            task = client.next_task(project, email=person.email, password=person.password)
            if task is None:
                active.remove(person)
                continue
            client.submit_annotation(
                task["id"],
                to_result(TEXT, [E_MERKEL]),
                email=person.email,
                password=person.password,
            )
            done.append((person.email, task["id"]))
    return done


def test_review_overlap_label_stream_gives_each_task_to_overlap_annotators(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    title = f"overlap-{uuid.uuid4().hex[:8]}"
    project = ls_client.ensure_project(title, label_config(), overlap=2)
    assert ls_client.project(project)["maximum_annotations"] == 2
    ids = ls_client.push(project, [_doc(f"o{i}") for i in range(3)]).task_ids
    a, b, c = review_team.annotators

    # a skip does not count towards the overlap: the task goes to someone else
    first = ls_client.next_task(project, email=a.email, password=a.password)
    assert first is not None
    ls_client.submit_annotation(
        first["id"], [], email=a.email, password=a.password, was_cancelled=True
    )
    partial = ls_client.collect(project)
    assert list(partial) == [] and partial.cancelled == 1

    given = _label_until_empty(ls_client, project, (a, b, c))
    per_task = Counter(task_id for _, task_id in given)
    assert per_task == {task_id: 2 for task_id in ids.values()}  # no more, no fewer
    assert len(set(given)) == len(given)  # nobody labelled a task twice

    collected = ls_client.collect(project)
    assert sorted(t.doc_id for t in collected) == sorted(ids)
    assert all(t.done and t.annotators == 2 for t in collected)
    assert collected.cancelled == 1

    # raising the overlap re-opens the tasks, for the annotator who has not seen each yet;
    # whoever skipped a task is not offered it again (it then waits for a fourth person)
    assert ls_client.ensure_project(title, label_config(), overlap=3) == project
    assert not any(t.done for t in ls_client.collect(project))
    more = _label_until_empty(ls_client, project, (a, b, c))
    reopened = {task_id: 1 for task_id in ids.values() if task_id != first["id"]}
    assert Counter(task_id for _, task_id in more) == reopened
    final = {t.task_id: t for t in ls_client.collect(project)}
    assert all(final[t].done and final[t].annotators == 3 for t in reopened)
    assert (final[first["id"]].done, final[first["id"]].annotators) == (False, 2)


def test_review_overlap_done_counts_distinct_annotators_not_adjudicators(
    ls_client: LabelStudioClient, review_team: ReviewTeam
) -> None:
    project = ls_client.ensure_project(f"ov-{uuid.uuid4().hex[:8]}", label_config(), overlap=2)
    (task_id,) = ls_client.push(project, [_doc("x")]).task_ids.values()
    a = review_team.annotators[0]
    judge = review_team.adjudicator
    for person in (a, judge):
        ls_client.submit_annotation(
            task_id, to_result(TEXT, [E_MERKEL]), email=person.email, password=person.password
        )
    (task,) = ls_client.collect(project, adjudicators=[judge.email])
    assert (task.annotators, task.done) == (1, False)
    (task,) = ls_client.collect(project, overlap=1)
    assert (task.annotators, task.done) == (2, True)
