"""NER repair rules for news and analysis texts: small named rules over a document's entity
spans, each fixing one kind of error the small spaCy model makes, applied in a stated order by
`apply_repairs` (run inside `corpusflow_entity_fixes`; each rule is also a component of its own).

Every rule is `(doc, spans) -> spans`: pure, no I/O (its word lists are loaded once at import from
`data/ner_repairs.json`). A span a rule creates or relabels is recorded with source
`rule:<name>` so its score is calibrated as a repair, not as the model's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span, Token

LEXICON_PATH = Path(__file__).parent / "data" / "ner_repairs.json"
_LEX = json.loads(LEXICON_PATH.read_text(encoding="utf8"))

THE_NAMES: frozenset[str] = frozenset(_LEX["the_names"])
LIST_KEEP_PARTS: frozenset[str] = frozenset(_LEX["list_keep_parts"])
PARTIES: dict[str, str] = _LEX["parties"]
TITLES: frozenset[str] = frozenset(_LEX["titles"])
EMPIRE_HEADS: frozenset[str] = frozenset(_LEX["empire_heads"])
HISTORICAL_PLACES: dict[str, str] = _LEX["historical_places"]
# first word -> (words, label) of the historical places that start with it, in lexicon order
_PLACES_BY_FIRST: dict[str, list[tuple[list[str], str]]] = {}
for _name, _label in HISTORICAL_PLACES.items():
    _PLACES_BY_FIRST.setdefault(_name.split(" ")[0], []).append((_name.split(" "), _label))
NEWS_AGENCIES: frozenset[str] = frozenset(_LEX["news_agencies"])
SPEECH_WORDS: frozenset[str] = frozenset(_LEX["speech_words"])
SOURCE_NOUNS: frozenset[str] = frozenset(_LEX["source_nouns"])
ORG_SUFFIXES: frozenset[str] = frozenset(_LEX["org_suffixes"])
ROLE_WORDS: frozenset[str] = frozenset(_LEX["role_words"])

NAME_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC"})
PLACE_LABELS = frozenset({"GPE", "LOC"})
# tokens that open a quotation, a clause or a line: a capital "The" after them is an ordinary
# sentence-initial article, not part of a name
_OPENERS = frozenset({'"', "“", "‘", "'", ":", "(", "[", "—", "–", "-", ".", "!", "?", ";"})
_CONNECTORS = frozenset({"of", "and", "for", "the", "de", "du", "del", "von", "van", "al", "&"})
_MAX_NAME = 8

Rule = Callable[[Doc, list[Span]], list[Span]]


def _relabel(span: Span, label: str) -> Span:
    return Span(span.doc, span.start, span.end, label=label, kb_id=span.kb_id)


def _is_cap(token: Token) -> bool:
    return token.is_title or (token.is_upper and len(token) > 1 and token.is_alpha)


def _taken(spans: Sequence[Span], start: int, end: int) -> bool:
    return any(s.start < end and start < s.end for s in spans)


# ------------------------------------------------------------------ a leading "The"


def keeps_article(doc: Doc, i: int, end: int) -> bool:
    """Whether the capital "The" at token `i` belongs to the name `doc[i:end]`: the name is a
    known one (The Hague, The Globe and Mail) or the "The" is capitalised mid-sentence (`in The
    Hague`), which only a name does.

    `talks in The Hague` (i=2, end=4) -> True; `The United States said` (i=0, end=3) -> False
    """
    token = doc[i]
    if token.text != "The" or end <= i + 1:
        return False
    if doc[i:end].text in THE_NAMES:
        return True
    if i == 0 or token.is_sent_start is True:
        return False
    before = doc[i - 1]
    return not (before.text in _OPENERS or (before.is_space and "\n" in before.text))


def restore_the_names(doc: Doc, spans: list[Span]) -> list[Span]:
    """Put back the "The" of a known name that the span lacks: `Hague` after `The` -> `The Hague`.

    Spans that already start at "The" (the model kept it, `trim_span` let it stay) are unchanged.
    """
    out = []
    for span in spans:
        i = span.start - 1
        if (
            span.label_ in NAME_LABELS
            and i >= 0
            and doc[i].text == "The"
            and doc[i : span.end].text in THE_NAMES
            and not _taken(spans, i, i + 1)
        ):
            span = Span(doc, i, span.end, label=span.label, kb_id=span.kb_id)
        out.append(span)
    return out


# ------------------------------------------------------------------ lists


def split_lists(doc: Doc, spans: list[Span]) -> list[Span]:
    """Split a name span that is a comma-separated list into its names, each with the span's label.

    `Busan, Chennai` (GPE) -> `Busan`, `Chennai`; `University of Padua, Sussex` (ORG) ->
    `University of Padua`, `Sussex`. Unchanged: `Washington, D.C.`, `Apple, Inc.`, dates.
    """
    out: list[Span] = []
    for span in spans:
        commas = [t.i for t in span if t.text == ","]
        # "the Foreign, Home and Defence Secretaries": a plural head shared by the list
        shared_head = (
            span[-1].tag_ in ("NNS", "NNPS") and bool(commas) and commas[0] == span.start + 1
        )
        if span.label_ not in NAME_LABELS or not commas or shared_head:
            out.append(span)
            continue
        cuts = [span.start, *commas, span.end]
        parts = [
            (begin if begin == span.start else begin + 1, end)
            for begin, end in zip(cuts, cuts[1:], strict=False)
        ]
        names = [doc[a:b] for a, b in parts if b > a]
        whole = len(names) == len(parts) and all(
            _is_cap(name[0]) and name.text not in LIST_KEEP_PARTS for name in names
        )
        if not whole:
            out.append(span)
            continue
        out += [Span(doc, n.start, n.end, label=span.label) for n in names]
    return out


# ------------------------------------------------------------------ party names


def split_party_names(doc: Doc, spans: list[Span]) -> list[Span]:
    """Split a party name (and a title after it) off the front of a person's name.

    `Democrat Nancy Pelosi` (PERSON) -> `Democrat` (NORP), `Nancy Pelosi` (PERSON);
    `SPD leader Olaf Scholz` -> `SPD` (ORG), `Olaf Scholz`. Unchanged: `Nancy Pelosi`,
    `Liberal` alone, a party word that is the whole name.
    """
    out: list[Span] = []
    for span in spans:
        first = span[0]
        if span.label_ != "PERSON" or first.text not in PARTIES or len(span) < 2:
            out.append(span)
            continue
        rest = span.start + 1
        while rest < span.end and (doc[rest].text in TITLES or doc[rest].text.title() in TITLES):
            rest += 1
        if rest >= span.end or not _is_cap(doc[rest]):
            out.append(span)
            continue
        out.append(Span(doc, span.start, span.start + 1, label=PARTIES[first.text]))
        out.append(Span(doc, rest, span.end, label="PERSON"))
    return out


# ------------------------------------------------------------------ historical places


def mark_historical_places(doc: Doc, spans: list[Span]) -> list[Span]:
    """Empires and historical regions are places: relabel them, and add the ones the model missed.

    `Ottoman Empire` (ORG) -> GPE; `Mesopotamia` (PERSON, or no entity) -> LOC. Unchanged:
    `Ottoman` alone (NORP), `Empire State Building` (FAC), `Mesopotamia Street` (FAC).
    """
    out: list[Span] = []
    for span in spans:
        label = HISTORICAL_PLACES.get(span.text)
        if label is None and span[-1].text in EMPIRE_HEADS and len(span) > 1:
            label = "GPE"
        if (
            label is not None
            and span.label_ not in (label, "FAC")
            and not _inside_longer_name(doc, span.start, span.end)
        ):
            span = _relabel(span, label)
        out.append(span)
    texts = [token.text for token in doc]
    for i, text in enumerate(texts):
        for words, label in _PLACES_BY_FIRST.get(text, ()):
            end = i + len(words)
            if (
                end <= len(doc)
                and texts[i:end] == words
                and not _taken(out, i, end)
                and not _inside_longer_name(doc, i, end)
            ):
                out.append(Span(doc, i, end, label=label))
    return sorted(out, key=lambda s: s.start)


def _inside_longer_name(doc: Doc, start: int, end: int) -> bool:
    """`Kurdistan Regional Government`, `Islamic State of Iraq and the Levant`: the words are
    part of a longer name (a capital word next to them, or joined to one by of/and/the; a
    capital stop word such as a sentence-initial "The" does not count)."""
    if end < len(doc) and (_is_cap(doc[end]) or doc[end - 1].dep_ == "compound"):
        return True
    i = start - 1
    while i >= 0 and doc[i].lower_ in ("the", "of", "and"):
        i -= 1
    return i >= 0 and _is_cap(doc[i]) and not doc[i].is_stop


# ------------------------------------------------------------------ attributions


def _name_run_before(doc: Doc, end: int) -> tuple[int, int] | None:
    """The capitalised run that ends at token `end` (exclusive), internal connectors allowed."""
    start = end
    while start > 0 and end - start < _MAX_NAME:
        prev = doc[start - 1]
        if _is_cap(prev) or (
            prev.lower_ in _CONNECTORS and start - 1 > 0 and _is_cap(doc[start - 2])
        ):
            start -= 1
        else:
            break
    while start < end and not _is_cap(doc[start]):
        start += 1
    return (start, end) if start < end else None


def _name_run_after(doc: Doc, start: int) -> tuple[int, int] | None:
    end = start
    while end < len(doc) and end - start < _MAX_NAME:
        tok = doc[end]
        nxt = doc[end + 1] if end + 1 < len(doc) else None
        if _is_cap(tok) or (
            end > start and tok.lower_ in _CONNECTORS and nxt is not None and _is_cap(nxt)
        ):
            end += 1
        else:
            break
    return (start, end) if end > start else None


def _attribution_label(name: Span) -> str | None:
    """ORG for a news agency, a known outlet or an organisation-like name; PERSON for two or more
    capitalised words; None (add nothing) for a single unknown word."""
    text = name.text
    if text in NEWS_AGENCIES or text in THE_NAMES or name[-1].text in ORG_SUFFIXES:
        return "ORG"
    if any(t.lower_ in ("of", "for", "and", "&") for t in name):  # Ministry of Defence
        return "ORG"
    if (
        len(name) >= 2
        and all(t.is_title and t.is_alpha for t in name)
        and name[-1].text not in ROLE_WORDS  # "The Foreign Secretary said"
    ):
        return "PERSON"
    return None


def _strip_the(doc: Doc, start: int, end: int) -> int:
    if doc[start].text == "The" and not keeps_article(doc, start, end):
        return start + 1
    return start


def find_attributions(doc: Doc, spans: list[Span]) -> list[Span]:
    """Names that a text cites as its source: the speaker before or after a speech verb (`Reuters
    reported`, `said John Smith`), `according to X`, `told X`, and the organisation of a quoted
    expert (`John Smith, an analyst at Capital Economics`). Added where no entity covers them;
    a news agency the model labelled otherwise becomes ORG.

    Unchanged: `He said`, `officials said`, `Smith said` (one unknown word), existing entities.
    """
    found: list[tuple[int, int]] = []
    for token in doc:
        lower = token.lower_
        if lower in SPEECH_WORDS and token.is_lower:  # a capital "Warns" is a headline's
            # speaker before the verb: "Reuters reported", "John Smith said"
            before = _name_run_before(doc, token.i)
            if before:
                found.append(before)
            # speaker after the verb: "said Reuters.", "told The Globe and Mail"
            after = _name_run_after(doc, token.i + 1)
            if after:
                found.append(after)
        elif lower == "according" and token.i + 1 < len(doc) and doc[token.i + 1].lower_ == "to":
            after = _name_run_after(doc, token.i + 2)
            if after:
                found.append(after)
        elif lower in SOURCE_NOUNS and token.i + 1 < len(doc):
            # "..., an analyst at Capital Economics"
            if doc[token.i + 1].lower_ in ("at", "for", "with", "of"):
                after = _name_run_after(doc, token.i + 2)
                if after:
                    found.append(after)
    out = list(spans)
    for start, end in found:
        start = _strip_the(doc, start, end)
        if start >= end:
            continue
        name = doc[start:end]
        if name[0].is_stop and len(name) == 1:  # "He said", "It reported"
            continue
        same = [s for s in out if (s.start, s.end) == (start, end)]
        if same:
            if name.text in NEWS_AGENCIES and same[0].label_ != "ORG":
                out[out.index(same[0])] = _relabel(same[0], "ORG")
            continue
        label = _attribution_label(name)
        if label is not None and not _taken(out, start, end):
            out.append(Span(doc, start, end, label=label))
    return sorted(out, key=lambda s: s.start)


# ------------------------------------------------------------------ surnames


def propagate_surnames(doc: Doc, spans: list[Span]) -> list[Span]:
    """A lone surname takes the label of the full name it shortens in the same document.

    `Abraham Lincoln ... Lincoln` (ORG) -> `Lincoln` (PERSON); an unlabelled `Lincoln` there is
    added as PERSON. Unchanged: `Lincoln` in a document with no such person, `Lincoln Memorial`.
    """
    surnames = {
        s[-1].text
        for s in spans
        if s.label_ == "PERSON" and len(s) > 1 and s[-1].is_title and s[-1].is_alpha
    }
    if not surnames:
        return spans
    out = []
    for span in spans:
        if len(span) == 1 and span.text in surnames and span.label_ != "PERSON":
            span = _relabel(span, "PERSON")
        out.append(span)
    for token in doc:
        if (
            token.text in surnames
            and not _taken(out, token.i, token.i + 1)
            and token.pos_ in ("", "PROPN")
            and not (token.i + 1 < len(doc) and _is_cap(doc[token.i + 1]))
            and not (token.i > 0 and _is_cap(doc[token.i - 1]) and not doc[token.i - 1].is_stop)
        ):
            out.append(Span(doc, token.i, token.i + 1, label="PERSON"))
    return sorted(out, key=lambda s: s.start)


# ------------------------------------------------------------------ in order

# Splits first (so later rules see single names), attributions before surnames (a quoted
# analyst's full name teaches the surname rule).
REPAIRS: tuple[tuple[str, Rule], ...] = (
    ("split_lists", split_lists),
    ("split_party_names", split_party_names),
    ("restore_the_names", restore_the_names),
    ("mark_historical_places", mark_historical_places),
    ("find_attributions", find_attributions),
    ("propagate_surnames", propagate_surnames),
)


def _key(span: Span) -> tuple[int, int, str]:
    return span.start, span.end, span.label_


def apply_repairs(
    doc: Doc, spans: list[Span], rules: Sequence[tuple[str, Rule]] = REPAIRS
) -> tuple[list[Span], dict[tuple[int, int, str], str]]:
    """Apply `rules` in order; return the spans and, for every span a rule created or relabelled,
    the name of the (last) rule that did."""
    changed: dict[tuple[int, int, str], str] = {}
    for name, rule in rules:
        before = {_key(s) for s in spans}
        spans = rule(doc, spans)
        for span in spans:
            if _key(span) not in before:
                changed[_key(span)] = name
    return spans, changed


def _component(rule: Rule) -> Callable[[Doc], Doc]:
    def run(doc: Doc) -> Doc:
        from spacy.util import filter_spans

        doc.ents = filter_spans(rule(doc, list(doc.ents)))
        return doc

    return run


for _name, _rule in REPAIRS:
    Language.component(f"corpusflow_{_name}", func=_component(_rule))


__all__ = [
    "REPAIRS",
    "apply_repairs",
    "find_attributions",
    "keeps_article",
    "mark_historical_places",
    "propagate_surnames",
    "restore_the_names",
    "split_lists",
    "split_party_names",
]
