"""Edited sources after review, the pure part (review/edits.py): where two texts differ, which
labelled spans an edit touches, and where the others land in the new text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corpus.history import current_work, history_key, keep_reviewed, made_on
from corpus.store import LocalStore
from review.config import CONTROLS
from review.edits import TextEdit, decide, rebase_result, touches

OLD = "First paragraph here.\n\nThe summit was held in Brussels on Monday."
B = OLD.index("Brussels")
A = {"annotator": "a@example.org", "entities": []}


def _loc(start: int, end: int, text: str) -> dict[str, Any]:
    return {
        "id": "r1",
        "from_name": CONTROLS.entities,
        "to_name": CONTROLS.text,
        "type": "labels",
        "value": {"start": start, "end": end, "text": text[start:end], "labels": ["LOC"]},
    }


@pytest.mark.parametrize(
    ("span", "change", "expected"),
    [
        ((10, 18), (0, 5), False),  # well before
        ((10, 18), (20, 25), False),  # well after
        ((10, 18), (12, 14), True),  # inside
        ((10, 18), (5, 12), True),  # overlaps the start
        ((10, 18), (18, 18), True),  # an insertion right after: may change the word
        ((10, 18), (10, 10), True),  # an insertion right before
        ((10, 18), (9, 9), False),  # an insertion one character before
        ((10, 18), (18, 20), True),  # a replacement meeting the end
        ((10, 18), (19, 20), False),
        ((0, 0), (0, 0), True),
    ],
)
def test_review_edits_touches(
    span: tuple[int, int], change: tuple[int, int], expected: bool
) -> None:
    assert touches(span, change) is expected


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        ("same text", "same text", []),
        ("abc", "abXc", [(2, 2)]),  # an insertion is an empty region at its point
        ("abcdef", "abef", [(2, 4)]),  # a deletion
        ("abcdef", "abXYef", [(2, 4)]),  # a replacement
        ("", "new", [(0, 0)]),
        ("old", "", [(0, 3)]),
        ("a b c d e", "X b c d Y", [(0, 1), (8, 9)]),  # two edits far apart
    ],
)
def test_review_edits_changed_regions(old: str, new: str, changes: list[tuple[int, int]]) -> None:
    assert TextEdit(old, new).changes == changes


EDITS = [
    # (new text, where "Brussels" is in it, or None when the edit touches it)
    (OLD.replace("First", "The first"), B + 4),  # before, longer
    (OLD.replace("First paragraph here.", "Intro."), B - 15),  # before, shorter
    (OLD.replace("Monday", "Tuesday"), B),  # after
    (OLD + "\n\nA new paragraph at the end.", B),
    ("New opening line.\n" + OLD, B + 18),
    (OLD.replace("Brussels", "Brussel"), None),  # in the label
    (OLD.replace("Brussels", "Antwerp"), None),
    (OLD.replace("in Brussels", "in  Brussels"), None),  # right against it
    (OLD.replace("Brussels on", "Brussels, on"), None),  # right after it
    (OLD.replace("The summit was held in Brussels on Monday.", "It was cancelled."), None),
]


@pytest.mark.parametrize(("new", "where"), EDITS)
def test_review_edits_map_span_moves_a_label_or_refuses(new: str, where: int | None) -> None:
    mapped = TextEdit(OLD, new).map_span(B, B + len("Brussels"))
    if where is None:
        assert mapped is None
    else:
        assert mapped == (where, where + len("Brussels"))
        assert new[mapped[0] : mapped[1]] == "Brussels"


@pytest.mark.parametrize(("new", "where"), EDITS)
def test_review_edits_decide_rebases_far_edits_and_replaces_touching_ones(
    new: str, where: int | None
) -> None:
    action, reason, results = decide(OLD, new, [[_loc(B, B + 8, OLD)]])
    if where is None:
        assert action == "replaced" and results == []
        assert "'Brussels'" in reason
    else:
        assert action == "rebased"
        ((item,),) = results
        assert (item["value"]["start"], item["value"]["text"]) == (where, "Brussels")


def test_review_edits_rebase_keeps_document_choices_and_per_region_text_lists() -> None:
    new = "Hello. " + OLD
    result = [
        _loc(B, B + 8, OLD),
        {
            "id": "r1",
            "from_name": "target",
            "type": "textarea",
            "value": {"start": B, "end": B + 8, "text": ["Brussels"]},
        },
        {"id": "f", "from_name": CONTROLS.flags, "type": "choices", "value": {"choices": ["x"]}},
    ]
    moved = rebase_result(result, TextEdit(OLD, new))
    assert moved is not None
    assert [m["value"].get("start") for m in moved] == [B + 7, B + 7, None]
    assert moved[1]["value"]["text"] == ["Brussels"]  # a typed target, not a quote
    assert moved[2] == result[2]
    assert result[0]["value"]["start"] == B  # the input is not changed


def test_review_edits_every_label_of_every_annotation_counts() -> None:
    new = OLD.replace("First", "Frist")
    first = _loc(0, 5, OLD)
    action, _reason, _ = decide(OLD, new, [[_loc(B, B + 8, OLD)], [first]])
    assert action == "replaced"
    action, _reason, results = decide(OLD, new, [[_loc(B, B + 8, OLD)], []])
    assert action == "rebased" and results[1] == []


def test_review_edits_long_text_with_a_local_edit() -> None:
    old = ("A sentence about Brussels and Berlin. " * 5000).strip()
    at = old.index("Berlin", 100_000)
    new = old[:at] + "Paris" + old[at + len("Berlin") :]
    edit = TextEdit(old, new)
    # difflib matches the shared letters ("r", "i"): every change is inside the old word
    assert edit.changes and all(at <= a <= b <= at + len("Berlin") for a, b in edit.changes)
    assert edit.touches(at, at + len("Berlin")) and not edit.touches(at - 5, at - 1)
    assert edit.map_span(16, 24) == (16, 24)
    end = len(old) - len("Berlin.")
    assert edit.map_span(end, end + 6) == (end - 1, end + 5)


@pytest.mark.parametrize(
    ("record", "content_hash", "expected"),
    [
        ({"content_hash": "h1", "annotations": []}, "h1", True),
        ({"content_hash": "h1", "annotations": []}, "h2", False),
        ({"annotations": []}, "h2", True),  # collected before hashes were kept
        ({"content_hash": "", "annotations": []}, "h2", False),
    ],
)
def test_review_edits_human_record_counts_only_on_its_text(
    record: dict[str, Any], content_hash: str, expected: bool
) -> None:
    assert made_on(record, content_hash) is expected


@pytest.mark.parametrize(
    ("human", "adjudicator", "expected", "stale"),
    [
        (None, None, ([], []), False),
        ("h1", None, ([A], []), False),
        ("h0", None, ([], []), True),  # made on the old text: left out
        ("h1", "h0", ([A], []), True),  # the adjudicator decided on the old text
        ("h0", "h1", ([], [A]), True),
        ("legacy", None, ([A], []), False),  # collected before hashes were kept
    ],
)
def test_history_current_work_leaves_out_records_of_another_text(
    tmp_path: Path,
    human: str | None,
    adjudicator: str | None,
    expected: tuple[list[Any], list[Any]],
    stale: bool,
) -> None:
    store = LocalStore(tmp_path)
    for key, made in (("human/d.json", human), ("human-adjudication/d.json", adjudicator)):
        if made is not None:
            record: dict[str, Any] = {"task_id": 1, "annotations": [A]}
            if made != "legacy":
                record["content_hash"] = made
            store.put_json(key, record)
    reads: list[str] = []

    def current() -> str:
        reads.append("machine")
        return "h1"

    work, left_out = current_work(store, ["human/d.json", "human-adjudication/d.json"], current)
    assert (tuple(work), left_out) == (expected, stale)
    assert reads == ([] if human is None and adjudicator is None else ["machine"])


def test_history_keep_is_write_once_and_stamps_a_legacy_human_record(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_json("human/d.json", {"task_id": 7, "annotations": [A]})
    version = {"doc_id": "d", "content_hash": "h0", "task_id": 7, "text": "old"}
    assert keep_reviewed(store, version, "human/d.json") is True
    assert keep_reviewed(store, {**version, "text": "other"}, "human/d.json") is False
    assert store.get_json(history_key("d", "h0"))["text"] == "old"
    assert store.get_json("human/d.json")["content_hash"] == "h0"
    assert keep_reviewed(store, version, "human/x.json", "adjudication") is True
    assert sorted(store.list("history/")) == ["history/d/h0.adjudication.json", "history/d/h0.json"]
