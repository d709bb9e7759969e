"""Stance quality and speed on NewsMTSC (target-dependent sentiment toward people in news, MIT;
-1/0/1 read as AGAINST/NEUTRAL/FAVOR), rw test and mt test, every system in one run.

    .venv/bin/python -m bench.stance [--limit N] [--model-dir DIR]

Rows: majority class (of train); plain VADER compound of the whole sentence (+-0.05, its
authors' cut-off); the lexicon scorer through the public `predict_stance` contract; the feature
classifier fitted on the shipped seed examples (what `corpusflow train stance --from` trains
where torch is missing); the transformer (annotators/models/stance-minilm) run directly on the gold
(sentence, mention span) pairs, fp32 (when model-fp32.onnx is there: training writes it, it is
not shipped) and int8 (shipped); the int8 model again as the annotate stage's workers run it
(two processes of one thread each, every second pair each, started together); and the int8
model through `predict_stance` (spaCy finds the mentions, reported speech is kept out of the
author's stance). Each system runs in its own child process so its peak memory (max RSS) is
its own; pairs/s counts the run after loading (the spaCy parse included for the rows that need
it). Then the reliability table and expected calibration error of the int8 model on rw test,
raw (T = 1) and temperature-scaled (T from the model's config: fitted on its int8 dev logits
at training time or by `--recalibrate`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

LABELS = ("AGAINST", "NEUTRAL", "FAVOR")
SETS = ("rw", "mt")
SYSTEMS = (
    "majority",
    "vader",
    "lexicon",
    "classifier-seed",
    "transformer-fp32",
    "transformer-int8",
    "transformer-int8-2x1",
    "transformer-int8-contract",
)
NAMES = {
    "majority": "majority class (of train)",
    "vader": "VADER sentence compound (+-0.05)",
    "lexicon": "lexicon, predict_stance",
    "classifier-seed": "feature classifier on seed (no-torch)",
    "transformer-fp32": "MiniLM transformer fp32 (gold mention)",
    "transformer-int8": "MiniLM transformer int8 (gold mention)",
    "transformer-int8-2x1": "int8, 2 processes x 1 thread (as workers)",
    "transformer-int8-contract": "int8 via predict_stance (+quotes rule)",
}


def load(limit: int):
    from annotators.finetune import NEWSMTSC, newsmtsc_split, newsmtsc_train

    data = {name: newsmtsc_split(NEWSMTSC, name, "test") for name in SETS}
    if limit:
        data = {k: v[:limit] for k, v in data.items()}
    return newsmtsc_train(NEWSMTSC), data


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


def run_system(system: str, limit: int, model_dir: Path, part: tuple[int, int] = (0, 1)) -> dict:
    """Predictions of one system on every test set, with its speed and peak memory. `part`
    (i, k) keeps every k-th pair from the i-th on, and then the child waits for a line on stdin
    after loading (so that k children start predicting together) and reports the monotonic
    clock at its start and end."""
    train, data = load(limit)
    index, parts = part
    if parts > 1:
        data = {name: pairs[index::parts] for name, pairs in data.items()}
    started = time.perf_counter()
    extra: dict = {}
    if system == "majority":
        majority = Counter(p.label for p in train).most_common(1)[0][0]

        def predict(pairs):
            return [majority] * len(pairs)

    elif system == "vader":
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        vader = SentimentIntensityAnalyzer()

        def predict(pairs):
            out = []
            for p in pairs:
                c = vader.polarity_scores(p.text)["compound"]
                out.append("FAVOR" if c >= 0.05 else "AGAINST" if c <= -0.05 else "NEUTRAL")
            return out

    elif system.startswith("transformer") and not system.endswith("contract"):
        from annotators.stance_model import FP32_FILE, MODEL_FILE, OnnxStance

        file = FP32_FILE if system.endswith("fp32") else MODEL_FILE
        if not (model_dir / file).is_file():
            return {"missing": str(model_dir / file)}
        model = OnnxStance(model_dir, file)
        extra["version"] = model.version

        def predict(pairs):
            from annotators.stance_model import mark_target, softmax, window

            marked = []
            for p in pairs:
                cut, kept = window(p.text, list(p.spans))
                marked.append((mark_target(cut, kept), p.target))
            logits = model.logits(marked)
            extra.setdefault("logits", []).append(logits)
            probs = [softmax(row, model.temperature) for row in logits]
            return [LABELS[max(range(3), key=row.__getitem__)] for row in probs]

    else:  # through predict_stance: spaCy parse, mentions found by name
        from annotators.pipeline import load_nlp
        from annotators.stance import predict_stance
        from schemas.records import StanceRequest

        if system == "lexicon":
            nlp = load_nlp(stance_method="lexicon")
        elif system == "classifier-seed":
            import tempfile

            from annotators.train import seed_examples, train_stance

            base = load_nlp(stance_method="lexicon")
            seed = train_stance(seed_examples(), nlp=base)
            with tempfile.TemporaryDirectory() as tmp:
                seed.save(Path(tmp) / "stance.json")
                nlp = load_nlp(stance_model=Path(tmp) / "stance.json")
        else:
            nlp = load_nlp(stance_model=model_dir)

        def predict(pairs):
            requests = [StanceRequest(text=p.text, target=p.target) for p in pairs]
            return [r.label for r in predict_stance(requests, nlp=nlp)]

    loaded = time.perf_counter()
    if parts > 1:
        print("ready", flush=True)
        sys.stdin.readline()
    preds, seconds = {}, {}
    began = time.monotonic()
    cpu0 = time.process_time()
    for name, pairs in data.items():
        t0 = time.perf_counter()
        preds[name] = predict(pairs)
        seconds[name] = time.perf_counter() - t0
        if "logits" in extra:
            extra[f"logits_{name}"] = extra["logits"].pop()
    cpu = max(time.process_time() - cpu0, 1e-9)
    extra.pop("logits", None)
    n = sum(len(p) for p in data.values())
    return {
        "preds": preds,
        "load_s": loaded - started,
        "pairs_per_s": n / sum(seconds.values()),
        "pairs_per_cpu_s": n / cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "began": began,
        "ended": time.monotonic(),
        "cpu_s": cpu,
        **extra,
    }


REPO = Path(__file__).resolve().parents[1]


def child_command(system: str, limit: int, model_dir: Path, part: str = "0/1") -> list[str]:
    """The command of the child process that runs one system (or one part of its pairs)."""
    return [
        sys.executable, "-m", "bench.stance", "--system", system, "--limit", str(limit),
        "--model-dir", str(model_dir), "--part", part,
    ]  # fmt: skip


def run_parts(system: str, limit: int, model_dir: Path, parts: int) -> dict:
    """`system` as the pipeline's workers run it: `parts` child processes with one intra-op
    thread each (a Dask worker's `OMP_NUM_THREADS=1`), each given every `parts`-th pair, started
    together once all have loaded; pairs/s = all pairs over the span from the first start to the
    last end, peak memory the largest child's."""
    env = {**os.environ, "CORPUSFLOW_STANCE_THREADS": "1", "OMP_NUM_THREADS": "1"}
    children = [
        subprocess.Popen(
            child_command(system, limit, model_dir, f"{i}/{parts}"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for i in range(parts)
    ]
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"bench.stance child for {system} failed before loading")
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise RuntimeError(f"bench.stance child for {system} exited {child.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    if any("missing" in r for r in results):
        return results[0]
    names = results[0]["preds"].keys()
    preds = {name: [""] * sum(len(r["preds"][name]) for r in results) for name in names}
    for i, r in enumerate(results):
        for name in names:
            preds[name][i::parts] = r["preds"][name]
    n = sum(len(p) for p in preds.values())
    span = max(r["ended"] for r in results) - min(r["began"] for r in results)
    return {
        "preds": preds,
        "pairs_per_s": n / span,
        "pairs_per_cpu_s": n / sum(r["cpu_s"] for r in results),
        "peak_mb": max(r["peak_mb"] for r in results),
        "version": results[0].get("version"),
    }


def print_calibration(logits: list[list[float]], gold: Sequence[str], temperature: float) -> None:
    from annotators.stance_model import reliability, softmax

    print(f"\ncalibration of the int8 model on NewsMTSC rw test ({len(gold)} pairs)")
    tables = {}
    for name, t in (("raw (T = 1)", 1.0), (f"temperature T = {temperature}", temperature)):
        probs = [softmax(row, t) for row in logits]
        conf = [max(p) for p in probs]
        right = [LABELS[p.index(max(p))] == g for p, g in zip(probs, gold, strict=True)]
        tables[name] = reliability(conf, right, bins=10)
    header = f"{'confidence':<12}" + "".join(f"{name:>32}" for name in tables)
    print(header)
    print(f"{'':<12}" + "".join(f"{'n':>8}{'mean conf':>12}{'accuracy':>12}" for _ in tables))
    print("-" * len(header))
    for b in range(10):
        row = f"{b / 10:.1f}-{(b + 1) / 10:.1f}    "
        for table, _ in tables.values():
            cell = table[b]
            row += (
                f"{cell.count:>8}{cell.confidence:>12.3f}{cell.accuracy:>12.3f}"
                if cell.count
                else f"{0:>8}{'':>12}{'':>12}"
            )
        print(row)
    print("ECE " + ", ".join(f"{name}: {ece:.3f}" for name, (_, ece) in tables.items()))


def main(argv: list[str] | None = None) -> None:
    from annotators.stance_model import DEFAULT_MODEL_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="first N pairs of each test set")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--only", action="append", choices=SYSTEMS, help="these systems only")
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--part", default="0/1", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.system:
        index, parts = (int(x) for x in args.part.split("/"))
        result = run_system(args.system, args.limit, args.model_dir, (index, parts))
        print(json.dumps(result))
        return
    _, data = load(args.limit)
    results = {}
    for system in args.only or SYSTEMS:
        if system == "transformer-int8-2x1":
            results[system] = run_parts("transformer-int8", args.limit, args.model_dir, 2)
            continue
        out = subprocess.run(
            child_command(system, args.limit, args.model_dir),
            check=True, capture_output=True, text=True, cwd=REPO,
        )  # fmt: skip
        results[system] = json.loads(out.stdout.strip().splitlines()[-1])
    for name in SETS:
        gold = [p.label for p in data[name]]
        dist = Counter(gold)
        print(
            f"\nNewsMTSC {name} test: {len(gold)} pairs ("
            + ", ".join(f"{k} {dist[k]}" for k in LABELS)
            + ")"
        )
        header = (
            f"{'system':<42}{'macro-F1':>9}{'acc':>7}"
            + "".join(f"{k:>9}" for k in LABELS)
            + f"{'pairs/s':>9}{'pairs/cpu-s':>12}{'peak MB':>9}"
        )
        print(header)
        print("-" * len(header))
        for system, r in results.items():
            if "missing" in r:
                print(f"{NAMES[system]:<42}  (not run: {r['missing']} is missing)")
                continue
            t = f1_table(gold, r["preds"][name])
            per = "".join(f"{t[k]:>9.3f}" for k in LABELS)
            print(
                f"{NAMES[system]:<42}{t['macro']:>9.3f}{t['acc']:>7.3f}{per}"
                f"{min(r['pairs_per_s'], 1e6):>9.0f}{min(r['pairs_per_cpu_s'], 1e6):>12.0f}"
                f"{r['peak_mb']:>9.0f}"
            )
    int8 = results.get("transformer-int8", {})
    if "logits_rw" in int8:
        config = json.loads((args.model_dir / "config.json").read_text(encoding="utf8"))
        print(f"\nmodel {int8['version']} ({args.model_dir})")
        print_calibration(
            int8["logits_rw"], [p.label for p in data["rw"]], float(config["temperature"])
        )
    print(
        "\npairs/s: both test sets, after loading (wall clock; depends on what else the machine"
        " runs); pairs/cpu-s: per CPU second of all the process's threads; the predict_stance"
        " rows include the spaCy parse; the 2 x 1 row: two processes of one thread each, as the"
        " annotate stage's workers run the model (pairs/s over both, from the first start to the"
        " last end)"
    )


if __name__ == "__main__":
    main()
