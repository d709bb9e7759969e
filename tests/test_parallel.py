"""Ingest and annotate on Dask (flows/pipeline.py task_runner_for): the same five samples give
the same release content hash in this process, on a local cluster of 2 worker processes, and
on a `distributed` scheduler with 2 workers started here as separate processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "corpus" / "samples"
BIN = Path(sys.executable).parent


def content_hash(store_dir: Path) -> str:
    """The content hash of the store's latest release, as `latest.json` (corpus/release.py)
    records it."""
    latest = json.loads((store_dir / "releases" / "latest.json").read_text())
    return str(latest["content_hash"])


def free_port(lo: int = 19900, hi: int = 19949) -> int:
    for port in range(lo, hi + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def run_pipeline(store_dir: Path, **runner: object) -> dict:  # type: ignore[type-arg]
    from flows.pipeline import corpus_pipeline, task_runner_for
    from schemas.settings import Settings

    task_runner = task_runner_for(Settings(**runner))  # type: ignore[arg-type]
    return corpus_pipeline.with_options(task_runner=task_runner)(
        sources=str(SAMPLES), store=f"file://{store_dir}"
    )


@pytest.fixture(scope="module")
def one_worker_hash(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> str:
    store = tmp_path_factory.mktemp("one") / "store"
    report = run_pipeline(store, workers=1)
    assert report["annotate"]["annotated"] == 5 and report["release"]["created"]
    return content_hash(store)


@pytest.mark.parametrize(
    ("workers", "runner"),
    [(1, "ThreadPoolTaskRunner"), (2, "DaskTaskRunner"), (None, "DaskTaskRunner")],
)
def test_parallel_runner_follows_settings(workers: int | None, runner: str) -> None:
    from flows.pipeline import task_runner_for
    from schemas.settings import Settings

    # None is one per core: this test machine has at least 2
    if workers is None and (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the default is the in-process runner")
    assert type(task_runner_for(Settings(workers=workers))).__name__ == runner
    at = task_runner_for(Settings(workers=1, dask_address="tcp://127.0.0.1:1"))
    assert type(at).__name__ == "DaskTaskRunner"
    assert at.address == "tcp://127.0.0.1:1"  # type: ignore[attr-defined]


def test_parallel_settings_and_refs_pickle(tmp_path: Path) -> None:
    """What a task receives crosses to a worker process by pickle."""
    import cloudpickle

    from flows.tasks import discover
    from schemas.settings import Settings

    settings = Settings(store=f"file://{tmp_path}", workers=2)
    refs = discover(str(SAMPLES), settings)
    assert len(refs) == 5
    assert cloudpickle.loads(cloudpickle.dumps(settings)) == settings
    assert cloudpickle.loads(cloudpickle.dumps(refs)) == refs


@pytest.mark.model
def test_parallel_two_local_workers_same_release_hash(
    tmp_path: Path, one_worker_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report = run_pipeline(tmp_path / "store", workers=2)
    assert report["ingest"]["cleaned"] == 5 and report["annotate"]["annotated"] == 5
    assert content_hash(tmp_path / "store") == one_worker_hash


def _workers_malloc_trim(client: Any) -> set[str | None]:
    return set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values())


def test_parallel_local_cluster_workers_start_without_dasks_malloc_trim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """distributed's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers by default, which
    made the annotate stage take about 40% longer (flows/pipeline.py local_cluster);
    corpusflow's local cluster leaves it out, and an operator's own value still reaches the
    workers."""
    from distributed import Client

    from flows.pipeline import local_cluster

    # set, then deleted: monkeypatch then puts back this process's own value afterwards, also
    # over the one a plain LocalCluster's nanny writes into os.environ (distributed 2026.8)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    with local_cluster(n_workers=1, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            assert _workers_malloc_trim(client) == {None}
    # distributed's default, for contrast: a plain LocalCluster's worker has it
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            assert _workers_malloc_trim(client) == {"65536"}
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")
    with local_cluster(n_workers=1, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            assert _workers_malloc_trim(client) == {"1048576"}


# what the README tells operators to give their `dask worker`s
WORKER_DASK_CONFIG = ROOT / "services" / "dask"


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A `dask scheduler` and two `dask worker` processes, reporting to the test's Prefect
    server and configured as the README says (DASK_CONFIG=services/dask); yields the
    scheduler's address."""
    from prefect.settings import get_current_settings

    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    env["DASK_CONFIG"] = str(WORKER_DASK_CONFIG)
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
            + ["--no-dashboard"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=(logs / "scheduler.log").open("wb"),
        )
    ]
    try:
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1"]
                    + ["--name", f"w{i}", "--no-dashboard", "--local-directory", str(tmp_path)],
                    env=env,
                    cwd=tmp_path,
                    stdout=subprocess.DEVNULL,
                    stderr=(logs / f"worker{i}.log").open("wb"),
                )
            )
        from distributed import Client

        with Client(address, timeout=120) as client:
            client.wait_for_workers(2, timeout=180)
            pids = client.run(os.getpid)
            trim = _workers_malloc_trim(client)
        assert len(pids) == 2 and os.getpid() not in pids.values()
        assert trim == {None}, f"the workers' MALLOC_TRIM_THRESHOLD_: {trim}"
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        deadline = time.monotonic() + 30
        for p in procs:
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.mark.model
def test_parallel_dask_address_same_release_hash(
    tmp_path: Path, one_worker_hash: str, dask_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`corpusflow run --dask-address` runs ingest and annotate on the cluster's workers."""
    from flows.cli import main as cli_main

    monkeypatch.delenv("CORPUSFLOW_DASK_ADDRESS", raising=False)  # the CLI sets it
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"
    argv = ["run", "--sources", str(SAMPLES), "--store", f"file://{store}"]
    assert cli_main([*argv, "--dask-address", dask_cluster]) == 0
    assert content_hash(store) == one_worker_hash
    # the batches ran in the workers: their logs name the task runs
    worker_logs = "".join(
        (tmp_path / "dask-logs" / f"worker{i}.log").read_text(errors="replace") for i in range(2)
    )
    assert "annotate-batch" in worker_logs and "ingest-batch" in worker_logs
