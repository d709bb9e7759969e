"""Named entities for news and analysis texts: the spaCy model's NER (run by
`corpusflow_scored_ner`, which keeps its action probabilities), an entity ruler for the
organisations and acronyms the small model misses, and a span-repair component (`fix_entities`:
brackets, articles, joined names, photo credits, then the rules of `annotators.ner_repairs`).

Entity scores: `entity_score` is a calibrated probability that the entity is right, from the
model's confidence in the span, its label, its source (ruler, model, span fix, repair rule) and
context (`annotators.ner_scores`, table in `data/ner_calibration.json`, fitted on re3d train;
`bench/ner.py` prints its reliability on re3d test).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from spacy.language import Language
from spacy.pipeline import EntityRuler
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from annotators.ner_repairs import apply_repairs, keeps_article
from annotators.ner_scores import (
    CALIBRATION_PATH,
    SCORED_NER_NAME,
    Calibration,
    entity_features,
    source_group,
)

DATA_DIR = Path(__file__).parent / "data"
RULER_NAME = "corpusflow_ruler"
FIXES_NAME = "corpusflow_entity_fixes"

# The score before per-entity calibration: the precision of each entity source on re3d *train*
# (mapped labels, exact span after dropping a leading article). Kept as the fallback when the
# calibration table is missing and as the baseline row of bench/ner.py's reliability table.
SOURCE_SCORES: dict[str, float] = {"ruler": 0.66, "model": 0.37, "fixed": 0.46}
CALIBRATION: Calibration | None = (
    Calibration.load(CALIBRATION_PATH) if CALIBRATION_PATH.exists() else None
)

# Value-like labels keep a leading article ("the past year" is OntoNotes' DATE span).
_VALUE_LABELS = frozenset({"DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL", "ORDINAL"})
_LEADING_WORDS = frozenset({"the", "a", "an", "this", "that", "these", "those"})
_TRAILING_WORDS = frozenset({"'s", "’s", "'", "’"})
_BRACKETS = frozenset({"(", ")", "[", "]", "{", "}"})
_HYPHENS = frozenset({"-", "–", "—"})
# lowercase words that do belong inside a person's name
_NAME_PARTICLES = frozenset(
    {"al", "bin", "ibn", "ben", "da", "de", "del", "der", "di", "dos", "du", "el", "la", "le"}
    | {"van", "von", "y", "zu"}
)
_NAME_LABELS = frozenset({"PERSON", "ORG", "GPE", "NORP"})
# Photo credit lines (`Photo: Li Tao/New China/AP/TT`, `Alexei Druzhinin, Sputnik, Kremlin Pool
# Photo via AP/TASS`): the agencies and photographers they name are not what the text is about.
# The first pattern runs from the keyword to the end of the line; the second from the start of
# the clause (after the last full stop or line break) that names a pool or an agency credit.
CREDIT_LINE = re.compile(r"\b(?:Photo(?:graph)?s?|Image|Picture|Credit)\s*(?::|by\b)[^\n]*")
# the second's keyword only: credit_ranges goes back from it to the clause's start, where
# `[^\n.]*keyword` tried every start in a sentence (15 ms a document)
CREDIT_SOURCE = re.compile(
    r"\b(?:Pool Photo|via (?:AP|AFP|Getty|Reuters|EPA|TASS|Sputnik|Xinhua))\b"
)

if not Doc.has_extension("ent_sources"):
    # "start:end" (character offsets) -> "ruler" | "model" | "fixed" | "rule:<repair name>"
    Doc.set_extension("ent_sources", default=None)


def load_ruler_patterns(path: Path = DATA_DIR / "entity_patterns.jsonl") -> list[dict]:
    """Entity ruler patterns; each carries `id` = the canonical target name of the entity."""
    with path.open(encoding="utf8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _is_junk(token) -> bool:
    return token.is_punct or token.is_space or token.text in _BRACKETS


def trim_span(span: Span) -> Span | None:
    """Strip a leading article and trailing punctuation or possessive from an entity span; a
    "The" that is part of the name stays (`keeps_article`: The Hague, `in The Globe and Mail`).

    `the Shanghai Cooperation Organization,` -> `Shanghai Cooperation Organization`
    Returns None when nothing with a letter or digit is left.
    """
    start, end = span.start, span.end
    doc = span.doc
    articles = frozenset() if span.label_ in _VALUE_LABELS else _LEADING_WORDS
    while start < end and (
        _is_junk(doc[start])
        or (doc[start].lower_ in articles and not keeps_article(doc, start, end))
    ):
        start += 1
    while end > start and (_is_junk(doc[end - 1]) or doc[end - 1].lower_ in _TRAILING_WORDS):
        end -= 1
    if start >= end or not any(ch.isalnum() for ch in doc[start:end].text):
        return None
    return Span(doc, start, end, label=span.label, kb_id=span.kb_id, span_id=span.id)


def split_span(span: Span) -> list[Span]:
    """Split an entity at brackets and line breaks, then trim each part.

    `the Shanghai Cooperation Organization (SCO` -> [`Shanghai Cooperation Organization`, `SCO`]
    """
    parts: list[Span] = []
    begin = span.start
    for token in span:
        if token.text in _BRACKETS or (token.is_space and "\n" in token.text):
            if token.i > begin:
                parts.append(span.doc[begin : token.i])
            begin = token.i + 1
    if span.end > begin:
        parts.append(span.doc[begin : span.end])
    out = []
    for part in parts:
        part = Span(span.doc, part.start, part.end, label=span.label, span_id=span.id)
        trimmed = trim_span(part)
        if trimmed is not None:
            out.append(trimmed)
    return out


def credit_ranges(text: str) -> list[tuple[int, int]]:
    """Character ranges of photo credits in `text`.

    `Archive image. Photo: Li Tao/New China/AP/TT` -> [(15, 44)]
    """
    ranges = [m.span() for m in CREDIT_LINE.finditer(text)]
    end = 0
    for m in CREDIT_SOURCE.finditer(text):
        if m.start() < end:  # inside the last credit's line
            continue
        before = m.start()
        start = max(text.rfind("\n", end, before) + 1, text.rfind(".", end, before) + 1, end)
        newline = text.find("\n", m.end())
        end = len(text) if newline < 0 else newline
        ranges.append((start, end))
    return ranges


def _joined_at(span: Span) -> list[int]:
    """Token indices of hyphens that join two words without spaces (`Xi-Putin`)."""
    doc = span.doc
    return [
        t.i
        for t in span[1:-1]
        if t.text in _HYPHENS and not t.whitespace_ and not doc[t.i - 1].whitespace_
    ]


def _is_joined_names(span: Span) -> bool:
    """A span that names more than one thing or runs on into a headline: a joining hyphen, or
    (for persons) a lowercase word that is not a name particle (`Xi Set to Meet`)."""
    if _joined_at(span):
        return True
    return span.label_ == "PERSON" and any(
        t.is_alpha and t.is_lower and t.lower_ not in _NAME_PARTICLES for t in span[1:]
    )


def split_joined_names(spans: list[Span]) -> list[Span]:
    """Replace a span that joins names (`Xi-Putin Meeting`, `Xi Set to Meet`) by the names the
    same document mentions elsewhere, each with the label it has there: `Xi`, `Putin`. A span
    with a part that is no such name (`Jean-Claude Juncker`, a name met only here) is kept."""
    known: dict[tuple[str, ...], str] = {}
    for span in spans:
        if span.label_ in _NAME_LABELS and not _is_joined_names(span):
            known.setdefault(tuple(t.text for t in span), span.label_)
            if span.label_ == "PERSON" and len(span) > 1:
                for token in span:  # surnames and given names (`Xi` of `Xi Jinping`)
                    if token.is_title:
                        known.setdefault((token.text,), "PERSON")
    out: list[Span] = []
    for span in spans:
        if span.label_ not in _NAME_LABELS or not _is_joined_names(span):
            out.append(span)
            continue
        cuts = [span.start, *(i + 1 for i in _joined_at(span)), span.end]
        parts: list[Span] = []
        for begin, end in zip(cuts, cuts[1:], strict=False):
            end = end - 1 if end < span.end else end  # without the hyphen
            words = [t.text for t in span.doc[begin:end]]
            match = next((n for n in range(len(words), 0, -1) if tuple(words[:n]) in known), None)
            if match is None:
                parts = []
                break
            name = tuple(words[:match])
            parts.append(Span(span.doc, begin, begin + match, label=known[name]))
        out += parts or [span]
    return out


def fix_entities(doc: Doc) -> Doc:
    """Repair entity spans (brackets, articles, punctuation, names joined by a hyphen or run on
    into a headline), apply the repair rules (`annotators.ner_repairs.REPAIRS`, in order), drop
    entities inside photo credits, and record each entity's source."""
    spans: list[Span] = []
    sources: dict[str, str] = {}
    for ent in doc.ents:
        origin = "ruler" if ent.ent_id_ else "model"
        for part in split_span(ent):
            changed = (part.start, part.end) != (ent.start, ent.end)
            spans.append(part)
            sources[f"{part.start_char}:{part.end_char}"] = "fixed" if changed else origin
    repaired = split_joined_names(spans)
    for span in repaired:
        if not any(span is s for s in spans):  # a name cut out of a joined span
            sources[f"{span.start_char}:{span.end_char}"] = "fixed"
    repaired, by_rule = apply_repairs(doc, repaired)
    for span in repaired:
        rule = by_rule.get((span.start, span.end, span.label_))
        if rule is not None:
            sources[f"{span.start_char}:{span.end_char}"] = f"rule:{rule}"
    credits = credit_ranges(doc.text)
    spans = filter_spans(
        [s for s in repaired if not any(a < s.end_char and s.start_char < b for a, b in credits)]
    )
    doc.ents = spans
    kept = {f"{s.start_char}:{s.end_char}" for s in spans}
    doc._.ent_sources = {key: src for key, src in sources.items() if key in kept}
    return doc


def entity_source(doc: Doc, ent: Span) -> str:
    """What produced `ent`: "ruler", "model", "fixed" or "rule:<repair name>"."""
    return (doc._.ent_sources or {}).get(f"{ent.start_char}:{ent.end_char}", "model")


def entity_score(
    doc: Doc,
    ent: Span,
    calibration: Calibration | None = CALIBRATION,
    *,
    text_counts: Mapping[str, int] | None = None,
) -> float:
    """The score of an entity: the calibrated probability that it is right (see module doc);
    without a calibration table, the measured precision of its source."""
    source = entity_source(doc, ent)
    if calibration is None:
        return SOURCE_SCORES[source_group(source)]
    return calibration.score(entity_features(doc, ent, source, text_counts=text_counts))


@Language.component(FIXES_NAME)
def entity_fixes_component(doc: Doc) -> Doc:
    return fix_entities(doc)


def add_ner_components(
    nlp: Language, *, ruler: bool = True, fixes: bool = True, scores: bool = True
) -> Language:
    """Add the entity ruler (before the model's ner, which then predicts around its matches),
    the scored ner in the model ner's place (same weights, same entities, plus the action
    probabilities the scores need; the original `ner` stays loaded but disabled), and the
    span-repair component (after them)."""
    has_ner = "ner" in nlp.pipe_names
    if ruler and RULER_NAME not in nlp.pipe_names:
        entity_ruler = cast(
            EntityRuler,
            nlp.add_pipe("entity_ruler", name=RULER_NAME, before="ner" if has_ner else None),
        )
        entity_ruler.add_patterns(load_ruler_patterns())
    if scores and has_ner and SCORED_NER_NAME not in nlp.component_names:
        nlp.add_pipe(SCORED_NER_NAME, after="ner")
        nlp.disable_pipe("ner")
    if fixes and FIXES_NAME not in nlp.pipe_names:
        after = next((n for n in (SCORED_NER_NAME, "ner") if n in nlp.pipe_names), None)
        nlp.add_pipe(FIXES_NAME, after=after)
    return nlp


__all__ = [
    "CREDIT_LINE",
    "CREDIT_SOURCE",
    "SOURCE_SCORES",
    "credit_ranges",
    "split_joined_names",
    "add_ner_components",
    "entity_score",
    "entity_source",
    "fix_entities",
    "load_ruler_patterns",
    "split_span",
    "trim_span",
]
