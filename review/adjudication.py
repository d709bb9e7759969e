"""Adjudication tasks: what an adjudicator sees of a disputed document. The disputes come
first, each as the competing versions side by side (annotators under pseudonyms, never their
emails); the draft the labeling UI pre-fills holds only what the annotators agreed on, so no
disputed item is decided by default: Submit without a choice leaves it out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from review.results import sentence_spans, to_result, to_task
from schemas.records import (
    AdjudicationResult,
    AnnotatedDocument,
    Dispute,
    HumanAnnotation,
    SpanLabel,
    StanceLabel,
)

ADJUDICATION_SUFFIX = " – adjudication"
# The model_version of the draft prediction (the project points at it, so the UI pre-fills it).
AGREED_VERSION = "agreed"
_NONE = "—"


@dataclass(frozen=True)
class AdjudicationItem:
    """A disputed document, every annotation collected for it, and the adjudication decision
    (its accepted items are what the annotators agreed on, its disputes what they did not)."""

    doc: AnnotatedDocument
    annotations: Sequence[HumanAnnotation]
    decision: AdjudicationResult


def adjudication_title(title: str) -> str:
    """The title of the adjudication project of the review project `title`."""
    return f"{title}{ADJUDICATION_SUFFIX}"


def pseudonym(index: int) -> str:
    return f"annotator-{index + 1}"


def versions(annotations: Sequence[HumanAnnotation]) -> list[HumanAnnotation]:
    """Each annotator's latest annotation (adjudicators' left out), in the order of their
    emails: version i is shown as pseudonym(i)."""
    latest: dict[str, HumanAnnotation] = {}
    for a in annotations:
        if a.role == "annotator":
            latest[a.annotator] = a  # the last one given wins, as in the adjudication rules
    return [latest[k] for k in sorted(latest)]


def agreed(decision: AdjudicationResult) -> tuple[list[SpanLabel], list[StanceLabel]]:
    """The accepted items of a decision, less anything a dispute touches (defensive: the
    rules never accept and dispute the same span or target)."""
    spans = {(d.start, d.end) for d in decision.disputes if d.kind == "entity"}
    targets = {d.target for d in decision.disputes if d.kind == "stance"}
    entities = [e for e in decision.entities if (e.start, e.end) not in spans]
    stances = [s for s in decision.stances if s.target not in targets]
    return entities, stances


def _quote(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sentence_around(text: str, start: int, end: int) -> str:
    for s, e in sentence_spans(text):
        if s <= start and end <= e:
            return text[s:e]
    return text[start:end]


def _entity_cell(version: HumanAnnotation, dispute: Dispute) -> str:
    labels = sorted(
        e.label for e in version.entities if (e.start, e.end) == (dispute.start, dispute.end)
    )
    return ", ".join(labels) if labels else f"{_NONE} (no entity)"


def _stance_cell(version: HumanAnnotation, dispute: Dispute, text: str) -> str:
    mine = [s for s in version.stances if s.target == dispute.target]
    if not mine:
        return f"{_NONE} (no stance)"
    stance = mine[-1]
    where = "; ".join(f"“{escape(_quote(text[ev.start : ev.end]))}”" for ev in stance.evidence)
    return f"<b>{escape(stance.label)}</b>" + (f"<br/><small>{where}</small>" if where else "")


def disputes_html(
    doc: AnnotatedDocument, shown: Sequence[HumanAnnotation], disputes: Sequence[Dispute]
) -> str:
    """The disputes as an HTML table: one row per disputed item (what and where), one column
    per annotator (pseudonym) holding what they said about it; differing flags last."""
    names = [pseudonym(i) for i in range(len(shown))]
    head = "".join(f"<th>{escape(n)} said</th>" for n in names)
    rows: list[str] = []
    for n, d in enumerate(disputes, 1):
        if d.kind == "entity" and d.start is not None and d.end is not None:
            span = doc.text[d.start : d.end]
            context = _quote(_sentence_around(doc.text, d.start, d.end))
            what = (
                f"Entity <b>“{escape(span)}”</b> <small>[{d.start}–{d.end}]</small>"
                f"<br/><small>in: {escape(context)}</small>"
            )
            cells = [escape(_entity_cell(v, d)) for v in shown]
        else:
            what = f"Stance toward <b>{escape(d.target or '')}</b>"
            cells = [_stance_cell(v, d, doc.text) for v in shown]
        tds = "".join(f"<td>{c}</td>" for c in cells)
        rows.append(f"<tr><td>{n}</td><td>{what}</td>{tds}</tr>")
    flags = sorted({f for v in shown for f in v.flags})
    for flag in flags:
        said = ["yes" if flag in v.flags else "no" for v in shown]
        if len(set(said)) > 1:
            tds = "".join(f"<td>{s}</td>" for s in said)
            rows.append(f"<tr><td>–</td><td>Flag <b>{escape(flag)}</b></td>{tds}</tr>")
    title = (
        f"<b>{len(disputes)} disputed item{'s' if len(disputes) != 1 else ''} — decide each "
        "one in the text below (nothing disputed is pre-filled)</b>"
    )
    return (
        f"<div>{title}<table><thead><tr><th>#</th><th>Item</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def agreed_flags(shown: Sequence[HumanAnnotation]) -> list[str]:
    """Flags a strict majority of the annotators raised."""
    counts: dict[str, int] = {}
    for v in shown:
        for f in set(v.flags):
            counts[f] = counts.get(f, 0) + 1
    return sorted(f for f, c in counts.items() if 2 * c > len(shown))


def adjudication_task(item: AdjudicationItem) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(task data, predictions) of a disputed document's adjudication task: the review task's
    data plus the disputes table, and one prediction, the agreed draft."""
    doc = item.doc
    shown = versions(item.annotations)
    disputes = list(item.decision.disputes)
    entities, stances = agreed(item.decision)
    data = {
        **to_task(doc),
        "disputes_html": disputes_html(doc, shown, disputes),
        "annotators": len(shown),
        "disputes": len(disputes),
    }
    draft = {
        "model_version": AGREED_VERSION,
        "score": 1.0,
        "result": to_result(doc.text, entities, stances, agreed_flags(shown)),
    }
    return data, [draft]


__all__ = [
    "ADJUDICATION_SUFFIX",
    "AGREED_VERSION",
    "AdjudicationItem",
    "adjudication_task",
    "adjudication_title",
    "agreed",
    "agreed_flags",
    "disputes_html",
    "pseudonym",
    "versions",
]
