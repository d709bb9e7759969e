"""Publish and pull a release of N synthetic documents (built from corpus/samples/ texts) to a
local folder and to a real SeaweedFS started here on free ports, next to a bare baseline (the
same bytes written and read with no release logic: plain files, plain boto3 put/get). Prints
seconds, MB/s and peak memory per step.

    .venv/bin/python bench/release.py [--n 10000] [--skip-s3] [--profile publish-local]

Peak memory: `tracemalloc` peak of Python allocations (a second, traced run of the step, since
tracing slows Python down) and the process's peak RSS during the step (VmHWM, reset before each
step through /proc/self/clear_refs; ru_maxrss is the whole process's high-water mark).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import pstats
import random
import re
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus.pull import pull  # noqa: E402
from corpus.release import (  # noqa: E402
    canonical_records,
    publish,
    read_manifest,
    release_key,
    write_parquet,
    write_spacy_and_conll,
)
from corpus.store import LocalStore, S3Store, Store, s3_client  # noqa: E402
from services.seaweedfs import SeaweedService  # noqa: E402

SAMPLES = ROOT / "corpus" / "samples"
LABELS = ("PERSON", "ORG", "GPE", "NORP", "EVENT")
STANCES = ("FAVOR", "AGAINST", "NEUTRAL")
STATUSES = ("machine",) * 6 + ("reviewed",) * 2 + ("adjudicated",) * 1 + ("disputed",) * 1
NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}\b")
SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


# ---------------------------------------------------------------- synthetic records


def _paragraphs() -> list[str]:
    paragraphs: list[str] = []
    for path in sorted(SAMPLES.glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        paragraphs += [p.strip() for p in re.split(r"\n\s*\n", text) if len(p.strip()) > 40]
    if not paragraphs:
        raise SystemExit(f"no sample texts in {SAMPLES}")
    return paragraphs


def make_records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """N documents of 3-6 sample paragraphs each, every one different (its own heading, its
    own choice and order of paragraphs, a number in the text), with entities on capitalised
    names and one or two stances with evidence; review statuses mixed as in a real run."""
    paragraphs = _paragraphs()
    rng = random.Random(seed)
    records = []
    for i in range(n):
        chosen = rng.sample(paragraphs, k=min(len(paragraphs), rng.randint(3, 6)))
        text = f"Report {i}: summit coverage, part {rng.randint(1, 99)}.\n\n" + "\n\n".join(chosen)
        entities = []
        for m in NAME.finditer(text):
            if len(entities) >= 25:
                break
            if rng.random() < 0.5:
                label = LABELS[int(hashlib.md5(m.group().encode()).hexdigest(), 16) % len(LABELS)]
                entities.append(
                    {
                        "start": m.start(),
                        "end": m.end(),
                        "label": label,
                        "text": m.group(),
                        "score": round(rng.uniform(0.5, 1.0), 3),
                    }
                )
        stances = []
        sentences = [m for m in SENTENCE.finditer(text) if len(m.group().strip()) > 20]
        for e in entities[: rng.randint(0, 2)]:
            ev = rng.choice(sentences)
            stances.append(
                {
                    "target": e["text"],
                    "label": rng.choice(STANCES),
                    "score": round(rng.uniform(0.4, 1.0), 3),
                    "evidence": [{"start": ev.start(), "end": ev.end()}],
                }
            )
        status = STATUSES[i % len(STATUSES)]
        records.append(
            {
                "doc_id": hashlib.sha256(f"bench-{i}".encode()).hexdigest()[:16],
                "text": text,
                "entities": entities,
                "stances": stances,
                "metadata": {
                    "title": f"Report {i}",
                    "authors": [],
                    "published": "2026-11-01",
                    "source_url": f"https://news{i % 7}.example/{i}",
                    "rights": ("CC BY 4.0", "All rights reserved", None)[i % 3],
                },
                "review_status": status,
                "disputes": [],
                "agreement": {"entity_f1": 0.9, "stance_kappa": 0.7}
                if status != "machine"
                else {"entity_f1": None, "stance_kappa": None},
                "source": f"bench/{i}.txt",
                "annotators": [] if status == "machine" else [f"annotator-{i % 5:04x}"],
                "model_version": "en_core_web_sm@bench",
                "provenance": {"source_sha256": hashlib.sha256(text.encode()).hexdigest()},
            }
        )
    return records


# ---------------------------------------------------------------- measuring


class _PrintingList(list):  # type: ignore[type-arg]
    """Rows are printed as they are measured, so an interrupted run still shows figures."""

    def append(self, row: Row) -> None:
        super().append(row)
        print_row(row)


@dataclass
class Row:
    target: str
    step: str
    docs: int
    nbytes: int
    seconds: float
    traced_peak: int | None = None
    rss_peak: int | None = None


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_peak() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def measure(
    fn: Callable[[], Any], *, traced: bool, prepare: Callable[[], Any] | None = None
) -> tuple[float, int | None, int | None]:
    """Seconds and peak RSS of one untraced call; the tracemalloc peak of a second call."""
    if prepare:
        prepare()
    gc.collect()
    can_reset = _reset_rss_peak()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    rss = _rss_peak() if can_reset else None
    peak = None
    if traced:
        if prepare:
            prepare()
        gc.collect()
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seconds, peak, rss


def release_bytes(store: Store, version: str) -> dict[str, bytes]:
    manifest = read_manifest(store, version)
    return {f.path: store.get_bytes(release_key(version, f.path)) for f in manifest.files}


def run_target(
    name: str,
    make_store: Callable[[str], Store],
    records: list[dict[str, Any]],
    work: Path,
    *,
    traced: bool,
    baseline_put: Callable[[str, dict[str, bytes]], None],
    baseline_get: Callable[[str, list[str]], None],
    profile: str | None,
) -> list[Row]:
    rows = _PrintingList()
    runs = iter(range(1000))
    stores: list[Store] = []

    def fresh() -> None:
        stores.append(make_store(f"pub-{next(runs)}"))

    def do_publish() -> Any:
        return publish(
            stores[-1],
            records,
            label_schema={"entity_labels": list(LABELS), "stance_labels": list(STANCES)},
            agreement={"entity_f1": 0.9, "stance_kappa": 0.7},
            code_version="bench",
            model_versions=["en_core_web_sm@bench"],
        )

    if name == "local":

        def build() -> None:
            canon = canonical_records(records)
            write_spacy_and_conll(canon)
            write_parquet(canon)

        secs, peak, rss = measure(build, traced=traced)
        rows.append(Row("memory", "build formats (no store)", len(records), 0, secs, peak, rss))

    if profile == f"publish-{name}":
        fresh()
        prof = cProfile.Profile()
        prof.runcall(do_publish)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    secs, peak, rss = measure(do_publish, traced=traced, prepare=fresh)
    store = stores[-1]
    files = release_bytes(store, "v0001")
    total = sum(len(b) for b in files.values())
    rows.append(Row(name, "publish", len(records), total, secs, peak, rss))

    # unchanged input: hashes, reads latest, writes nothing
    secs, _, _ = measure(do_publish, traced=False)
    rows.append(Row(name, "publish again (unchanged)", len(records), 0, secs))

    dests = iter(range(1000))

    def do_pull() -> None:
        pull(store, "latest", dest=work / f"{name}-pull-{next(dests)}")

    secs, peak, rss = measure(do_pull, traced=traced)
    rows.append(Row(name, "pull", len(records), total, secs, peak, rss))

    bases = iter(range(1000))
    secs, peak, rss = measure(lambda: baseline_put(f"base-{next(bases)}", files), traced=traced)
    rows.append(Row(name, "baseline put (same bytes)", len(records), total, secs, peak, rss))
    secs, peak, rss = measure(lambda: baseline_get("base-0", list(files)), traced=traced)
    rows.append(Row(name, "baseline get (same bytes)", len(records), total, secs, peak, rss))
    return rows


def local_target(work: Path) -> tuple[Callable[[str], Store], Any, Any]:
    root = work / "local"

    def make_store(prefix: str) -> Store:
        return LocalStore(root / prefix)

    def put(prefix: str, files: dict[str, bytes]) -> None:
        folder = root / prefix
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)

    def get(prefix: str, names: list[str]) -> None:
        out = work / f"local-get-{time.monotonic_ns()}"
        out.mkdir()
        for name in names:
            (out / name).write_bytes((root / prefix / name).read_bytes())

    return make_store, put, get


def s3_target(service: SeaweedService, work: Path) -> tuple[Callable[[str], Store], Any, Any]:
    bucket = "corpusflow-bench"
    service.ensure_bucket(bucket)
    client = s3_client(
        endpoint_url=service.endpoint_url,
        access_key=service.access_key,
        secret_key=service.secret_key,
    )

    def make_store(prefix: str) -> Store:
        return S3Store(client, bucket, prefix)

    def put(prefix: str, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)

    def get(prefix: str, names: list[str]) -> None:
        out = work / f"s3-get-{time.monotonic_ns()}"
        out.mkdir()
        for name in names:
            body = client.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read()
            (out / name).write_bytes(body)

    return make_store, put, get


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.0f}"


HEADER = (
    f"| {'target':<9} | {'step':<28} | {'docs':>6} | {'MB':>6} | {'seconds':>8} | "
    f"{'MB/s':>7} | {'traced peak MB':>14} | {'peak RSS MB':>11} |"
)


def print_header() -> None:
    print(HEADER)
    print("|" + "|".join("-" * len(c) for c in HEADER.split("|")[1:-1]) + "|", flush=True)


def print_row(r: Row) -> None:
    rate = f"{r.nbytes / 1e6 / r.seconds:.1f}" if r.nbytes and r.seconds else "-"
    print(
        f"| {r.target:<9} | {r.step:<28} | {r.docs:>6} | {r.nbytes / 1e6:>6.1f} | "
        f"{r.seconds:>8.2f} | {rate:>7} | {_mb(r.traced_peak):>14} | "
        f"{_mb(r.rss_peak):>11} |",
        flush=True,
    )


def print_ratios(rows: list[Row]) -> None:
    """publish and pull against the bare put and get of the same bytes on the same target."""
    print("\nours vs bare baseline on the same target (seconds / seconds):")
    for r in rows:
        kind = {"publish": "baseline put", "pull": "baseline get"}.get(r.step)
        ref = next(
            (b for b in rows if b.target == r.target and kind and b.step.startswith(kind)), None
        )
        if ref is not None and ref.seconds:
            print(f"  {r.target:<9} {r.step:<8} {r.seconds / ref.seconds:6.1f}x", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="documents (default 10000)")
    parser.add_argument("--skip-s3", action="store_true", help="local folder only")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument(
        "--profile",
        choices=["publish-local", "publish-s3"],
        help="print a cProfile of one publish first",
    )
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    records = make_records(args.n)
    built = time.perf_counter() - t0
    text_mb = sum(len(r["text"].encode()) for r in records) / 1e6
    print(f"{args.n} synthetic documents ({text_mb:.1f} MB of text) built in {built:.1f}s")
    # imports (spaCy, pyarrow) and the blank pipeline once, outside every measurement
    warm = canonical_records(records[:5])
    write_spacy_and_conll(warm)
    write_parquet(warm)

    rows: list[Row] = []
    print()
    print_header()
    with tempfile.TemporaryDirectory(prefix="corpusflow-bench-") as tmp:
        work = Path(tmp)
        make_store, put, get = local_target(work)
        rows += run_target(
            "local",
            make_store,
            records,
            work,
            traced=not args.no_trace,
            baseline_put=put,
            baseline_get=get,
            profile=args.profile,
        )
        if not args.skip_s3:
            service = SeaweedService.on_free_ports(work / "seaweedfs")
            service.start(timeout=60)
            try:
                make_store, put, get = s3_target(service, work)
                rows += run_target(
                    "seaweedfs",
                    make_store,
                    records,
                    work,
                    traced=not args.no_trace,
                    baseline_put=put,
                    baseline_get=get,
                    profile=args.profile,
                )
            finally:
                service.stop()
        shutil.rmtree(work, ignore_errors=True)

    print_ratios(rows)
    print(
        f"\nprocess ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB "
        "(whole run, records included)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
