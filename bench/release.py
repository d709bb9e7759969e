"""Publish and pull releases of N synthetic documents (built from corpus/samples/ texts) to a
local folder and to a real SeaweedFS started here on free ports, next to a bare baseline (the
same objects written and read with no release logic: plain files, plain boto3 put/get on as
many threads as publish and pull use). For each N: a first version, the same input again, a
version with 1% of the documents changed (at random, as reviews land: merge-on-read, an update
part over the kept base shards), its pull, `load` and `load_docs`, and the same records as one
compacted version in a new store, pulled and loaded the same ways. Prints seconds, documents per
second, peak RSS and bytes written per step, then fits how time and memory grow with N.

    .venv/bin/python bench/release.py [--n 1000 10000] [--skip-s3] [--shard-docs 64]
                                      [--sweep 16 64 256] [--history 20]
                                      [--profile publish-local]

Records are generated one at a time and handed to `publish` as a generator, so the peak RSS of
a step is the release code's own (reset before each step through /proc/self/clear_refs, read
from VmHWM). `--sweep` publishes the largest N once per shard size given, locally.
`--history K` publishes K versions in a row at the smallest N, each changing 1% more documents,
through a compaction: what a long history costs per version.

Measured 2026-12-01 on the shared 2-core machine (load 4-5 from other work, so times are
noisy, load_docs most of all; ~1.3 KB of text per document; shard_docs 64):

| N | target | full version | 1% changed: written, objects | publish 1% |
|---|---|---|---|---|
| 1k | local | 8.64 MB, 69 objects, 1.9 s | 0.21 MB (2.5%), 7 | 0.32 s |
| 1k | SeaweedFS | 8.64 MB, 69 objects, 2.8 s | 0.21 MB (2.5%), 7 | 0.43 s |
| 10k | local | 85.3 MB, 633 objects, 42.7 s | 1.74 MB (2.0%), 11 | 10.6 s |
| 10k | SeaweedFS | 85.3 MB, 633 objects, 20.4 s | 1.74 MB (2.0%), 11 | 3.3 s |

Reading the 1%-changed version (overlaid) against the same records compacted, seconds:

| N | target | pull | load | load_docs |
|---|---|---|---|---|
| 1k | local | 0.26 / 0.24 | 0.09 / 0.03 | 2.1 / 1.4 |
| 1k | SeaweedFS | 0.46 / 0.52 | 0.10 / 0.20 | 1.5 / 2.8 |
| 10k | local | 1.49 / 1.17 | 1.06 / 0.56 | 68 / 29 |
| 10k | SeaweedFS | 4.1 / 4.5 | 1.3 / 1.0 | 17 / 20 |

(before merge-on-read, rewriting every touched shard: 57.9% at 1k, 46.7% at 10k.) The 1%
version writes one or two update parts (4 objects each), the live index (~0.8% of a full
version: 10k rows, two sha256 each) and the datasheet and notes. `--history 20` at 1k: versions
2-17 wrote 1.9-2.5% each, version 18 (dead rows past 15% of the live ones) compacted, writing
99.7%, versions 19-21 2.1-2.2% again: 7.1% of a full version per version on average, the price
of keeping a reader's overhead under 1.15x the live rows.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import math
import pstats
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus.pull import load, load_docs, pull  # noqa: E402
from corpus.release import (  # noqa: E402
    DEFAULT_SHARD_DOCS,
    PublishResult,
    canonical_records,
    publish,
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
WORKERS = 8  # publish's and pull's threads, and the baseline's


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
    return list(iter_records(n, seed))


def iter_records(
    n: int, seed: int = 7, changed: frozenset[int] = frozenset()
) -> Iterator[dict[str, Any]]:
    """N documents of 3-6 sample paragraphs each, every one different (its own heading, its
    own choice and order of paragraphs, a number in the text), with entities on capitalised
    names and one or two stances with evidence; review statuses mixed as in a real run.
    Generated one at a time (a publish of 100k documents never holds them all); the documents
    numbered in `changed` come out as a reviewer would change them (adjudicated, one entity
    fewer), every other one exactly as without `changed`."""
    paragraphs = _paragraphs()
    rng = random.Random(seed)
    for i in range(n):
        chosen = rng.sample(paragraphs, k=min(len(paragraphs), rng.randint(3, 6)))
        text = f"Report {i}: summit coverage, part {rng.randint(1, 99)}.\n\n" + "\n\n".join(chosen)
        entities: list[dict[str, Any]] = []
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
        record = {
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
        if i in changed:
            record.update(
                review_status="adjudicated",
                entities=entities[1:],
                annotators=["annotator-0001", "annotator-0002"],
            )
        yield record


# ---------------------------------------------------------------- measuring


@dataclass
class Row:
    target: str
    step: str
    docs: int
    shard_docs: int
    objects: int
    nbytes: int
    seconds: float
    rss_peak: int | None = None
    note: str = ""


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


def measure(fn: Callable[[], Any]) -> tuple[Any, float, int | None]:
    """The result, seconds and peak RSS of one call."""
    gc.collect()
    can_reset = _reset_rss_peak()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    return result, seconds, (_rss_peak() if can_reset else None)


HEADER = (
    f"| {'target':<9} | {'step':<30} | {'docs':>6} | {'shard':>5} | {'objects':>7} | "
    f"{'MB':>7} | {'seconds':>8} | {'docs/s':>7} | {'peak RSS MB':>11} | note"
)


def print_header() -> None:
    print(HEADER)
    print("|" + "|".join("-" * len(c) for c in HEADER.split("|")[1:]) + "|", flush=True)


def print_row(r: Row) -> None:
    rate = f"{r.docs / r.seconds:.0f}" if r.seconds else "-"
    rss = "-" if r.rss_peak is None else f"{r.rss_peak / 1e6:.0f}"
    print(
        f"| {r.target:<9} | {r.step:<30} | {r.docs:>6} | {r.shard_docs:>5} | {r.objects:>7} | "
        f"{r.nbytes / 1e6:>7.2f} | {r.seconds:>8.2f} | {rate:>7} | {rss:>11} | {r.note}",
        flush=True,
    )


class Rows(list[Row]):
    """Rows are printed as they are measured, so an interrupted run still shows figures."""

    def append(self, row: Row) -> None:
        super().append(row)
        print_row(row)


def _objects(result: PublishResult) -> dict[str, int]:
    return {f.object or f.path: f.size for f in result.manifest.files}


def run_target(
    name: str,
    store: Store,
    n: int,
    shard_docs: int,
    work: Path,
    rows: Rows,
    *,
    baseline: Baseline | None,
    profile: str | None,
    baseline_keys: list[str] | None = None,
) -> list[str]:
    """Measures one target; returns the keys of its first version's objects (the S3 baseline
    copies the local ones: the same shards, a datasheet that differs in the store's name)."""

    def do_publish(
        changed: frozenset[int] = frozenset(), into: Store | None = None
    ) -> PublishResult:
        return publish(
            into or store,
            iter_records(n, changed=changed),
            label_schema={"entity_labels": list(LABELS), "stance_labels": list(STANCES)},
            agreement={"entity_f1": 0.9, "stance_kappa": 0.7},
            code_version="bench",
            model_versions=["en_core_web_sm@bench"],
            shard_docs=shard_docs,
            workers=WORKERS,
            work_dir=work,
        )

    if profile == f"publish-{name}":
        prof = cProfile.Profile()
        prof.runcall(do_publish)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        return []
    first, secs, rss = measure(do_publish)
    objs = _objects(first)
    full = sum(objs.values())
    rows.append(Row(name, "publish first version", n, shard_docs, len(objs), full, secs, rss))

    again, secs, rss = measure(do_publish)
    assert not again.created
    rows.append(Row(name, "publish again (unchanged)", n, shard_docs, 0, 0, secs, rss))

    changed = frozenset(random.Random(n).sample(range(n), max(1, n // 100)))
    second, secs, rss = measure(lambda: do_publish(changed))
    new = {k: size for k, size in _objects(second).items() if k not in objs}
    kept = sum(
        a.formats == b.formats
        for a, b in zip(first.manifest.shards, second.manifest.shards, strict=True)
    )
    ratio = sum(new.values()) / full
    rows.append(
        Row(
            name,
            "publish 1% changed",
            n,
            shard_docs,
            len(new),
            sum(new.values()),
            secs,
            rss,
            f"{ratio:.1%} of a full version's bytes; {kept}/{len(second.manifest.shards)} "
            f"base shards kept, {len(second.manifest.updates)} update(s), "
            f"{second.manifest.dead_rows} dead rows",
        )
    )

    dests = iter(range(1000))
    folder, secs, rss = measure(lambda: pull(store, "latest", dest=work / f"pull-{next(dests)}"))
    pulled = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    rows.append(
        Row(name, "pull (overlaid)", n, shard_docs, len(second.manifest.files), pulled, secs, rss)
    )
    shutil.rmtree(folder.parent, ignore_errors=True)
    count, secs, rss = measure(lambda: sum(1 for _ in load(store)))
    rows.append(Row(name, "load (overlaid)", count, shard_docs, 0, 0, secs, rss))
    count, secs, rss = measure(lambda: sum(1 for _ in load_docs(store)))
    rows.append(Row(name, "load_docs (overlaid)", count, shard_docs, 0, 0, secs, rss))

    # the same records as one compacted version (base shards only), read the same ways
    compacted_store = _compacted_store(store, work, name, n)
    _, secs, rss = measure(lambda: do_publish(changed, into=compacted_store))
    rows.append(Row(name, "publish compacted (new store)", n, shard_docs, 0, 0, secs, rss))
    folder, secs, rss = measure(lambda: pull(compacted_store, dest=work / "pull-compacted"))
    pulled = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    rows.append(Row(name, "pull (compacted)", n, shard_docs, 0, pulled, secs, rss))
    shutil.rmtree(folder.parent, ignore_errors=True)
    count, secs, rss = measure(lambda: sum(1 for _ in load(compacted_store)))
    rows.append(Row(name, "load (compacted)", count, shard_docs, 0, 0, secs, rss))
    count, secs, rss = measure(lambda: sum(1 for _ in load_docs(compacted_store)))
    rows.append(Row(name, "load_docs (compacted)", count, shard_docs, 0, 0, secs, rss))

    first_keys = [f.object or f.path for f in first.manifest.files]
    if baseline is not None:
        keys = baseline_keys or first_keys
        _, secs, rss = measure(lambda: baseline.put(keys))
        rows.append(
            Row(name, "baseline put (same objects)", n, shard_docs, len(keys), full, secs, rss)
        )
        _, secs, rss = measure(lambda: baseline.get(keys))
        rows.append(
            Row(name, "baseline get (same objects)", n, shard_docs, len(keys), full, secs, rss)
        )
    return first_keys


def _compacted_store(store: Store, work: Path, name: str, n: int) -> Store:
    """An empty store of the same kind as `store`, for the compacted reference."""
    if isinstance(store, S3Store):
        return S3Store(store.client, store.bucket, f"{store.prefix}-compacted")
    return LocalStore(work / f"compacted-{name}-{n}")


def run_history(n: int, versions: int, shard_docs: int, work: Path) -> None:
    """`versions` versions in a row on a local store, each with 1% of the documents changed at
    random: bytes and objects each writes, against a full version, and when compaction comes;
    the average is what a long history costs per version."""
    store = LocalStore(work / f"history-{n}")
    kwargs: dict[str, Any] = {
        "label_schema": {"entity_labels": list(LABELS), "stance_labels": list(STANCES)},
        "agreement": {"entity_f1": 0.9, "stance_kappa": 0.7},
        "code_version": "bench",
        "model_versions": ["en_core_web_sm@bench"],
        "shard_docs": shard_docs,
        "workers": WORKERS,
        "work_dir": work,
    }
    first = publish(store, iter_records(n), **kwargs)
    seen = _objects(first)
    full = sum(seen.values())
    print(
        f"\nhistory: N={n}, {versions} versions of 1% changed each, "
        f"full version {full / 1e6:.2f} MB"
    )
    print("| version | MB written | % of full | objects | updates | dead rows | seconds |")
    print("|---|---|---|---|---|---|---|")
    rng = random.Random(n + 1)
    changed: set[int] = set()
    total = 0
    for _ in range(versions):
        # each version changes 1% more documents (a document changed once stays changed)
        changed |= set(rng.sample(range(n), max(1, n // 100)))
        t0 = time.perf_counter()
        result = publish(store, iter_records(n, changed=frozenset(changed)), **kwargs)
        secs = time.perf_counter() - t0
        new = {k: size for k, size in _objects(result).items() if k not in seen}
        seen.update(new)
        total += sum(new.values())
        m = result.manifest
        print(
            f"| {m.version} | {sum(new.values()) / 1e6:.2f} | {sum(new.values()) / full:.1%} | "
            f"{len(new)} | {len(m.updates)} | {m.dead_rows} | {secs:.1f} |",
            flush=True,
        )
    print(f"average per version: {total / versions / full:.1%} of a full version's bytes")
    shutil.rmtree(store.root, ignore_errors=True)


class Baseline:
    """The same objects, copied from the local release store with plain I/O and no release
    logic: to files (plain writes, no fsync) or with boto3 put/get on WORKERS threads."""

    def __init__(self, source: Path, work: Path, client: Any = None, bucket: str = "") -> None:
        self.source, self.work, self.client, self.bucket = source, work, client, bucket
        self.runs = 0

    def _put_one(self, prefix: str, key: str) -> None:
        data = (self.source / key).read_bytes()
        if self.client is None:
            path = self.work / prefix / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.client.put_object(Bucket=self.bucket, Key=f"{prefix}/{key}", Body=data)

    def put(self, keys: list[str]) -> None:
        self.runs += 1
        prefix = f"base-{self.runs}"
        with ThreadPoolExecutor(WORKERS if self.client else 1) as pool:
            list(pool.map(lambda k: self._put_one(prefix, k), keys))

    def get(self, keys: list[str]) -> None:
        prefix = f"base-{self.runs}"
        out = self.work / f"{prefix}-get"

        def one(key: str) -> None:
            if self.client is None:
                data = (self.work / prefix / key).read_bytes()
            else:
                body = self.client.get_object(Bucket=self.bucket, Key=f"{prefix}/{key}")["Body"]
                data = body.read()
            path = out / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        with ThreadPoolExecutor(WORKERS if self.client else 1) as pool:
            list(pool.map(one, keys))
        shutil.rmtree(out, ignore_errors=True)
        if self.client is None:
            shutil.rmtree(self.work / prefix, ignore_errors=True)


def build_only(n: int, shard_docs: int) -> None:
    """The formats of every shard, built and dropped: publish's CPU without any store."""
    batch: list[dict[str, Any]] = []
    for record in iter_records(n):
        batch.append(record)
        if len(batch) == shard_docs:
            canon = canonical_records(batch)
            write_spacy_and_conll(canon)
            write_parquet(canon)
            batch = []
    if batch:
        canon = canonical_records(batch)
        write_spacy_and_conll(canon)
        write_parquet(canon)


def fit(rows: list[Row]) -> None:
    """Least squares of log(seconds) and log(peak RSS) on log(N), per target and step."""
    print("\ngrowth with N (seconds ~ N^b, peak RSS ~ N^c; least squares over the Ns run):")
    keys = sorted({(r.target, r.step) for r in rows})
    for target, step in keys:
        pts = [r for r in rows if (r.target, r.step) == (target, step) and r.seconds > 0]
        if len({r.docs for r in pts}) < 2:
            continue
        xs = [math.log(r.docs) for r in pts]

        def slope(ys: list[float], xs: list[float] = xs) -> tuple[float, float]:
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
                (x - mx) ** 2 for x in xs
            )
            return b, my - b * mx

        b, a = slope([math.log(r.seconds) for r in pts])
        at_1m = math.exp(a + b * math.log(1e6))
        line = f"  {target:<9} {step:<30} time N^{b:.2f} (1M: {at_1m:,.0f} s)"
        rss = [r for r in pts if r.rss_peak]
        if len(rss) == len(pts):
            c, a2 = slope([math.log(r.rss_peak or 1) for r in pts])
            line += f", RSS N^{c:.2f} (1M: {math.exp(a2 + c * math.log(1e6)) / 1e6:,.0f} MB)"
        print(line, flush=True)


def print_ratios(rows: list[Row]) -> None:
    print("\nours vs bare baseline on the same target and N (seconds / seconds):")
    for r in rows:
        kind = {"publish first version": "baseline put", "pull (overlaid)": "baseline get"}.get(
            r.step
        )
        ref = next(
            (
                b
                for b in rows
                if (b.target, b.docs, b.shard_docs) == (r.target, r.docs, r.shard_docs)
                and kind
                and b.step.startswith(kind)
            ),
            None,
        )
        if ref is not None and ref.seconds:
            print(
                f"  {r.target:<9} N={r.docs:<7} {r.step:<22} {r.seconds / ref.seconds:6.1f}x",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000], help="documents")
    parser.add_argument("--skip-s3", action="store_true", help="local folder only")
    parser.add_argument("--skip-local", action="store_true", help="SeaweedFS only, no baseline")
    parser.add_argument(
        "--skip-build-only", action="store_true", help="skip the formats-without-store row"
    )
    parser.add_argument("--shard-docs", type=int, default=DEFAULT_SHARD_DOCS)
    parser.add_argument("--sweep", type=int, nargs="*", default=[], help="shard sizes to try")
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="also publish this many 1%%-changed versions in a row at the smallest N",
    )
    parser.add_argument(
        "--profile",
        choices=["publish-local", "publish-s3"],
        help="print a cProfile of one publish instead",
    )
    args = parser.parse_args(argv)

    for n in args.n:
        text_mb = sum(len(r["text"].encode()) for r in iter_records(n)) / 1e6
        print(f"N={n}: {text_mb:.1f} MB of text")
    # imports (spaCy, pyarrow) and the blank pipeline once, outside every measurement
    warm = canonical_records(make_records(5))
    write_spacy_and_conll(warm)
    write_parquet(warm)

    rows = Rows()
    print()
    print_header()
    with tempfile.TemporaryDirectory(prefix="corpusflow-bench-") as tmp:
        work = Path(tmp)
        service = None
        if not args.skip_s3:
            service = SeaweedService.on_free_ports(work / "seaweedfs")
            service.start(timeout=60)
        try:
            for n in args.n:
                _, secs, rss = measure(lambda: sum(1 for _ in iter_records(n)))  # noqa: B023
                rows.append(Row("input", "generate records only", n, 0, 0, 0, secs, rss))
                if not args.skip_build_only:
                    _, secs, rss = measure(lambda: build_only(n, args.shard_docs))  # noqa: B023
                    rows.append(
                        Row(
                            "memory",
                            "build formats (no store)",
                            n,
                            args.shard_docs,
                            0,
                            0,
                            secs,
                            rss,
                        )
                    )
                local = work / f"local-{n}"
                local_keys = None
                if not args.skip_local:
                    local_keys = run_target(
                        "local",
                        LocalStore(local),
                        n,
                        args.shard_docs,
                        work,
                        rows,
                        baseline=Baseline(local, work / "base"),
                        profile=args.profile,
                    )
                if service is not None:
                    bucket = "corpusflow-bench"
                    service.ensure_bucket(bucket)
                    client = s3_client(
                        endpoint_url=service.endpoint_url,
                        access_key=service.access_key,
                        secret_key=service.secret_key,
                    )
                    run_target(
                        "seaweedfs",
                        S3Store(client, bucket, f"n{n}"),
                        n,
                        args.shard_docs,
                        work,
                        rows,
                        # the baseline copies the local run's objects
                        baseline=Baseline(local, work, client, bucket) if local_keys else None,
                        profile=args.profile,
                        baseline_keys=local_keys,
                    )
                shutil.rmtree(local, ignore_errors=True)
            for shard_docs in args.sweep:
                n = max(args.n)
                run_target(
                    "sweep",
                    LocalStore(work / f"sweep-{shard_docs}"),
                    n,
                    shard_docs,
                    work,
                    rows,
                    baseline=None,
                    profile=None,
                )
                shutil.rmtree(work / f"sweep-{shard_docs}", ignore_errors=True)
            if args.history:
                run_history(min(args.n), args.history, args.shard_docs, work)
        finally:
            if service is not None:
                service.stop()

    print_ratios(rows)
    fit([r for r in rows if r.target != "sweep"])
    print(
        f"\nprocess ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB "
        "(whole run)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
