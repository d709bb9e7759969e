"""Records <-> Label Studio: task data, predictions (machine labels with their scores) and
result lists (regions), with control names read from the labeling config (review/config.py)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from xml.sax.saxutils import escape, quoteattr

from review.config import CONTROLS, EVIDENCE_LABEL, ControlNames
from schemas.labeling import ENTITY_LABELS, STANCE_LABELS
from schemas.records import (
    AnnotatedDocument,
    Entity,
    Evidence,
    SpanLabel,
    Stance,
    StanceLabel,
)

Result = list[dict[str, Any]]
# The task data fields we write; a change in any of them is a change of the task. (No field is
# called `source`: the labeling UI resolves `$source` to its own task source, not to our data.)
TASK_FIELDS = ("text", "doc_id", "content_hash", "title", "heading", "byline", "source_url")

# A sentence ends at . ! ? (closing quotes and brackets included) before white space; not after
# a lone letter or number ("J. Smith", "1. The", "No. 5") or a common abbreviation.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)")
_NO_END_BEFORE = re.compile(
    r"(?:\b[A-Za-z]|\b\d+|\b(?:Mr|Mrs|Ms|Dr|Prof|St|Sen|Rep|Gov|Gen|Jr|Sr|No|vs|etc|Inc|Ltd|Co|"
    r"Corp|U\.S|U\.K|E\.U))$"
)
# What may open a line without being part of its sentence: a list number or bullet.
_LIST_MARKER = re.compile(r"(?:\d{1,3}[.)]|[-*•–])\s+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The sentences of a text as (start, end), without surrounding white space and without a
    leading list marker; a line break always ends a sentence (titles, list items). Pieces with
    no letter in them (a lone "1.") are not sentences.

    "Title\\n1. The EU acted. It won." -> spans of "Title", "The EU acted.", "It won." """
    spans: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        start = pos
        pos += len(line) + 1
        cut = start
        pieces: list[tuple[int, int]] = []
        for match in _SENTENCE_END.finditer(line):
            end = start + match.end()
            if _NO_END_BEFORE.search(text[cut : start + match.start()]):
                continue
            pieces.append((cut, end))
            cut = end
        pieces.append((cut, start + len(line)))
        for s, e in pieces:
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            marker = _LIST_MARKER.match(text, s, e)
            if marker:
                s = marker.end()
            if any(ch.isalpha() for ch in text[s:e]):
                spans.append((s, e))
    return spans


def _region_id(*parts: object) -> str:
    """A stable region id, so the same annotations always give the same result."""
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:10]


def _sentence_of(
    sentences: Sequence[tuple[int, int]], start: int, end: int
) -> tuple[int, int] | None:
    """The sentence sharing most characters with [start, end); else the first one after it."""
    best, most = None, 0
    for s, e in sentences:
        shared = min(e, end) - max(s, start)
        if shared > most:
            best, most = (s, e), shared
    if best is None:
        best = next(((s, e) for s, e in sentences if s >= start), None)
    return best


def machine_stances(doc: AnnotatedDocument) -> list[Stance]:
    """The document's stances as annotators are asked to review them: each evidence span
    moved to the sentence of the text it falls in (the title line is not evidence), at most
    one region per (sentence, target), and a stance without evidence given the sentence of its
    target's first mention, else the first sentence."""
    title = (doc.metadata.title or "").strip()
    sentences = [(s, e) for s, e in sentence_spans(doc.text) if doc.text[s:e].strip() != title]
    if not sentences:
        return list(doc.stances)
    out: list[Stance] = []
    for stance in doc.stances:
        spans = [(ev.start, ev.end) for ev in stance.evidence] or [
            _mention(doc.text, doc.entities, stance.target) or sentences[0]
        ]
        snapped: list[tuple[int, int]] = []
        for s, e in spans:
            found = _sentence_of(sentences, s, e) or sentences[0]
            if found not in snapped:
                snapped.append(found)
        evidence = [Evidence(start=s, end=e) for s, e in sorted(snapped)]
        out.append(stance.model_copy(update={"evidence": evidence}))
    return out


def _mention(text: str, entities: Sequence[object], target: str) -> tuple[int, int] | None:
    """The target's first mention: an entity resolved to it, else the name in the text."""
    for entity in entities:
        if getattr(entity, "target", None) == target or getattr(entity, "text", None) == target:
            return (entity.start, entity.end)  # type: ignore[attr-defined]
    found = text.lower().find(target.lower()) if target else -1
    return (found, found + len(target)) if found >= 0 else None


def _fallback_evidence(text: str, target: str, entities: Sequence[object]) -> Evidence:
    """Where a stance has no evidence, its region is the sentence of the target's first
    mention, else the first sentence: a region is the only way a stance can be shown and
    corrected in Label Studio."""
    sentences = sentence_spans(text) or [(0, len(text))]
    where = _mention(text, entities, target)
    s, e = (_sentence_of(sentences, *where) if where else None) or sentences[0]
    return Evidence(start=s, end=e)


def to_result(
    text: str,
    entities: Iterable[Entity | SpanLabel] = (),
    stances: Iterable[Stance | StanceLabel] = (),
    flags: Iterable[str] = (),
    controls: ControlNames = CONTROLS,
) -> Result:
    """Records -> a Label Studio result list. Entity labels outside the label schema are left
    out (annotators are not asked to review them). Each stance evidence span becomes one region
    of the evidence control carrying, per region, the target and the stance choice; a second
    stance on the same (span, target) is left out (one region per sentence and target)."""
    c = controls
    result: Result = []
    entity_list = list(entities)
    for e in entity_list:
        if e.label not in ENTITY_LABELS:
            continue
        item: dict[str, Any] = {
            "id": _region_id("entity", e.start, e.end, e.label),
            "from_name": c.entities,
            "to_name": c.text,
            "type": "labels",
            "value": {
                "start": e.start,
                "end": e.end,
                "text": text[e.start : e.end],
                "labels": [e.label],
            },
        }
        if isinstance(e, Entity):
            item["score"] = e.score
        result.append(item)
    seen: set[str] = set()
    for s in stances:
        evidence = list(s.evidence) or [_fallback_evidence(text, s.target, entity_list)]
        for ev in evidence:
            rid = _region_id("stance", s.target, ev.start, ev.end)
            if rid in seen:
                continue
            seen.add(rid)
            span = {"start": ev.start, "end": ev.end}
            region: dict[str, Any] = {
                "id": rid,
                "from_name": c.evidence,
                "to_name": c.text,
                "type": "labels",
                "value": {**span, "text": text[ev.start : ev.end], "labels": [EVIDENCE_LABEL]},
            }
            if isinstance(s, Stance):
                region["score"] = s.score
            result.append(region)
            result.append(
                {
                    "id": rid,
                    "from_name": c.stance_target,
                    "to_name": c.text,
                    "type": "textarea",
                    "value": {**span, "text": [s.target]},
                }
            )
            result.append(
                {
                    "id": rid,
                    "from_name": c.stance,
                    "to_name": c.text,
                    "type": "choices",
                    "value": {**span, "choices": [s.label]},
                }
            )
    flag_list = list(flags)
    if flag_list:
        result.append(
            {
                "id": _region_id("flags"),
                "from_name": c.flags,
                "to_name": c.text,
                "type": "choices",
                "value": {"choices": flag_list},
            }
        )
    return result


def from_result(
    result: Iterable[dict[str, Any]], controls: ControlNames = CONTROLS
) -> tuple[list[SpanLabel], list[StanceLabel], list[str]]:
    """A Label Studio result list -> (entities, stances, flags).

    Stance regions are joined to their per-region target and choice by region id, then grouped
    by target: one StanceLabel per target with all its evidence, labelled by the majority of its
    regions (a tie goes to the region earliest in the text). An evidence region without a
    target or a stance choice is incomplete and left out. Items of other controls are ignored."""
    c = controls
    entities: set[SpanLabel] = set()
    regions: dict[str, tuple[int, int]] = {}
    targets: dict[str, str] = {}
    choices: dict[str, str] = {}
    flags: list[str] = []
    for item in result:
        name, value, rid = item.get("from_name"), item.get("value") or {}, item.get("id", "")
        if name == c.entities:
            for label in value.get("labels", []):
                entities.add(SpanLabel(start=value["start"], end=value["end"], label=label))
        elif name == c.evidence:
            regions[rid] = (value["start"], value["end"])
        elif name == c.stance_target:
            typed = " ".join(t.strip() for t in value.get("text", []) if t and t.strip())
            if typed:
                targets[rid] = typed
        elif name == c.stance:
            picked = [x for x in value.get("choices", []) if x in STANCE_LABELS]
            if picked:
                choices[rid] = picked[0]
        elif name == c.flags:
            flags.extend(x for x in value.get("choices", []) if x not in flags)

    by_target: dict[str, list[tuple[tuple[int, int], str]]] = defaultdict(list)
    for rid, span in regions.items():
        if rid in targets and rid in choices:
            by_target[targets[rid]].append((span, choices[rid]))
    stances = []
    for target, found in sorted(by_target.items()):
        found.sort()
        votes = Counter(label for _, label in found)
        top = max(votes.values())
        label = next(label for _, label in found if votes[label] == top)
        evidence = tuple(Evidence(start=s, end=e) for (s, e) in sorted({span for span, _ in found}))
        stances.append(StanceLabel(target=target, label=label, evidence=evidence))  # type: ignore[arg-type]
    return sorted(entities, key=lambda e: (e.start, e.end, e.label)), stances, flags


def byline(doc: AnnotatedDocument) -> str:
    """The small HTML line under the title: the source (a link when it is a URL), the
    authors and the date."""
    url = doc.metadata.source_url or ""
    if urlparse(url).scheme in ("http", "https"):
        where = f'<a href={quoteattr(url)} target="_blank" rel="noopener">{escape(url)}</a>'
    else:
        where = escape(url or doc.source)
    parts = [where]
    if doc.metadata.authors:
        parts.append(escape(", ".join(doc.metadata.authors)))
    if doc.metadata.published:
        parts.append(escape(doc.metadata.published))
    return "Source: " + " · ".join(parts)


def heading(doc: AnnotatedDocument) -> str:
    """The title to show above the text: the title, unless the text opens with it (as cleaned
    articles do: the title is their first line, and shown twice it reads as a repeated
    heading). The text itself is never cut: every label's offsets are into it."""
    title = " ".join((doc.metadata.title or "").split())
    first = " ".join(doc.text.lstrip().split("\n", 1)[0].split())
    return "" if not title or first.casefold().startswith(title.casefold()) else title


def to_task(doc: AnnotatedDocument) -> dict[str, Any]:
    """The task data of a document (what annotators see, and our keys to find it again).
    `title` is the document's title (a column of the task list); `heading` is what the
    labeling view shows above the text."""
    return {
        "text": doc.text,
        "doc_id": doc.doc_id,
        "content_hash": doc.content_hash,
        "title": doc.metadata.title or "",
        "heading": heading(doc),
        "byline": byline(doc),
        "source_url": doc.metadata.source_url or doc.source,
    }


def document_score(doc: AnnotatedDocument) -> float:
    """How sure the machine is of a document, from its item scores (one per entity under
    review, one per stance): half the lowest (one doubtful label makes a doubtful document),
    half the mean (so documents whose lowest scores tie, e.g. on a per-source prior, are still
    told apart by the rest). 1.0 with nothing to review. Label Studio serves the lowest first."""
    scores = [e.score for e in doc.entities if e.label in ENTITY_LABELS]
    scores += [s.score for s in doc.stances]
    if not scores:
        return 1.0
    return round(0.5 * min(scores) + 0.5 * sum(scores) / len(scores), 6)


def to_prediction(doc: AnnotatedDocument) -> dict[str, Any]:
    """The machine annotations of a document as one Label Studio prediction, with its
    document score (see document_score) and stance evidence on sentences (machine_stances)."""
    return {
        "model_version": doc.model_version,
        "score": document_score(doc),
        "result": to_result(doc.text, doc.entities, machine_stances(doc)),
    }


def has_prediction(doc: AnnotatedDocument) -> bool:
    return bool(doc.model_version or doc.entities or doc.stances)


def to_import_task(doc: AnnotatedDocument) -> dict[str, Any]:
    """A task as Label Studio imports it: data plus, if there are any, its predictions."""
    task: dict[str, Any] = {"data": to_task(doc)}
    if has_prediction(doc):
        task["predictions"] = [to_prediction(doc)]
    return task


def write_import_file(docs: Iterable[AnnotatedDocument], path: Path) -> int:
    """Write a Label Studio JSON import file (tasks with their predictions) for an operator to
    import by hand; returns the number of tasks. Used when no Label Studio is configured.
    Streamed: one task is encoded and written at a time (a JSON array, one task per line), so
    memory holds one task whatever the number of documents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("[")
        for doc in docs:
            f.write(",\n" if n else "\n")
            # the C encoder (no indent): several times faster than indent's pure-Python one
            f.write(json.dumps(to_import_task(doc), ensure_ascii=False))
            n += 1
        f.write("\n]\n" if n else "]\n")
    tmp.replace(path)
    return n


def same_result(a: Result, b: Result) -> bool:
    keys = ("id", "from_name", "to_name", "type", "value", "score")

    def norm(result: Result) -> list[str]:
        return sorted(
            json.dumps({k: r.get(k) for k in keys}, sort_keys=True, ensure_ascii=False)
            for r in result
        )

    return norm(a) == norm(b)


__all__ = [
    "TASK_FIELDS",
    "Result",
    "byline",
    "heading",
    "document_score",
    "from_result",
    "has_prediction",
    "machine_stances",
    "same_result",
    "sentence_spans",
    "to_import_task",
    "to_prediction",
    "to_result",
    "to_task",
    "write_import_file",
]
