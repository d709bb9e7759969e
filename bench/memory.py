"""Peak memory of `publish` per document: each step in a FRESH process (so no step inherits
another's high-water mark or caches), at two or more N, on a local store; the slope between the
Ns is what a document costs, the intercept what the code costs whatever N.

Steps, one store per N, in order: (a) a first version; (b) 1% of the documents changed (an
update part over the kept base shards, read through the previous live index); (c) 20% changed
and the last 1% removed (past the compaction threshold: base shards throughout, reused where
unchanged). Records are bench/release.py's generator, handed to `publish` one at a time, so what
grows is the release code's own state, not the input.

    .venv/bin/python -m bench.memory [--n 2000 8000] [--trace]

Measured 2026-12-01 (`--n 4000 40000`, shared 2-core machine), peak RSS slope, first / 1% changed
/ 20% changed: before (main at ccccb4e: dicts of digests, keys and index rows) 2311 / 2076 /
2877 B a document, after 1255 / 1235 / 1202 B (1M predicted 1.4 GiB, before 2.2-2.9 GiB).

`--trace`: tracemalloc in each child, its top allocation sites printed when the live index is
written (about the peak of Python objects: the input's and the parts' per-document state are
all still held then). Peak RSS is read from VmHWM after a warm-up of the three steps on 40
documents (imports, the spaCy vocabulary, pyarrow's readers and pools); RSS then is `base`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEPS = ("first", "changed-1pct", "compact-20pct")


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _kwargs() -> dict[str, Any]:
    return {
        "label_schema": {"entities": ["PERSON"]},
        "agreement": {},
        "code_version": "bench",
        "model_versions": ["m"],
        "workers": 4,
    }


def child(step: str, n: int, store_dir: Path, trace: bool) -> dict[str, Any]:
    """One step in this process: warm up, reset the high-water mark, publish, report."""
    import gc
    import tracemalloc

    import corpus.release as release
    from bench.release import iter_records
    from corpus.store import LocalStore

    with tempfile.TemporaryDirectory() as warm:  # each step's code paths once, 40 documents
        for records in (
            iter_records(40),
            iter_records(40, changed=frozenset({0})),
            iter_records(39, changed=frozenset(range(0, 40, 2))),
        ):
            release.publish(LocalStore(Path(warm)), records, **_kwargs())
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base = _vm("VmRSS")
    top: list[str] = []
    if trace:
        tracemalloc.start()
        real = release.write_index

        def traced(parts: Any) -> bytes:
            parts = list(parts)  # the rows are built by now
            snap = tracemalloc.take_snapshot()
            for stat in snap.statistics("lineno")[:12]:
                frame = stat.traceback[0]
                top.append(
                    f"{stat.size / n:8.1f} B/doc {stat.count / n:6.2f} obj/doc "
                    f"{Path(frame.filename).name}:{frame.lineno}"
                )
            return real(parts)

        release.write_index = traced  # type: ignore[assignment]
    if step == "first":
        records = iter_records(n)
    elif step == "changed-1pct":
        records = iter_records(n, changed=frozenset(range(0, n, 100)))
    else:  # 20% changed (1% of them changed before), the last 1% removed
        records = iter_records(n - n // 100, changed=frozenset(range(0, n, 5)))
    t0 = time.perf_counter()
    result = release.publish(LocalStore(store_dir), records, **_kwargs())
    seconds = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1] if trace else 0
    return {
        "step": step,
        "n": n,
        "seconds": seconds,
        "base": base,
        "peak": _vm("VmHWM"),
        "traced_peak": traced_peak,
        "version": result.version,
        "created": result.created,
        "updates": len(result.manifest.updates),
        "top": top,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "N", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        step, n, store = args.child
        print(json.dumps(child(step, int(n), Path(store), args.trace)))
        return 0

    results: list[dict[str, Any]] = []
    print(
        f"| {'step':<14} | {'docs':>6} | {'seconds':>7} | {'base MB':>7} | {'peak MB':>7} | "
        f"{'peak-base MB':>12} | {'traced MB':>9} | version"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="corpusflow-memory-") as tmp:
        for n in sorted(args.n):
            store = Path(tmp) / f"store-{n}"
            for step in STEPS:
                cmd = [sys.executable, "-m", "bench.memory", "--child", step, str(n), str(store)]
                out = subprocess.run(
                    cmd + (["--trace"] if args.trace else []),
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                r = json.loads(out.strip().splitlines()[-1])
                results.append(r)
                print(
                    f"| {step:<14} | {n:>6} | {r['seconds']:>7.1f} | {r['base'] / 2**20:>7.0f} | "
                    f"{r['peak'] / 2**20:>7.0f} | {(r['peak'] - r['base']) / 2**20:>12.1f} | "
                    f"{r['traced_peak'] / 2**20:>9.1f} | {r['version']}"
                    f"{'' if r['created'] else ' (unchanged)'}, {r['updates']} update(s)",
                    flush=True,
                )
                for line in r["top"]:
                    print(f"|     {line}")
    ns = sorted(args.n)
    if len(ns) >= 2:
        print("\nper document (peak RSS, between the smallest and the largest N):")
        for step in STEPS:
            lo = next(r for r in results if r["step"] == step and r["n"] == ns[0])
            hi = next(r for r in results if r["step"] == step and r["n"] == ns[-1])
            per_doc = (hi["peak"] - lo["peak"]) / (ns[-1] - ns[0])
            fixed = lo["peak"] - per_doc * ns[0]
            print(
                f"  {step:<14} {per_doc:8.0f} B/doc over {fixed / 2**20:.0f} MB: "
                f"100k {(fixed + per_doc * 1e5) / 2**30:.2f} GiB, "
                f"1M {(fixed + per_doc * 1e6) / 2**30:.2f} GiB"
                + (
                    f"; traced {(hi['traced_peak'] - lo['traced_peak']) / (ns[-1] - ns[0]):.0f}"
                    " B/doc"
                    if hi["traced_peak"]
                    else ""
                )
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
