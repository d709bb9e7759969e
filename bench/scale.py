"""Whole runs at scale, in one run: `corpus_pipeline` (ingest -> annotate -> push -> collect ->
adjudicate -> publish) over N generated news-like articles (~860 words, unique ids, .txt
sources), on a local store (embedded mode) and on a real SeaweedFS started here; for each N
(a) a first run, (b) an unchanged re-run, (c) a re-run with 1% of the sources changed.
Prints wall time, docs/s, peak RSS, S3 requests per document (counted with a botocore event
hook on the process's one S3 client) and, for (c), the bytes the new release version wrote
against the bytes of a full version. Then annotate throughput with 1 and 2 workers against
bare `nlp.pipe` on a subset (bench/parallel.py's passes), and a fit of time and memory in N
with what it predicts for 1M documents.

    .venv/bin/python -m bench.scale [--n 1000 10000] [--big] [--skip-s3] [--annotate-docs 64]
                                    [--fresh] [--cold]

What the rows measure: the store rows are real flow runs with everything real except the
annotate stage's model: the spaCy pipeline is swapped for a regex tagger in this process
(`fast path`, ~0.1 ms per document instead of ~0.2 CPU-s), so that store, ingest, review
files, adjudication and release costs are measured at N this machine can afford. The
annotate rows run the real model (`annotate_batch` over the stage store) on a subset.
`--big` adds N = 100k. `--fresh` runs each N in a process of its own (a larger N's peak RSS
is then not the high-water mark a smaller N left behind) and fits over all of them. `--cold`
runs (b) and (c) each in a new process on the store (a) wrote, as an operator's next
`corpusflow run` or a deployment's next flow run is: without it they run in the first run's
process, and their peak RSS starts from what that run's publish left in the heap.

Under each row: seconds and peak RSS per stage (StageTimes).

Measured 2026-12-01 (`--n 1000 10000 --annotate-docs 0`, 2 shared cores, other helpers' test
suites running), first / unchanged / 1% changed: 1k local 28 s / 1.1 s / 8.2 s, SeaweedFS
34 s / 2.1 s / 11 s; 10k local 185 s / 2.1 s / 71 s, SeaweedFS 306 s / 2.5 s / 80 s (publish
66-74 s of the 1% run; every other stage 4-7 s). S3 requests per document at 10k 1.48 /
0.0039 / 0.13 (an unchanged run: 40 requests whatever N). Peak RSS 454 -> 527 MB, ~7 KiB per
document (fit: 1.1 GiB at 100k, ~7 GiB at 1M), set by a first run's publish. Fit to 1M:
unchanged re-run seconds (N^0.07-0.3), 1% changed 1.2-1.5 h (publish), first run 2.3 h local,
6.7 h SeaweedFS (fast path). Before (same day, same bench): 10k SeaweedFS 389 s / 24 s /
182 s, 0.0041 requests per document unchanged. `--n 20000 --skip-s3` alone in its process:
700 s / 4.3 s, peak 529 MB (459 MB before publish) against 454 MB for 1k: ~4 KiB a document.
`--n 2000 8000 --skip-s3 --annotate-docs 0 --fresh`, first / 1% run peak RSS: before compact
publish state 445 -> 476 / 447 -> 512 MB, after 446 -> 473 / 449 -> 504 MB; publish's own
increment over the stages before it 64 -> 65 MB on a first run (the growth left is theirs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.release import _paragraphs, _reset_rss_peak, _rss_peak, measure  # noqa: E402

WORDS = 800  # paragraphs are added until past it: ~860 on average
FAST_MODEL = "fast-path-regex@bench"
NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}\b")


# ---------------------------------------------------------------- generated sources


def article(i: int, paragraphs: list[str], rng: random.Random) -> str:
    """A news-like article of about WORDS words: a headline, a dateline, sample paragraphs in
    an order of its own, numbers of its own (so every document is different)."""
    words = 0
    body: list[str] = []
    while words < WORDS:
        p = rng.choice(paragraphs)
        body.append(p)
        words += len(p.split())
    head = f"Summit report {i}: talks resume for round {rng.randint(2, 90)}"
    dateline = f"GENEVA, Nov. {1 + i % 28} - Delegates from {3 + i % 40} countries met again."
    return "\n\n".join([head, dateline, *body]) + "\n"


def write_sources(folder: Path, n: int, seed: int = 11) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    paragraphs = _paragraphs()
    rng = random.Random(seed)
    words = 0
    for i in range(n):
        text = article(i, paragraphs, rng)
        words += len(text.split())
        (folder / f"a{i:07d}.txt").write_text(text, encoding="utf-8")
    return words


def change_sources(folder: Path, fraction: float, seed: int) -> int:
    """`fraction` of the sources edited (a correction appended), at random."""
    files = sorted(folder.glob("*.txt"))
    chosen = random.Random(seed).sample(files, k=max(1, int(len(files) * fraction)))
    for path in chosen:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"\nCorrection {seed}: an earlier version misstated a figure.\n")
    return len(chosen)


# ---------------------------------------------------------------- the fast path


@contextlib.contextmanager
def fast_annotate() -> Iterator[None]:
    """annotate's model swapped for a regex tagger in this process (the flow runs its batches
    in this process with 1 worker)."""
    import annotators.pipeline as pipeline
    from schemas import AnnotatedDocument

    def annotate(docs: Any, nlp: Any = None, **_: Any) -> list[AnnotatedDocument]:
        out = []
        for doc in docs:
            ents = [
                {
                    "start": m.start(),
                    "end": m.end(),
                    "label": "PERSON",
                    "text": m.group(),
                    "score": 0.5,
                }
                for m in list(NAME.finditer(doc.text))[:20]
            ]
            out.append(
                AnnotatedDocument.from_clean(
                    doc, entities=ents, stances=[], model_version=FAST_MODEL
                )
            )
        return out

    saved = (pipeline.annotate, pipeline.load_nlp, pipeline.model_version_for)
    pipeline.annotate = annotate  # type: ignore[assignment]
    pipeline.load_nlp = lambda *a, **k: None  # type: ignore[assignment]
    pipeline.model_version_for = lambda *a, **k: FAST_MODEL  # type: ignore[assignment]
    try:
        yield
    finally:
        pipeline.annotate, pipeline.load_nlp, pipeline.model_version_for = saved


# ---------------------------------------------------------------- per-stage time


class StageTimes:
    """Seconds and peak RSS of each stage of a run: the stage functions the flow calls wrapped
    (in their modules' namespaces, and the batch tasks' `.fn`) for the bench's life. The peak
    is the kernel's high-water mark (VmHWM), reset when a stage starts: `peak` keeps the
    largest seen, so that the run's own peak survives the resets."""

    STAGES = (  # (module, attribute, stage name)
        ("flows.pipeline", "discover", "discover"),
        ("flows.pipeline", "migrate_stages", "migrate"),
        ("flows.tasks", "ingest_batch", "ingest"),
        ("flows.pipeline", "commit_stage", "commit"),
        ("flows.pipeline", "annotate_todo", "annotate"),
        ("flows.tasks", "annotate_batch", "annotate"),
        ("flows.tasks", "push_review", "push"),
        ("flows.tasks", "collect_review", "collect"),
        ("flows.tasks", "adjudicate_all", "adjudicate"),
        ("flows.tasks", "publish_release", "publish"),
        ("flows.pipeline", "write_run_report", "report"),
        ("flows.pipeline", "publish_artifacts", "report"),
    )

    def __init__(self) -> None:
        import importlib

        self.seconds: dict[str, float] = {}
        self.rss: dict[str, int] = {}
        self.peak = 0
        self._saved: list[tuple[Any, str, Any]] = []
        for module_name, attr, stage in self.STAGES:
            module = importlib.import_module(module_name)
            obj = getattr(module, attr)
            if hasattr(obj, "fn"):  # a Prefect task: its body, wherever it is called from
                self._saved.append((obj, "fn", obj.fn))
                obj.fn = self._timed(obj.fn, stage)
            else:
                self._saved.append((module, attr, obj))
                setattr(module, attr, self._timed(obj, stage))

    def _timed(self, fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        import functools

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.peak = max(self.peak, _rss_peak() or 0)  # what came before this stage
            _reset_rss_peak()
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
                rss = _rss_peak() or 0
                self.rss[stage] = max(self.rss.get(stage, 0), rss)
                self.peak = max(self.peak, rss)

        return timed

    def take(self) -> tuple[str, str]:
        """("ingest 3.1, publish 2.0, ...", "publish 512, ingest 480, ..."): seconds per stage,
        longest first, and peak RSS MB per stage, largest first; then starts again."""
        times = ", ".join(
            f"{k} {v:.1f}"
            for k, v in sorted(self.seconds.items(), key=lambda x: -x[1])
            if v >= 0.05
        )
        rss = ", ".join(
            f"{k} {v / 2**20:.0f}" for k, v in sorted(self.rss.items(), key=lambda x: -x[1])[:4]
        )
        self.seconds, self.rss = {}, {}
        return times, rss

    def start(self) -> None:
        self.peak = 0

    def restore(self) -> None:
        for obj, attr, fn in reversed(self._saved):
            setattr(obj, attr, fn)


# ---------------------------------------------------------------- counting S3 requests


class Requests:
    def __init__(self, client: Any) -> None:
        self.n = 0
        self.by_op: dict[str, int] = {}
        client.meta.events.register("before-call.s3", self._seen, unique_id="bench-scale")

    def _seen(self, model: Any, **_: Any) -> None:
        self.n += 1
        self.by_op[model.name] = self.by_op.get(model.name, 0) + 1

    def take(self) -> tuple[int, dict[str, int]]:
        out = (self.n, dict(self.by_op))
        self.n, self.by_op = 0, {}
        return out


# ---------------------------------------------------------------- one target


@dataclass
class Row:
    target: str
    step: str
    docs: int
    seconds: float
    rss: int | None
    requests: int | None = None
    note: str = ""
    stages: str = ""  # seconds per stage, longest first
    stage_rss: str = ""  # peak RSS MB per stage, largest first


HEADER = (
    f"| {'target':<9} | {'step':<26} | {'docs':>7} | {'seconds':>8} | {'docs/s':>7} | "
    f"{'peak RSS MB':>11} | {'S3 req/doc':>10} | note"
)


def print_row(r: Row) -> None:
    rate = f"{r.docs / r.seconds:.1f}" if r.seconds else "-"
    rss = "-" if r.rss is None else f"{r.rss / 2**20:.0f}"
    req = "-" if r.requests is None else f"{r.requests / max(r.docs, 1):.4f}"
    print(
        f"| {r.target:<9} | {r.step:<26} | {r.docs:>7} | {r.seconds:>8.2f} | {rate:>7} | "
        f"{rss:>11} | {req:>10} | {r.note}",
        flush=True,
    )


def release_bytes(store: Any) -> str:
    """Bytes of the objects the latest version added against the bytes of a full version."""
    from corpus.release import read_latest, read_manifest

    latest, _ = read_latest(store)
    if latest is None or latest.get("previous") is None:
        return "no new version"
    new = read_manifest(store, latest["version"])
    old = read_manifest(store, latest["previous"])
    have = {f.object for f in old.files}
    full = sum(f.size for f in new.files)
    added = sum(f.size for f in new.files if f.object not in have)
    return f"publish wrote {added / 1e6:.2f} of {full / 1e6:.2f} MB ({100 * added / full:.1f}%)"


def run_summary(r: dict[str, Any]) -> str:
    """What a run did, from its report: documents cleaned and annotated, the release."""
    ing, ann, rel = r["ingest"], r["annotate"], r["release"]
    return (
        f"cleaned {ing['cleaned']}, annotated {ann['annotated']}, release {rel['version']}"
        f"{' new' if rel['created'] else ' unchanged'}"
    )


def ops_note(by_op: dict[str, int]) -> str:
    """ "; GetObject 16, PutObject 4, ..." (most first), or "" when no request was counted."""
    ops = ", ".join(f"{op} {k}" for op, k in sorted(by_op.items(), key=lambda x: -x[1]))
    return f"; {ops}" if ops else ""


def print_stages(row: Row) -> None:
    print(f"|   stages s: {row.stages}; peak RSS MB by stage: {row.stage_rss}", flush=True)


def run_target(
    target: str,
    store_url: str,
    n: int,
    sources: Path,
    rows: list[Row],
    counter: Requests | None,
    times: StageTimes,
    cold: bool = False,
) -> None:
    from corpus.store import open_store_from_settings
    from flows.pipeline import corpus_pipeline
    from schemas.settings import Settings

    def step(
        name: str, fn: Callable[[], dict[str, Any]], note: Callable[[dict[str, Any]], str]
    ) -> None:
        if counter:
            counter.take()
        times.start()
        report, secs, rss = measure(fn)
        if rss is not None:  # the stages reset the high-water mark: the largest they saw
            rss = max(rss, times.peak)
        requests, by_op = counter.take() if counter else (None, {})
        row = Row(target, name, n, secs, rss, requests, note(report) + ops_note(by_op))
        row.stages, row.stage_rss = times.take()
        rows.append(row)
        print_row(row)
        print_stages(row)

    def run() -> dict[str, Any]:
        return corpus_pipeline(sources=str(sources), store=store_url)

    def cold_step(name: str, extra: Callable[[], str] = lambda: "") -> None:
        """The run in a new process, as an operator's next `corpusflow run` (or a deployment's
        flow run) is: nothing the runs before it left in this process's heap counts."""
        row = Row(**cold_child(target, name, store_url, n, sources, counter is not None))
        row.note += extra()
        rows.append(row)
        print_row(row)
        print_stages(row)

    step("(a) first run", run, run_summary)
    store = open_store_from_settings(Settings(store=store_url))
    if cold:
        cold_step("(b) unchanged, new process")
        changed = change_sources(sources, 0.01, seed=n)
        cold_step(f"(c) {changed} changed, new process", lambda: "; " + release_bytes(store))
        return
    step("(b) unchanged re-run", run, run_summary)
    changed = change_sources(sources, 0.01, seed=n)
    step(
        f"(c) {changed} changed (1%)",
        run,
        lambda r: run_summary(r) + "; " + release_bytes(store),
    )


def cold_child(
    target: str, step: str, store_url: str, n: int, sources: Path, count_s3: bool
) -> dict[str, Any]:
    """One run of `corpus_pipeline` by a child process of this bench (`--cold-step`), in this
    process's environment (store keys, Label Studio, PREFECT_HOME); its Row as a dict."""
    import subprocess

    cmd = [sys.executable, "-m", "bench.scale", "--cold-step", step, "--cold-target", target]
    cmd += ["--cold-store", store_url, "--cold-sources", str(sources), "--n", str(n)]
    cmd += ["--cold-count-s3"] * count_s3
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cold step {step!r} failed (exit {done.returncode}):\n{done.stderr}")
    row = json.loads(done.stderr.strip().splitlines()[-1])
    row["note"] += f"; process {time.perf_counter() - t0:.1f} s wall, imports included"
    return row


def cold_main(args: argparse.Namespace) -> int:
    """The child of `cold_child`: one run, its Row on the last line of stderr. Its peak RSS
    is the process's high-water mark during the run, imports (done before it) included in the
    level, as in the rows of one process; nothing an earlier run left behind is."""
    from flows.pipeline import corpus_pipeline

    counter = None
    if args.cold_count_s3:
        from corpus.store import s3_client

        counter = Requests(
            s3_client(
                endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                access_key=os.environ["AWS_ACCESS_KEY_ID"],
                secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            )
        )
    with fast_annotate():
        times = StageTimes()
        # the high-water mark from here on (reset: the kernel's VmHWM), as the other rows
        r, seconds, rss = measure(
            lambda: corpus_pipeline(sources=args.cold_sources, store=args.cold_store)
        )
    requests, by_op = counter.take() if counter else (None, {})
    note = run_summary(r) + ops_note(by_op)
    stages, stage_rss = times.take()
    row = Row(
        args.cold_target,
        args.cold_step,
        args.n[0],
        seconds,
        max(rss or 0, times.peak) or None,
        requests,
        note,
        stages,
        stage_rss,
    )
    print(json.dumps(row.__dict__), file=sys.stderr)
    return 0


# ---------------------------------------------------------------- annotate throughput


def annotate_rows(texts: list[str], batch_size: int, rows: list[Row]) -> None:
    """bench/parallel.py's passes (the real annotate_batch, real model) on these texts."""
    import spacy
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from annotators.pipeline import load_nlp
    from bench.parallel import _annotate_pass, _prepare
    from flows.pipeline import local_cluster
    from flows.tasks import batched
    from schemas.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench-scale-annotate-"))
    cwd = os.getcwd()
    try:
        os.chdir(work)
        ids = _prepare(work / "store", texts)
        settings = Settings(store=f"file://{work / 'store'}", batch_size=batch_size)
        batches = batched(ids, batch_size)
        nlp = spacy.load(settings.spacy_model)
        t0 = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=64):
            pass
        bare = time.perf_counter() - t0
        del nlp
        rows.append(Row("annotate", "bare nlp.pipe", len(texts), bare, None))
        load_nlp(settings.spacy_model)
        one: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=1)
        _annotate_pass(one, settings, batches[:1])  # warm-up: the stance model
        secs = _annotate_pass(one, settings, batches)
        rows.append(Row("annotate", "1 worker (annotate_batch)", len(texts), secs, None))
        with local_cluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
            two = DaskTaskRunner(address=cluster.scheduler_address)
            _annotate_pass(two, settings, batched(ids[: 2 * batch_size], batch_size))
            secs2 = _annotate_pass(two, settings, batches)
        rows.append(
            Row(
                "annotate",
                "2 workers (Dask)",
                len(texts),
                secs2,
                None,
                note=f"{secs / secs2:.2f}x 1 worker",
            )
        )
        rows[-2].note = f"{secs / bare:.2f}x bare nlp.pipe time"
        for r in rows[-3:]:
            print_row(r)
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- growth


def fit(rows: list[Row]) -> None:
    print("\ngrowth with N (least squares over the Ns run; seconds ~ N^b, peak RSS ~ a + c*N):")
    for target, step in sorted(
        {(r.target, r.step.split(" ", 1)[0]) for r in rows if r.target != "annotate"}
    ):
        pts = [
            r
            for r in rows
            if r.target == target and r.step.split(" ", 1)[0] == step and r.seconds > 0
        ]
        if len({r.docs for r in pts}) < 2:
            print(f"  {target:<9} {step:<4} one N only: no fit")
            continue
        xs = [math.log(r.docs) for r in pts]
        ys = [math.log(r.seconds) for r in pts]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        at_1m = math.exp(my + b * (math.log(1e6) - mx))
        line = (
            f"  {target:<9} {step:<4} time N^{b:.2f} -> 1M: {at_1m:,.0f} s ({at_1m / 3600:.1f} h)"
        )
        if all(r.rss for r in pts):
            nx = [float(r.docs) for r in pts]
            ny = [float(r.rss or 0) for r in pts]
            mnx, mny = sum(nx) / len(nx), sum(ny) / len(ny)
            c = sum((x - mnx) * (y - mny) for x, y in zip(nx, ny, strict=True)) / sum(
                (x - mnx) ** 2 for x in nx
            )
            rss_100k, rss_1m = (mny + c * (x - mnx) for x in (1e5, 1e6))
            line += (
                f"; RSS {c / 1024:.2f} KiB/doc -> 100k: {rss_100k / 2**30:.2f} GiB, "
                f"1M: {rss_1m / 2**30:.2f} GiB"
            )
        reqs = [(r.requests, r.docs) for r in pts if r.requests is not None]
        if reqs:
            line += f"; S3 req/doc {', '.join(f'{req / docs:.4f}@{docs}' for req, docs in reqs)}"
        print(line, flush=True)


def fresh_processes(ns: list[int], args: argparse.Namespace) -> int:
    """Every N run by a child process of this bench (its rows printed as they come), then one
    fit over all of them: the peak RSS of each N is its own, as from separate runs."""
    import subprocess

    rows: list[Row] = []
    for i, n in enumerate(ns):
        cmd = [sys.executable, "-m", "bench.scale", "--n", str(n)]
        cmd += ["--skip-s3"] * args.skip_s3 + ["--skip-local"] * args.skip_local
        cmd += ["--label-studio"] * args.label_studio + ["--cold"] * args.cold
        cmd += ["--annotate-docs", str(args.annotate_docs if i == len(ns) - 1 else 0)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        done = subprocess.run(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, check=True)
        rows += [Row(**r) for r in json.loads(done.stderr.strip().splitlines()[-1])]
    fit(rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--big", action="store_true", help="add N = 100,000 (hours here)")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument(
        "--label-studio",
        action="store_true",
        help="review against a real Label Studio started here (a project per target and N) "
        "instead of embedded mode's import files",
    )
    parser.add_argument("--annotate-docs", type=int, default=64, help="0: no annotate rows")
    parser.add_argument("--batch-size", type=int, default=None, help="CORPUSFLOW_BATCH")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="each N in a process of its own (peak RSS not inherited from a smaller N)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="(b) and (c) each in a new process, as an operator's next run is (peak RSS: the "
        "whole process's, not what the first run left behind)",
    )
    for hidden in ("--cold-step", "--cold-target", "--cold-store", "--cold-sources"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--cold-count-s3", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_step:
        return cold_main(args)
    ns = sorted(set(args.n + ([100_000] if args.big else [])))
    if args.fresh and len(ns) > 1:
        return fresh_processes(ns, args)

    from services.seaweedfs import SeaweedService

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="corpusflow-scale-") as tmp:
        work = Path(tmp)
        os.environ["PREFECT_HOME"] = str(work / "prefect")
        os.environ["CORPUSFLOW_WORKERS"] = "1"  # the fast path patches this process
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        if args.batch_size:
            os.environ["CORPUSFLOW_BATCH"] = str(args.batch_size)
        cwd = os.getcwd()
        os.chdir(work)
        service = None
        counter = None
        ls = None
        try:
            if args.label_studio:
                from bench.review import free_port
                from services.labelstudio import LabelStudioService

                ls = LabelStudioService(data_dir=work / "labelstudio", port=free_port())
                ls.start(timeout=600)
                os.environ.update(LABEL_STUDIO_URL=ls.url, LABEL_STUDIO_API_KEY=ls.token)
            if not args.skip_s3:
                from corpus.store import s3_client

                service = SeaweedService.on_free_ports(work / "seaweedfs")
                service.start(timeout=60)
                service.ensure_bucket("corpusflow-scale")
                os.environ.update(
                    AWS_ENDPOINT_URL=service.endpoint_url,
                    AWS_ACCESS_KEY_ID=service.access_key,
                    AWS_SECRET_ACCESS_KEY=service.secret_key,
                )
                # the client every store of this process shares (corpus.store.s3_client)
                counter = Requests(
                    s3_client(
                        endpoint_url=service.endpoint_url,
                        access_key=service.access_key,
                        secret_key=service.secret_key,
                    )
                )
            print(f"{os.cpu_count()} cores, shared with whatever else runs\n")
            print(HEADER)
            print("|" + "|".join("-" * len(c) for c in HEADER.split("|")[1:]) + "|", flush=True)
            with fast_annotate():
                # imports, the temporary Prefect server, the parse subprocess: outside every row
                write_sources(work / "warm", 3)
                from flows.pipeline import corpus_pipeline

                corpus_pipeline(sources=str(work / "warm"), store=f"file://{work / 'warm-store'}")
                times = StageTimes()
                for n in ns:
                    t0 = time.perf_counter()
                    words = write_sources(work / f"src-{n}", n)
                    gen = Row(
                        "input",
                        f"generate {words / n:.0f} words/doc",
                        n,
                        time.perf_counter() - t0,
                        None,
                    )
                    rows.append(gen)
                    print_row(gen)
                    targets: list[tuple[str, str, Requests | None]] = (
                        []
                        if args.skip_local
                        else [("local", f"file://{work / f'store-{n}'}", None)]
                    )
                    if service is not None:
                        targets.append(("seaweedfs", f"s3://corpusflow-scale/n{n}", counter))
                    for target, url, count in targets:
                        if ls is not None:
                            target += "+LS"
                            os.environ["CORPUSFLOW_LS_PROJECT"] = f"scale-{n}-{target}"
                        src = work / f"src-{n}-{target}"
                        shutil.copytree(work / f"src-{n}", src)
                        run_target(target, url, n, src, rows, count, times, args.cold)
                        shutil.rmtree(src, ignore_errors=True)
                    shutil.rmtree(work / f"store-{n}", ignore_errors=True)
            if args.annotate_docs:
                rng = random.Random(3)
                texts = [article(i, _paragraphs(), rng) for i in range(args.annotate_docs)]
                annotate_rows(texts, 16, rows)
        finally:
            os.chdir(cwd)
            if service is not None:
                service.stop()
            if ls is not None:
                ls.stop()
    fit(rows)
    print(
        "\nrows: (a)-(c) are whole corpus_pipeline runs in embedded review mode (no Label Studio: "
        "the import file is written; `+LS` targets: against a real Label Studio) with "
        "annotate's model swapped for a regex tagger (fast "
        "path); `annotate` rows are the real model on a subset; S3 req/doc counts every request "
        "of the run to SeaweedFS, over N."
    )
    print(json.dumps([r.__dict__ for r in rows]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
