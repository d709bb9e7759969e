"""Canonical targets: group a document's entity mentions into the entities they name
(`Putin`, `Vladimir Putin`, `Russian President Vladimir Putin` -> "Vladimir Putin") and rank them
by salience. A stance is predicted toward these canonical targets.

Choices (data in `annotators/data/target_aliases.json`):
- titles and leading nationality adjectives are stripped from names;
- a person mention whose tokens appear, in order, inside a longer person name of the same
  document takes that longer name (the most frequent one if several);
- an acronym takes the long name whose initials it spells, in the same document;
- demonyms and adjectives map to their country (`Russian` -> "Russia"): in news about states,
  "Russian troops" and "the Russian invasion" are about Russia. Capitals used as metonyms
  (`Beijing`, `Moscow`) are NOT mapped: they are also where meetings happen.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span

from schemas.labeling import TARGET_LABELS

DATA_DIR = Path(__file__).parent / "data"
TARGETS_NAME = "corpusflow_targets"
SPAN_KEY = "corpusflow_targets"  # doc.spans[SPAN_KEY]: target mentions, kb_id_ = canonical target

_INITIAL_STOPWORDS = frozenset({"of", "and", "the", "for", "on", "in", "&"})


@lru_cache(maxsize=1)
def load_aliases() -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
    """(demonym -> country, alias -> canonical name, title words)."""
    data = json.loads((DATA_DIR / "target_aliases.json").read_text(encoding="utf8"))
    demonyms = {k: v for k, v in data["demonyms"].items() if v}
    names = {k.lower(): v for k, v in data["names"].items()}
    return demonyms, names, frozenset(data["titles"])


def strip_name(span: Span) -> Span:
    """The name without titles, leading nationality adjectives, quotes or possessive.

    `Russian President Vladimir Putin's` -> `Vladimir Putin`
    """
    demonyms, _, titles = load_aliases()
    start, end = span.start, span.end
    doc = span.doc
    while end - start > 1 and (
        doc[end - 1].text in {"'s", "’s", "'", "’"} or doc[end - 1].is_punct
    ):
        end -= 1
    while end - start > 1 and (
        doc[start].lower_ in titles or doc[start].text in demonyms or doc[start].is_punct
    ):
        start += 1
    return doc[start:end]


def _is_full_name(words: list[str]) -> bool:
    """A plausible person name to resolve other mentions to: 2-4 capitalised words, no dashes
    or all-caps credits (`Xi-Putin Meeting` and `Li Tao New China AP TT` are not)."""
    return 2 <= len(words) <= 4 and all(
        w[:1].isupper() and w.replace(".", "").isalpha() and not (len(w) > 1 and w.isupper())
        for w in words
    )


def acronym_of(words: list[str]) -> str:
    """`["Shanghai", "Cooperation", "Organization"]` -> "SCO"."""
    return "".join(w[0] for w in words if w.lower() not in _INITIAL_STOPWORDS and w[:1].isalpha())


def canonicalize(ents: list[Span]) -> list[str | None]:
    """The canonical target for each entity span (None for labels that are not targets)."""
    demonyms, names, _ = load_aliases()
    names_ = [strip_name(e) for e in ents]
    stripped = [[t.text for t in n] for n in names_]
    # Names that other mentions can resolve to: persons and multi-word organisations.
    person_names = Counter(
        tuple(w)
        for e, w in zip(ents, stripped, strict=True)
        if e.label_ == "PERSON" and (_is_full_name(w) or len(w) == 1)
    )
    long_orgs = [
        w
        for e, w in zip(ents, stripped, strict=True)
        if e.label_ in {"ORG", "GPE"} and len(w) > 1 and not e.ent_id_
    ]
    out: list[str | None] = []
    for ent, words, name in zip(ents, stripped, names_, strict=True):
        if ent.label_ not in TARGET_LABELS or not words:
            out.append(None)
            continue
        text = name.text
        if ent.ent_id_:
            out.append(ent.ent_id_)
        elif text.lower() in names:
            out.append(names[text.lower()])
        elif text in demonyms:
            out.append(demonyms[text])
        elif ent.label_ in {"PERSON", "ORG", "GPE", "NORP"} and (
            person := _longest_containing(words, person_names)
        ):
            out.append(person)
        elif (
            text.isupper()
            and 2 <= len(text) <= 6
            and (long := [w for w in long_orgs if acronym_of(w) == text])
        ):
            out.append(" ".join(long[0]))
        else:
            out.append(text)
    return out


def _longest_containing(words: list[str], person_names: Counter) -> str | None:
    """The longest (then most frequent) person name that contains `words` in order."""
    key = [w.lower() for w in words]
    best: tuple[int, int, tuple[str, ...]] | None = None
    for name, count in person_names.items():
        low = [w.lower() for w in name]
        n = len(key)
        if any(low[i : i + n] == key for i in range(len(low) - n + 1)):
            rank = (len(name), count, name)
            if best is None or rank[:2] > best[:2]:
                best = rank
    if best is None:
        return None
    return " ".join(best[2])


def assign_targets(doc: Doc) -> Doc:
    """Put every target-label entity in doc.spans[SPAN_KEY] with kb_id_ = its canonical target."""
    ents = list(doc.ents)
    mentions = [
        Span(doc, e.start, e.end, label=e.label_, kb_id=target)
        for e, target in zip(ents, canonicalize(ents), strict=True)
        if target
    ]
    doc.spans[SPAN_KEY] = mentions
    return doc


def target_counts(doc: Doc) -> Counter:
    """Mentions per canonical target."""
    return Counter(span.kb_id_ for span in doc.spans.get(SPAN_KEY, []))


def salient_targets(doc: Doc, top_n: int = 5, min_mentions: int = 1) -> list[str]:
    """The `top_n` canonical targets by mention count (ties: first mentioned first)."""
    first: dict[str, int] = {}
    for span in doc.spans.get(SPAN_KEY, []):
        first.setdefault(span.kb_id_, span.start)
    counts = target_counts(doc)
    ranked = sorted(counts, key=lambda t: (-counts[t], first[t]))
    return [t for t in ranked if counts[t] >= min_mentions][:top_n]


def find_mentions(doc: Doc, target: str) -> list[Span]:
    """Mentions of `target` in `doc`: its canonical mentions if the targets component ran, else
    (or in addition) exact token matches of the name, of its surname, and of its demonyms."""
    demonyms, names, _ = load_aliases()
    target = names.get(target.strip().lower(), target.strip())
    found = [s for s in doc.spans.get(SPAN_KEY, []) if s.kb_id_.lower() == target.lower()]
    if found:
        return found
    words = [w.lower() for w in target.split() if w.strip("\"'“”")]
    words = [w.strip("\"'“”") for w in words]
    if not words:
        return []
    candidates = {tuple(words)}
    if len(words) > 1 and target[:1].isupper():
        candidates.add((words[-1],))
    candidates |= {(d.lower(),) for d, country in demonyms.items() if country == target}
    candidates |= {tuple(a.split()) for a, canon in names.items() if canon == target}
    lower = [t.lower_ for t in doc]
    spans: list[Span] = []
    taken: set[int] = set()
    for cand in sorted(candidates, key=len, reverse=True):
        n = len(cand)
        for i in range(len(lower) - n + 1):
            if tuple(lower[i : i + n]) == cand and not taken & set(range(i, i + n)):
                spans.append(Span(doc, i, i + n, label="TARGET", kb_id=target))
                taken |= set(range(i, i + n))
    return sorted(spans, key=lambda s: s.start)


@Language.component(TARGETS_NAME)
def targets_component(doc: Doc) -> Doc:
    return assign_targets(doc)


__all__ = [
    "SPAN_KEY",
    "acronym_of",
    "assign_targets",
    "canonicalize",
    "find_mentions",
    "salient_targets",
    "strip_name",
    "target_counts",
]
