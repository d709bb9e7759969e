"""Annotate-stage throughput with 1 and 2 workers against bare `nlp.pipe`, in one run: the
real `annotate_batch` task over a local store of N clean documents (the sample articles
repeated, unique ids), run by the flow's task runners (flows/pipeline.py task_runner_for):

- `bare`: spaCy's `nlp.pipe` of the same model over the same texts, in this process;
- `1 worker`: the in-process runner (ThreadPoolTaskRunner(max_workers=1), CORPUSFLOW_WORKERS=1);
- `bare, 1 process` / `bare, 2 processes`: the bare pipe in one child pinned to one CPU, then in
  two pinned children at once over half the texts each: how much two cores give on this work
  at best (they share caches and memory bandwidth), the ceiling for "2 workers";
- `1 worker, 1 core`: the same, in a child process pinned to one CPU (`taskset -c 0`, one
  BLAS and onnxruntime thread): the in-process runner uses more than one core by itself, so
  this is the row "2 workers on 2 cores" is measured against;
- `1 core x 2 processes`: that pinned pass in two children at once (CPU 0 and CPU 1), half the
  documents each, every child with its own store, models and Prefect: the whole annotate stage
  (stance model included) on two cores with no Dask in between, the ceiling for "2 workers";
- `2 workers`: a local Dask cluster of 2 processes (what CORPUSFLOW_WORKERS=2 makes), reached
  through its address as `--dask-address` would, so that the models are loaded (once per
  worker, by a warm-up pass) before the clock starts.

    .venv/bin/python -m bench.parallel [--n 192] [--batch-size 16]

Each timed pass starts from a store without machine annotations, so every document is
annotated; model loading is outside the timings (a worker loads it once per process).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[1] / "corpus" / "samples"


def _texts(n: int) -> list[str]:
    sources = [p.read_text(encoding="utf8") for p in sorted(SAMPLES.glob("*.txt"))]
    return list(islice(cycle(sources), n))


def _prepare(store_dir: Path, texts: list[str]) -> list[str]:
    """Clean documents in the store, as the ingest stage leaves them."""
    from corpus.store import open_store
    from flows.tasks import keys
    from schemas.records import CleanDocument

    store = open_store(f"file://{store_dir}")
    ids = []
    for i, text in enumerate(texts):
        doc_id = f"bench{i:06d}"
        doc = CleanDocument(source=f"bench/{i}", doc_id=doc_id, text=text, content_hash=doc_id)
        store.put_json(keys.clean(doc_id), doc.model_dump(mode="json"))
        ids.append(doc_id)
    return ids


def _annotate_pass(runner: Any, settings: Any, batches: list[list[str]]) -> float:
    """Seconds for the annotate stage over `batches` on `runner` (machine/ emptied first)."""
    from prefect import flow, unmapped

    from flows.tasks import annotate_batch

    machine = Path(settings.store.removeprefix("file://")) / "machine"
    shutil.rmtree(machine, ignore_errors=True)

    @flow(name="bench-annotate", task_runner=runner)
    def stage() -> float:
        started = time.perf_counter()
        futures = annotate_batch.map(batches, settings=unmapped(settings))
        counts = [f.result() for f in futures]
        assert sum(c["annotated"] for c in counts) == sum(len(b) for b in batches)
        return time.perf_counter() - started

    return float(stage())


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads)."""
    import psutil

    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def _children_cpu(worker_pids: set[int]) -> dict[str, float]:
    """CPU seconds of this process's live descendants, split into the Dask workers (by pid)
    and everything else (the nannies, the temporary Prefect server): "cores busy" for
    `2 workers` counts the workers only, and the rest is shown beside it."""
    import psutil

    split = {"workers": 0.0, "other children": 0.0}
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        split["workers" if child.pid in worker_pids else "other children"] += t.user + t.system
    return split


def _child_names() -> list[str]:
    """What the descendants are, for the note under the table (their command's first words)."""
    import psutil

    names = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = child.cmdline()
            names.append(" ".join(os.path.basename(c) for c in cmd[:4])[:60])
    return names


def _warm_one_worker(settings: Any, batches: list[list[str]]) -> Any:
    """The in-process runner, after a warm-up batch that loads the models (once, as a run's
    first batch would) and warms Prefect."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from annotators.pipeline import load_nlp

    load_nlp(settings.spacy_model)
    one: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=1)
    _annotate_pass(one, settings, batches[:1])
    return one


def _one_worker_pass(settings: Any, batches: list[list[str]]) -> tuple[float, float]:
    """The in-process runner's pass, warmed up: (seconds, cores this process kept busy)."""
    one = _warm_one_worker(settings, batches)
    cpu0 = _cpu_seconds()
    seconds = _annotate_pass(one, settings, batches)
    return seconds, (_cpu_seconds() - cpu0) / seconds


def _pinned(cpu: int, role: str) -> dict[str, Any]:
    """Popen/run arguments for this module as a child `role` that may use `cpu` only, with one
    BLAS and onnxruntime thread."""
    import sys

    return {
        "args": ["taskset", "-c", str(cpu), sys.executable, "-m", "bench.parallel", role],
        "text": True,
        "env": {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        "cwd": Path(__file__).resolve().parents[1],
    }


def _together(role: str, jobs: list[Any]) -> float:
    """Seconds for one pinned child `role` per job (child i on CPU i, its job as a JSON line),
    started together once every child has said "ready" (models loaded, warm-up done)."""
    import json
    import subprocess

    children = [
        subprocess.Popen(stdin=subprocess.PIPE, stdout=subprocess.PIPE, **_pinned(i, role))
        for i in range(len(jobs))
    ]
    try:
        for child, job in zip(children, jobs, strict=True):
            assert child.stdin is not None
            child.stdin.write(json.dumps(job) + "\n")
            child.stdin.flush()
        for i, child in enumerate(children):
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                child.wait()
                raise RuntimeError(
                    f"{role} child {i} failed before it was ready (exit {child.returncode}; "
                    "its error is above)"
                )
    except BaseException:
        for child in children:  # the others wait for "go" on stdin: end them, not leave them
            child.kill()
            child.wait()
        raise
    started = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
    for child in children:
        assert child.stdout is not None
        child.stdout.read()
        if child.wait():
            raise RuntimeError(f"{role} child failed (exit {child.returncode})")
    return time.perf_counter() - started


def _pinned_processes(work: Path, texts: list[str], batch_size: int, n: int) -> float:
    """Seconds for `n` pinned child processes, each the `1 worker` pass (in-process runner, one
    CPU) over its own store of `texts` split in `n`. n=1 is `1 worker, 1 core`; n=2 is the same
    work on two cores with no Dask and nothing shared: the ceiling for `2 workers`."""
    jobs = [
        {"texts": texts[i::n], "batch_size": batch_size, "work": str(work / f"pinned{n}-{i}")}
        for i in range(n)
    ]
    return _together("--pinned-child", jobs)


def _bare_processes(texts: list[str], n: int) -> float:
    """Seconds for `n` pinned child processes to run the bare `nlp.pipe` over `texts` split
    in `n`."""
    return _together("--bare-child", [texts[i::n] for i in range(n)])


def _bare_child() -> None:
    import json
    import sys

    import spacy

    from schemas.settings import Settings

    texts = json.loads(sys.stdin.readline())
    nlp = spacy.load(Settings().spacy_model)
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in nlp.pipe(texts, batch_size=64):
        pass


def _pinned_child() -> None:
    import json
    import sys

    from flows.tasks import batched
    from schemas.settings import Settings

    job = json.loads(sys.stdin.readline())
    work = Path(job["work"])
    work.mkdir()
    os.chdir(work)
    ids = _prepare(work / "store", job["texts"])
    settings = Settings(store=f"file://{work / 'store'}", batch_size=job["batch_size"])
    batches = batched(ids, job["batch_size"])
    one = _warm_one_worker(settings, batches)
    print("ready", flush=True)
    sys.stdin.readline()
    _annotate_pass(one, settings, batches)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=192, help="number of documents")
    parser.add_argument("--batch-size", type=int, default=16, help="documents per task")
    parser.add_argument("--pinned-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pinned_child:
        _pinned_child()
        return
    if args.bare_child:
        _bare_child()
        return

    import spacy
    from distributed import Client
    from prefect_dask import DaskTaskRunner

    from flows.pipeline import local_cluster
    from flows.tasks import batched
    from schemas.settings import Settings

    texts = _texts(args.n)
    words = sum(len(t.split()) for t in texts)
    work = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    try:
        os.chdir(work)  # the work folder (.corpusflow) of every process
        ids = _prepare(work / "store", texts)
        settings = Settings(store=f"file://{work / 'store'}", batch_size=args.batch_size)
        batches = batched(ids, args.batch_size)
        results: dict[str, float] = {}
        cores: dict[str, float] = {}

        nlp = spacy.load(settings.spacy_model)
        started = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=64):
            pass
        results["bare nlp.pipe"] = time.perf_counter() - started
        del nlp
        # what two cores give at best on this work: the bare pipe in 1 process, then in 2
        # processes at once over half the texts each (pinned to CPU 0, and to CPU 0 and 1)
        results["bare, 1 process"] = _bare_processes(texts, 1)
        results["bare, 2 processes"] = _bare_processes(texts, 2)

        results["1 worker"], cores["1 worker"] = _one_worker_pass(settings, batches)

        # one worker on one core: the in-process runner uses more than one core (BLAS and
        # onnxruntime threads), so "2 workers vs 1" above is not two cores against one. A fresh
        # process pinned to CPU 0 (its stance session then sizes its threads to that one CPU)
        results["1 worker, 1 core"] = _pinned_processes(work, texts, args.batch_size, 1)
        cores["1 worker, 1 core"] = 1.0
        # the same in two pinned processes at once, half the documents each: what two cores
        # give this work (stance model included) with no Dask in between
        results["1 core x 2 processes"] = _pinned_processes(work, texts, args.batch_size, 2)
        cores["1 core x 2 processes"] = 2.0

        with local_cluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
            two = DaskTaskRunner(address=cluster.scheduler_address)
            _annotate_pass(two, settings, batched(ids[: 2 * args.batch_size], args.batch_size))
            with Client(cluster) as client:  # the pids of the worker processes themselves
                worker_pids = set(client.run(os.getpid).values())
            before, own0 = _children_cpu(worker_pids), _cpu_seconds()
            results["2 workers"] = _annotate_pass(two, settings, batches)
            after, own1 = _children_cpu(worker_pids), _cpu_seconds()
            beside = {k: (after[k] - before[k]) / results["2 workers"] for k in after}
            cores["2 workers"] = beside.pop("workers")
            beside["this process"] = (own1 - own0) / results["2 workers"]
            children = _child_names()
    finally:
        os.chdir("/")
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nannotate stage, {args.n} docs, {words} words, batches of {args.batch_size}, ")
    print(f"{os.cpu_count()} cores (shared with whatever else runs)\n")
    print(
        f"| {'mode':<16} | {'seconds':>8} | {'docs/s':>7} | {'words/s':>8} | cores busy "
        "| vs 1 worker | vs 1 worker, 1 core |"
    )
    print("|---|---|---|---|---|---|---|")
    for mode, seconds in results.items():
        busy = f"{cores[mode]:10.2f}" if mode in cores else " " * 10
        print(
            f"| {mode:<16} | {seconds:8.1f} | {args.n / seconds:7.2f} | {words / seconds:8.0f} "
            f"| {busy} | {results['1 worker'] / seconds:10.2f}x "
            f"| {results['1 worker, 1 core'] / seconds:18.2f}x |"
        )
    ceiling = results["bare, 1 process"] / results["bare, 2 processes"]
    print(
        f"\ntwo cores at best on this work (bare nlp.pipe, 2 pinned processes vs 1): "
        f"{ceiling:.2f}x; on the annotate stage itself (2 pinned in-process runners vs 1): "
        f"{results['1 worker, 1 core'] / results['1 core x 2 processes']:.2f}x; 2 workers reach "
        f"{results['1 worker, 1 core'] / results['2 workers']:.2f}x of one worker on one core"
    )
    print(
        "\ncores busy: CPU seconds of the processes doing the work (this one; the Dask workers "
        "for `2 workers`, found by pid) over the pass's wall time"
    )
    print(
        "beside the 2 workers, cores busy: "
        + ", ".join(f"{k} {v:.2f}" for k, v in beside.items())
        + f" (this process's descendants: {'; '.join(children)})"
    )


if __name__ == "__main__":
    main()
