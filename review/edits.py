"""Edited sources after review: where a document's text changed under human work, whether the
change touches a human label, and the labels' offsets on the new text when it does not.

A review task holds human work on one text (its `content_hash`). When the source is edited,
push either re-bases that work (every labelled span lies in text the edit left alone: the
spans are moved to their place in the new text) or replaces the task (an edit touches a
label: the new text gets a fresh task with machine labels only). Either way the old version is
kept as a `ReviewedVersion` (review/client.py hands it to the caller before changing
anything), and the old task is marked superseded."""

from __future__ import annotations

import difflib
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Span = tuple[int, int]
Action = Literal["rebased", "replaced", "left"]


@dataclass(frozen=True)
class Block:
    """`length` characters equal in both texts, from `old` in the old and `new` in the new."""

    old: int
    new: int
    length: int


class TextEdit:
    """What changed between two texts: the equal blocks and the changed regions in old-text
    offsets (an insertion is an empty region at its point). The common prefix and suffix are
    set aside first (a local edit of a long text costs only its middle); the middle is
    compared line by line, then, inside lines that differ, word by word (words, runs of white
    space, single punctuation marks): a label covers whole words, so a changed word touches
    every label on it. A changed stretch too long to compare exactly (over MAX_WORD_PAIRS
    word pairs) is compared with difflib's autojunk heuristic (frequent words cannot start a
    match): still right, maybe finding less equal text, and whatever is not found equal
    counts as changed, so its labels are replaced rather than moved."""

    MAX_WORD_PAIRS = 4_000_000

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new
        prefix = _common_prefix(old, new)
        suffix = _common_suffix(old[prefix:], new[prefix:])
        blocks: list[Block] = [Block(0, 0, prefix)] if prefix else []
        lines_old = _pieces(_LINE, old, prefix, len(old) - suffix)
        lines_new = _pieces(_LINE, new, prefix, len(new) - suffix)
        for tag, i1, i2, j1, j2 in _opcodes(lines_old, lines_new):
            if tag == "equal":
                blocks.append(_block(lines_old[i1:i2], lines_new[j1:j2]))
            elif i1 < i2 and j1 < j2:
                start_old, end_old = lines_old[i1][1], _end(lines_old[i2 - 1])
                start_new, end_new = lines_new[j1][1], _end(lines_new[j2 - 1])
                words_old = _pieces(_WORD, old, start_old, end_old)
                words_new = _pieces(_WORD, new, start_new, end_new)
                exact = len(words_old) * len(words_new) <= self.MAX_WORD_PAIRS
                for wtag, a1, a2, b1, b2 in _opcodes(words_old, words_new, autojunk=not exact):
                    if wtag == "equal":
                        blocks.append(_block(words_old[a1:a2], words_new[b1:b2]))
        if suffix:
            blocks.append(Block(len(old) - suffix, len(new) - suffix, suffix))
        self.blocks = blocks
        self.changes: list[Span] = []
        o = n = 0
        for blk in [*blocks, Block(len(old), len(new), 0)]:
            if blk.old > o or blk.new > n:
                self.changes.append((o, blk.old))
            o, n = blk.old + blk.length, blk.new + blk.length
        self._starts = [b.old for b in blocks]

    def touches(self, start: int, end: int) -> bool:
        """Whether an edit falls inside [start, end) or right against it: an insertion or a
        replacement adjacent to a label may have changed the word it labels."""
        return any(touches((start, end), change) for change in self.changes)

    def map_span(self, start: int, end: int) -> Span | None:
        """[start, end) of the old text in the new one, when the span lies in one equal block
        and no edit touches it; None otherwise."""
        if self.touches(start, end):
            return None
        i = bisect_right(self._starts, start) - 1
        if i < 0:
            return None
        blk = self.blocks[i]
        if end > blk.old + blk.length:
            return None
        shift = blk.new - blk.old
        return start + shift, end + shift


def touches(span: Span, change: Span) -> bool:
    """A labelled span [s, e) and a changed region [a, b) of the old text (a == b: an insertion
    at a) touch when they share a character or meet: `a <= e and s <= b`.

    touches((10, 18), (0, 5)) -> False; touches((10, 18), (18, 18)) -> True"""
    (s, e), (a, b) = span, change
    return a <= e and s <= b


_LINE = re.compile(r"[^\n]*\n|[^\n]+")
_WORD = re.compile(r"\w+|\s+|[^\w\s]")
Piece = tuple[str, int]  # a line or word and its offset in the text


def _pieces(pattern: re.Pattern[str], text: str, start: int, end: int) -> list[Piece]:
    """The lines or words of text[start:end] with their offsets in `text` (they cover it)."""
    return [(m.group(), m.start()) for m in pattern.finditer(text, start, end)]


def _opcodes(
    a: Sequence[Piece], b: Sequence[Piece], autojunk: bool = False
) -> Sequence[tuple[str, int, int, int, int]]:
    # autojunk off unless asked: it keeps frequent pieces (blank lines, "the") from starting
    # a match, which is fast but may miss equal text
    matcher = difflib.SequenceMatcher(None, [p for p, _ in a], [p for p, _ in b], autojunk=autojunk)
    return matcher.get_opcodes()


def _end(piece: Piece) -> int:
    return piece[1] + len(piece[0])


def _block(old: Sequence[Piece], new: Sequence[Piece]) -> Block:
    """Equal runs of pieces (contiguous, so the same characters) as one Block."""
    return Block(old[0][1], new[0][1], _end(old[-1]) - old[0][1])


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    lo, hi = 0, n
    while lo < hi:  # binary search on slices: C speed for long texts
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str) -> int:
    return _common_prefix(a[::-1], b[::-1])


# ---------------------------------------------------------------- results


def labelled_spans(result: Iterable[dict[str, Any]]) -> list[Span]:
    """Every span a Label Studio result refers to (entity and evidence regions and the
    per-region choices and target that belong to them). Document-level choices have none."""
    spans = []
    for item in result:
        value = item.get("value") or {}
        if "start" in value and "end" in value:
            spans.append((int(value["start"]), int(value["end"])))
    return spans


def rebase_result(result: Sequence[dict[str, Any]], edit: TextEdit) -> list[dict[str, Any]] | None:
    """The result with every region moved to the new text (a region's quoted `text` re-read
    from it), or None when an edit touches any of its spans."""
    out = []
    for item in result:
        value = item.get("value") or {}
        if "start" not in value or "end" not in value:
            out.append(item)
            continue
        mapped = edit.map_span(int(value["start"]), int(value["end"]))
        if mapped is None:
            return None
        s, e = mapped
        moved = {**value, "start": s, "end": e}
        if isinstance(value.get("text"), str):  # the quoted span; a textarea's text is a list
            moved["text"] = edit.new[s:e]
        out.append({**item, "value": moved})
    return out


def decide(
    old_text: str, new_text: str, results: Sequence[Sequence[dict[str, Any]]]
) -> tuple[Action, str, list[list[dict[str, Any]]]]:
    """Re-base or replace the human work (`results`: one result list per annotation) of a
    task whose text changed: (action, why, the re-based results; empty when replaced)."""
    edit = TextEdit(old_text, new_text)
    rebased = []
    for result in results:
        moved = rebase_result(result, edit)
        if moved is None:
            hit = next(s for s in labelled_spans(result) if edit.touches(*s))
            return (
                "replaced",
                f"the edit touches a human label at {hit[0]}-{hit[1]}"
                f" ({_quote(old_text[hit[0] : hit[1]])})",
                [],
            )
        rebased.append(moved)
    where = ", ".join(f"{a}-{b}" for a, b in edit.changes[:3]) or "none"
    more = f" and {len(edit.changes) - 3} more" if len(edit.changes) > 3 else ""
    return "rebased", f"no human label touches the edit (old text {where}{more})", rebased


def _quote(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# ---------------------------------------------------------------- records


class ReviewedAnnotation(BaseModel):
    """One human annotation as Label Studio held it (skips included), on the old text."""

    model_config = ConfigDict(extra="ignore")

    id: int
    completed_by: int | None = None
    annotator: str | None = None  # email, when the user is known
    result: list[dict[str, Any]] = Field(default_factory=list)
    was_cancelled: bool = False
    ground_truth: bool = False
    lead_time: float | None = None
    created_at: str | None = None
    updated_at: str | None = None


class ReviewedVersion(BaseModel):
    """The reviewed version of a document kept when its source changed: the text people
    labelled, its content hash, their annotations and drafts, and what became of the task."""

    model_config = ConfigDict(extra="ignore")

    doc_id: str
    content_hash: str
    text: str
    task_id: int
    project_id: int
    annotations: list[ReviewedAnnotation] = Field(default_factory=list)
    drafts: list[dict[str, Any]] = Field(default_factory=list)
    superseded_by: str  # the content hash of the text that replaced it
    action: Action
    reason: str


class EditedDocument(BaseModel):
    """What push did with one document edited under human work (the run report lists them)."""

    doc_id: str
    source: str = ""  # the source's key, as the store has it (escape it to print it)
    action: Action
    old_hash: str
    new_hash: str
    old_task_id: int
    task_id: int | None = None  # the task of the new text
    annotations: int = 0  # human annotations re-based onto it
    reason: str


__all__ = [
    "Action",
    "Block",
    "EditedDocument",
    "ReviewedAnnotation",
    "ReviewedVersion",
    "TextEdit",
    "decide",
    "labelled_spans",
    "rebase_result",
    "touches",
]
