"""Edits on the decoded source text and the one function that applies them, producing the clean
text together with the removed spans, repairs and the clean -> source offset map."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.records import OffsetSegment, RemovedSpan, Repair


@dataclass(frozen=True, order=True)
class Edit:
    """Source span `[start, end)` either removed (`replacement is None`) or replaced."""

    start: int
    end: int
    kind: str
    replacement: str | None = None

    @property
    def is_removal(self) -> bool:
        return self.replacement is None


@dataclass
class Applied:
    text: str
    removed: list[RemovedSpan]
    repairs: list[Repair]
    offset_map: list[OffsetSegment]


def resolve_overlaps(edits: list[Edit]) -> list[Edit]:
    """Sort edits and drop any that overlaps one already kept (earlier start, then longer wins).

    [Edit(0, 5, "a"), Edit(3, 8, "b")] -> [Edit(0, 5, "a")]
    """
    kept: list[Edit] = []
    last_end = -1
    for e in sorted(edits, key=lambda e: (e.start, -(e.end - e.start))):
        if e.end < e.start:
            continue
        if e.start < last_end or (e.start == e.end and e.start == last_end and e.is_removal):
            continue
        if e.start == e.end and e.is_removal:
            continue
        kept.append(e)
        last_end = max(last_end, e.end)
    return kept


def apply_edits(source: str, edits: list[Edit]) -> Applied:
    """Build the clean text: source outside the edits is copied (one offset segment per run),
    removals vanish, repairs put their replacement in.

    apply_edits("a  b", [Edit(1, 3, "ws", " ")]).text -> "a b"
    """
    parts: list[str] = []
    removed: list[RemovedSpan] = []
    repairs: list[Repair] = []
    segments: list[OffsetSegment] = []
    pos = 0
    clean_len = 0

    def copy(upto: int) -> None:
        nonlocal clean_len
        if upto > pos:
            segments.append(
                OffsetSegment(clean_start=clean_len, source_start=pos, length=upto - pos)
            )
            parts.append(source[pos:upto])
            clean_len += upto - pos

    for e in resolve_overlaps(edits):
        copy(e.start)
        if e.replacement is None:
            removed.append(RemovedSpan(start=e.start, end=e.end, kind=e.kind))
        else:
            repairs.append(Repair(start=e.start, end=e.end, kind=e.kind, replacement=e.replacement))
            parts.append(e.replacement)
            clean_len += len(e.replacement)
        pos = e.end
    copy(len(source))
    return Applied("".join(parts), removed, repairs, segments)


def check_accounting(
    source: str,
    text: str,
    removed: list[RemovedSpan],
    repairs: list[Repair],
    offset_map: list[OffsetSegment],
) -> list[str]:
    """Problems with the invariant (empty when it holds): every clean character comes from a
    copied source run or a repair, and removed + copied + repaired spans tile the source."""
    problems: list[str] = []
    pieces: list[tuple[int, int, str]] = []
    for seg in offset_map:
        chunk = text[seg.clean_start : seg.clean_start + seg.length]
        if chunk != source[seg.source_start : seg.source_start + seg.length]:
            problems.append(f"segment {seg} does not copy the source")
        pieces.append((seg.source_start, seg.source_start + seg.length, "copy"))
    pieces += [(r.start, r.end, "removed") for r in removed]
    pieces += [(r.start, r.end, "repair") for r in repairs]
    pieces.sort()
    pos = 0
    for start, end, what in pieces:
        if start != pos:
            problems.append(f"{what} span at {start} leaves a gap or overlap at {pos}")
        pos = max(pos, end)
    if pos != len(source):
        problems.append(f"spans end at {pos}, source has {len(source)} characters")
    covered = sum(s.length for s in offset_map) + sum(len(r.replacement) for r in repairs)
    if covered != len(text):
        problems.append(f"clean text has {len(text)} characters, maps account for {covered}")
    return problems
