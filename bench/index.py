"""A stage index in memory: what `StageStore.load` holds per document and its peak while
loading, against the baseline of the layout before `Entries` (`json.loads` of the whole index,
then a dict of Entry objects), measured in the same run on the same stored index.

    .venv/bin/python -m bench.index [--n 100000 1000000]

The index is synthetic but shaped like a real one: doc ids of 25 characters, 500 documents a
shard, sha256 hex content and source hashes, a file signature (size:mtime_ns). Each variant
runs in a process of its own (tracemalloc for bytes held and peak, ru_maxrss for the process,
wall seconds without tracemalloc, best of two).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from corpus.stagestore import Entry, StageIndex, StageStore
from corpus.store import LocalStore


def write_index(root: Path, n: int) -> int:
    stage = StageStore(LocalStore(root), "clean")
    index = StageIndex("clean")
    for i in range(n):
        doc_id = f"gen-{i:08d}-{hashlib.sha1(str(i).encode()).hexdigest()[:12]}"
        shard = f"clean/shards/20261203T{i // 500:012d}-{i // 500:012x}.jsonl.gz"
        index.docs[doc_id] = Entry(
            shard,
            i % 500,
            hashlib.sha256(doc_id.encode()).hexdigest(),
            "corpusflow-clean-3",
            hashlib.sha256(doc_id.encode() + b"source").hexdigest(),
            f"{4000 + i % 9000}:{1764700000000000000 + i * 7919}",
        )
        index.shards.add(shard)
    index.dirty = True
    stage.commit(index)
    return (root / stage.index_key).stat().st_size


def baseline_load(stage: StageStore) -> dict[str, Entry]:
    """What `_read_index` did before Entries: the whole JSON, then a dict of Entry."""
    raw = json.loads(gzip.decompress(stage.store.get_bytes(stage.index_key)))
    shards, versions = raw["shards"], raw["versions"]
    return {
        row[0]: Entry(shards[row[1]], row[2], row[3], versions[row[4]], row[5], *row[6:7])
        for row in raw["docs"]
    }


def measure(root: Path, variant: str) -> dict[str, float]:
    stage = StageStore(LocalStore(root), "clean")

    def load() -> object:
        return baseline_load(stage) if variant == "baseline" else stage.load().docs

    seconds = []
    for _ in range(2):
        t = time.perf_counter()
        docs = load()
        seconds.append(time.perf_counter() - t)
        del docs
    tracemalloc.start()
    docs = load()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = len(docs)  # type: ignore[arg-type]
    t = time.perf_counter()
    shards = {e.shard for e in docs.values()}  # type: ignore[attr-defined]
    scan = time.perf_counter() - t
    return {
        "n": n,
        "seconds": min(seconds),
        "held": held / n,
        "peak": peak / n,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "scan": scan,
        "shards": len(shards),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--child", nargs=2, metavar=("ROOT", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), args.child[1])))
        return
    print(
        f"{'N':>9} {'variant':>9} {'load s':>7} {'B/doc held':>10} {'B/doc peak':>10} "
        f"{'maxrss MB':>9} {'scan s':>7}"
    )
    for n in args.n:
        with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
            size = write_index(Path(tmp), n)
            rows = {}
            for variant in ("baseline", "Entries"):
                out = subprocess.run(
                    [sys.executable, "-m", "bench.index", "--child", tmp, variant],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                rows[variant] = r = json.loads(out)
                print(
                    f"{n:>9} {variant:>9} {r['seconds']:>7.2f} {r['held']:>10.0f} "
                    f"{r['peak']:>10.0f} {r['maxrss_mb']:>9.0f} {r['scan']:>7.2f}"
                )
            b, e = rows["baseline"], rows["Entries"]
            print(
                f"{n:>9} {'ratio':>9} {e['seconds'] / b['seconds']:>7.2f} "
                f"{e['held'] / b['held']:>10.2f} {e['peak'] / b['peak']:>10.2f} "
                f"{e['maxrss_mb'] / b['maxrss_mb']:>9.2f} {e['scan'] / b['scan']:>7.2f}"
                f"   (stored index {size / n:.0f} B/doc gzip)"
            )


if __name__ == "__main__":
    main()
