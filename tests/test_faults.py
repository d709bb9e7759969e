"""Faults injected into `corpusflow run` against a real Label Studio and a real SeaweedFS of this
module (the tests kill them): kill -9 of the run's process group at random points, then a
re-run; Label Studio killed during the push and SeaweedFS during the publish, then restarted on
the same data folder and a re-run. Every time: no duplicate task, no document lost, `latest`
verifiable by the reader, and the final release the same as a clean run's. The machinery is
bench/faults.py (which prints the whole matrix as a table)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faults import (
    BOUNDARIES,
    LEASE_TTL,
    SAMPLES,
    KillPoint,
    Outcome,
    RunResult,
    Stack,
    fault_kill_run,
    fault_service,
    inspect,
    kill_point,
    run_cli,
)
from services.labelstudio import LabelStudioService
from services.seaweedfs import SeaweedService, free_port

BUCKET = "corpusflow-faults"
BOUNDARY = dict(BOUNDARIES)
# seeds whose kill points fall inside the push, the publish and the annotate stage (bench.faults
# draws a stage boundary and a delay of up to a second after it)
SEEDS = (9, 24, 16)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Iterator[Stack]:
    """Label Studio and SeaweedFS of this module alone (its tests kill them), and the test
    session's Prefect server (no run starts a temporary one)."""
    from prefect.settings import PREFECT_API_URL

    base = tmp_path_factory.mktemp("fault-services")
    s3 = SeaweedService.on_free_ports(base / "seaweedfs", release_roots=(f"{BUCKET}/*",))
    ls = LabelStudioService(data_dir=base / "labelstudio", port=free_port())
    s3.start(timeout=60)
    try:
        s3.ensure_bucket(BUCKET)
        ls.start(timeout=480)
        yield Stack(ls, s3, str(PREFECT_API_URL.value()), bucket=BUCKET)
    finally:
        ls.stop()
        s3.stop()


@pytest.fixture(scope="module")
def clean(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """What a run with no fault leaves: the reference."""
    work = tmp_path_factory.mktemp("clean")
    run = run_cli(stack.env("clean", work), work / "run")
    assert run.code == 0, run.stderr[-3000:]
    got = inspect(stack, "clean", work / "pulled")
    assert got.verify_error is None and got.duplicates == 0
    assert len(got.released) == 5 and set(got.tasks) == set(got.released)
    assert got.fates == Counter(processed=5)
    return got


def assert_recovered(got: Outcome, clean: Outcome) -> None:
    """The state a fault and its recovery must leave: the clean run's, exactly."""
    assert got.duplicates == 0, got.tasks
    assert got.lost(set(clean.released)) == set()
    assert got.verify_error is None
    assert got.content_hash == clean.content_hash
    assert got.data_files == clean.data_files  # byte for byte (README/NOTES name the store)
    assert got.fates == clean.fates  # every input has its fate, once


def ours(run: RunResult) -> list[str]:
    """The run's own stderr lines (not Prefect's log lines, nor their indented tracebacks)."""
    return [
        line
        for line in run.stderr.splitlines()
        if line.strip() and not line[:1].isspace() and " | " not in line[:40]
    ]


@pytest.mark.integration
@pytest.mark.model
@pytest.mark.parametrize("seed", SEEDS)
def test_faults_kill_9_of_the_run_then_a_rerun_gives_the_clean_release(
    stack: Stack, clean: Outcome, tmp_path: Path, seed: int
) -> None:
    point = kill_point(seed)
    fault = fault_kill_run(stack, tmp_path, f"kill-{seed}", point)
    killed, rerun = fault.killed, fault.rerun
    assert killed.fired_at is not None, f"the run ended before {point}"
    assert killed.code == -signal.SIGKILL
    assert killed.leftovers == []  # no Dask worker, parse worker or server outlives its group
    assert fault.verify_after_kill is None  # before any recovery: none, or a whole release
    assert rerun.code == 0, rerun.stderr[-3000:]
    assert_recovered(fault.got, clean)
    # the dead run's lease is freed at once: its holder's process is gone (corpus/lease.py).
    # A kill up to a second after the adjudicate line can land once the run has published and
    # let its lease go: then there is nothing to take over, and the run must have published.
    took_over = "took over the lease of a run whose process is gone" in rerun.stderr
    assert took_over == fault.lease_left, (fault.lease_left, rerun.stderr[-2000:])
    if not fault.lease_left:
        assert point.stage == "publish" and re.search(r" - publish: v\d+", killed.stderr)


@pytest.mark.integration
@pytest.mark.model
def test_faults_label_studio_killed_during_the_push_one_line_then_a_rerun_recovers(
    stack: Stack, clean: Outcome, tmp_path: Path
) -> None:
    point = KillPoint("push", BOUNDARY["push"], 0.0)
    fault = fault_service(stack, tmp_path, "ls-down", "ls", point, mid=True)
    failed = fault.failed
    assert failed.code == 3, failed.stderr[-3000:]
    assert failed.stdout == ""
    last = ours(failed)[-1]
    assert last.startswith("corpusflow run: Label Studio is down"), last
    assert f"LABEL_STUDIO_URL={stack.ls.url}" in last
    assert "Traceback" not in failed.stderr
    assert failed.leftovers == []
    report = fault.report
    assert report is not None and report["status"] == "failed"
    assert report["report_at"].startswith(f"s3://{BUCKET}/ls-down/runs/")
    # the project was made when Label Studio died: the import or, had it gone through, the
    # collect after it met the dead server
    stage = report["failed"]["stage"]
    assert stage in ("push", "collect") and f"stage '{stage}'" in last
    assert report["failed"]["service"] == "Label Studio"
    before = ["lease", "discover", "ingest", "annotate"]
    assert report["done"] == (before if stage == "push" else [*before, "push"])
    assert fault.verify_during is None and fault.verify_after_restart is None
    assert fault.rerun.code == 0, fault.rerun.stderr[-3000:]
    assert_recovered(fault.got, clean)


@pytest.mark.integration
@pytest.mark.model
def test_faults_seaweedfs_killed_during_the_publish_latest_stays_verifiable(
    stack: Stack, clean: Outcome, tmp_path: Path
) -> None:
    # killed once the release's first object is written (the run held still meanwhile)
    point = KillPoint("publish", BOUNDARY["publish"], 0.0)
    fault = fault_service(stack, tmp_path, "s3-down", "s3", point, mid=True)
    failed = fault.failed
    assert failed.code == 3, failed.stderr[-3000:]
    last = ours(failed)[-1]
    assert last.startswith("corpusflow run: S3 is down"), last
    assert f"AWS_ENDPOINT_URL={stack.s3.endpoint_url}" in last
    assert "Traceback" not in failed.stderr
    report = fault.report
    # the store is what is down: the report is in the work folder
    assert report is not None and report["report_at"].startswith(str(tmp_path))
    stage = report["failed"]["stage"]
    assert stage in ("publish", "report") and f"stage '{stage}'" in last
    assert "adjudicate" in report["done"]
    # a half-written version is never `latest`: none yet, or a whole one
    assert fault.verify_after_restart is None
    assert fault.rerun.code == 0, fault.rerun.stderr[-3000:]
    assert_recovered(fault.got, clean)
    assert fault.got.version == "v0001"  # the half-written version was resumed, not skipped


def test_faults_a_lease_check_that_meets_a_dead_store_fails_as_the_publish_stage(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease check just before the publish is what meets a store that died after the
    adjudication (seen with SeaweedFS killed there): the line and the report name the stage it
    guards, 'publish', with every stage before it done (it said 'unknown' and 'nothing done')."""
    from botocore.exceptions import EndpointConnectionError

    from flows.failure import record_failure
    from flows.pipeline import collect_adjudicate_publish
    from schemas.settings import Settings

    class StoreDiedLease:
        def ensure_held(self) -> None:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    monkeypatch.chdir(tmp_path)
    settings = Settings(store=f"file://{tmp_path / 'store'}")
    with pytest.raises(EndpointConnectionError) as caught:
        collect_adjudicate_publish(settings, None, StoreDiedLease())  # type: ignore[arg-type]
    down = record_failure(settings, "r1", caught.value, {}, review=False)
    assert down is not None and "stage 'publish'" in down.line, down
    assert down.report["done"] == [
        "lease", "discover", "ingest", "annotate", "push", "collect", "adjudicate", "disputes"
    ]  # fmt: skip
    assert down.report["not_done"] == ["publish", "report"]


# ---------------------------------------------------------------- the dead run's lease


_HOLD = """
import sys, time
from corpus.lease import Lease
from corpus.store import open_store
Lease(open_store(sys.argv[1]), "killed-run", ttl=float(sys.argv[2])).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_faults_a_run_right_after_kill_9_takes_the_dead_runs_lease(tmp_path: Path) -> None:
    from corpus.lease import Lease
    from corpus.store import open_store

    store_url = f"file://{tmp_path / 'store'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, store_url, "300"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    finally:
        holder.kill()  # kill -9: no chance to release
        holder.wait()
    lease = Lease(open_store(store_url), "next-run", ttl=float(LEASE_TTL))
    found = lease.try_acquire()  # one try, no wait: the holder's TTL (300 s) is far off
    try:
        assert found is None, f"refused for a dead holder: {found}"
    finally:
        lease.release()


# ---------------------------------------------------------------- found by the faults


@pytest.mark.model
def test_faults_a_documents_stances_do_not_depend_on_the_documents_annotated_with_it() -> None:
    from annotators.pipeline import annotate, load_nlp
    from ingest import clean_path
    from schemas.settings import Settings

    paths = sorted(Path(SAMPLES).iterdir())
    docs = [clean_path(p, source=p.name, max_bytes=Settings().max_source_bytes) for p in paths]
    nlp = load_nlp(Settings().spacy_model)
    together = {d.doc_id: d for d in annotate(docs, nlp=nlp)}
    alone = next(annotate(docs[:1], nlp=nlp))  # what a re-run after an edit of one source does
    assert alone.entities == together[alone.doc_id].entities
    # the stance model is called one pair at a time (annotators/stance_model.BATCH_SIZE): its
    # int8 activations are quantized per call, so pairs called together changed each other
    assert alone.stances == together[alone.doc_id].stances
