"""Two runs on one store and Label Studio project: the store's lease lets one through, the other
waits or stops with a message naming the holder, and no task is ever created twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from corpus.lease import Lease, LeaseHeld
from corpus.store import open_store
from review.client import LabelStudioClient
from services.labelstudio import LabelStudioService

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = str(ROOT / "corpus" / "samples")
# a line of Prefect's own console log: "12:37:52.182 | WARNING | EventsWorker - ..."
_PREFECT_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| ")


def _env(label_studio: LabelStudioService, store: str, project: str) -> dict[str, str]:
    return {
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.token,
        "CORPUSFLOW_STORE": store,
        "CORPUSFLOW_LS_PROJECT": project,
    }


def _doc_ids(label_studio: LabelStudioService, project: str) -> Counter[str]:
    client = LabelStudioClient(label_studio.url, label_studio.token)
    found = client.projects(title=project)
    if not found:
        return Counter()
    tasks = client.tasks(int(found[0]["id"]), fields=["id", "data"])
    return Counter(str(t["data"]["doc_id"]) for t in tasks)


@pytest.mark.integration
@pytest.mark.model
def test_concurrent_runs_a_held_lease_stops_the_run_before_it_touches_label_studio(
    label_studio: LabelStudioService,
    prefect_harness: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.pipeline import corpus_pipeline

    project = f"lease-{uuid.uuid4().hex[:8]}"
    store_url = f"file://{tmp_path / 'store'}"
    for key, value in _env(label_studio, store_url, project).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)

    holder = Lease(open_store(store_url), "other-run", ttl=120)
    holder.acquire()
    try:
        with pytest.raises(LeaseHeld, match="run other-run by .* expires in"):
            corpus_pipeline(sources=SAMPLES)
        assert _doc_ids(label_studio, project) == Counter()  # nothing pushed

        # a run told to wait gets the store once the holder is done
        monkeypatch.setenv("CORPUSFLOW_LEASE_WAIT", "120")
        threading.Timer(3.0, holder.release).start()
        report = corpus_pipeline(sources=SAMPLES)
    finally:
        holder.release()
    assert report["review"]["push"]["created"] == 5
    assert set(_doc_ids(label_studio, project).values()) == {1}
    assert open_store(store_url).head("locks/run.json") is None  # released at the end


@pytest.mark.integration
@pytest.mark.model
def test_concurrent_runs_two_processes_at_once_make_no_duplicate_task(
    label_studio: LabelStudioService,
    prefect_harness: None,
    tmp_path: Path,
) -> None:
    from prefect.settings import PREFECT_API_URL

    project = f"race-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **_env(label_studio, f"file://{tmp_path / 'store'}", project),
        # both on the test session's Prefect server: no temporary server each
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    cmd = [sys.executable, "-m", "flows.cli", "run", "--sources", SAMPLES]
    procs = []
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
        time.sleep(0.2)
    outs = [p.communicate(timeout=900) for p in procs]
    codes = sorted(p.returncode for p in procs)
    tails = [err[-2000:] for _, err in outs]
    assert codes in ([0, 0], [0, 2]), tails
    if codes == [0, 2]:  # they overlapped: the loser says who holds the store
        loser = next(err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode == 2)
        # Prefect logs the failed flow run with its traceback and its events worker may
        # still log while it flushes at exit ("12:37:52.182 | WARNING | EventsWorker - ...");
        # of the lines that are not Prefect's log lines, the last one is ours
        ours = [line for line in loser.strip().splitlines() if not _PREFECT_LOG_LINE.match(line)]
        assert ours and ours[-1].startswith("corpusflow run: another corpusflow run"), tails
    ids = _doc_ids(label_studio, project)
    assert len(ids) == 5 and set(ids.values()) == {1}, ids
