"""A run whose service is down ends with one line that names the service and its URL, exit 3,
and a run report that says what was done and what was not; a terminated run leaves no Prefect
temporary server behind. Real processes, real closed ports, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from botocore.exceptions import EndpointConnectionError

from flows.failure import service_of, stage_of
from review.client import LabelStudioError
from services.seaweedfs import SeaweedService

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = str(ROOT / "corpus" / "samples")
CLI = [sys.executable, "-m", "flows.cli", "run", "--sources", SAMPLES]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FAST_RETRIES = "0.5,0.5,0.5"


def _harness_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    # the test session's Prefect server: no temporary server for these runs
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    # the retries are taken (three, as by default), only the waits between them are short
    env.update(CORPUSFLOW_RETRY_DELAYS=FAST_RETRIES, AWS_MAX_ATTEMPTS="2")
    env.update(CORPUSFLOW_WORK_DIR=str(tmp_path / "work"), **extra)
    return env


def _run(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run(
        CLI, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.integration
@pytest.mark.model
def test_failures_label_studio_down_one_line_exit_3_and_the_report(
    prefect_harness: None, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    store = tmp_path / "store"
    env = _harness_env(
        tmp_path,
        LABEL_STUDIO_URL=url,
        LABEL_STUDIO_API_KEY="not-used-nothing-answers",
        CORPUSFLOW_STORE=f"file://{store}",
    )
    code, out, err = _run(env, tmp_path)
    assert code == 3, err[-3000:]
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("corpusflow run: Label Studio is down"), last
    assert f"LABEL_STUDIO_URL={url}" in last and "stage 'push'" in last
    assert "Traceback" not in err  # Prefect's console lines stay, their tracebacks do not

    (report_key,) = [p for p in (store / "runs").iterdir()]
    assert str(report_key) in last
    report = json.loads(report_key.read_text())
    assert report["status"] == "failed"
    assert report["failed"]["stage"] == "push"
    assert report["failed"]["service"] == "Label Studio" and report["failed"]["url"] == url
    assert report["done"] == ["lease", "discover", "ingest", "annotate"]
    assert report["not_done"][:2] == ["push", "collect"]
    from corpus.stagestore import machine_store
    from corpus.store import LocalStore

    kept = machine_store(LocalStore(store)).load().docs
    assert len(kept) == 5  # the work before the push is kept
    assert not (store / "locks" / "run.json").exists()  # the lease is released


@pytest.mark.integration
def test_failures_s3_down_one_line_exit_3_and_the_report_in_the_work_folder(
    prefect_harness: None, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = _harness_env(
        tmp_path,
        CORPUSFLOW_STORE="s3://corpusflow-down/p",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="k",
        AWS_SECRET_ACCESS_KEY="s",
    )
    code, out, err = _run(env, tmp_path)
    assert code == 3, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("corpusflow run: S3 is down"), last
    assert f"AWS_ENDPOINT_URL={endpoint} (store s3://corpusflow-down/p)" in last
    assert "stage 'lease'" in last
    assert "Traceback" not in err
    # the store is the service that is down: the report is kept in the work folder
    (path,) = (tmp_path / "work" / "runs").iterdir()
    assert str(path) in last
    report = json.loads(path.read_text())
    assert report["failed"]["stage"] == "lease" and report["failed"]["service"] == "S3"
    assert report["done"] == [] and report["not_done"][0] == "lease"


def _temporary_servers(proc: psutil.Process) -> list[psutil.Process]:
    try:
        children = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "prefect.server.api.server:create_app" in " ".join(c.cmdline())]


def _ephemeral_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ}
    for name in ("PREFECT_API_URL", "LABEL_STUDIO_API_KEY", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),  # ephemeral mode, a database of its own
        CORPUSFLOW_STORE=f"file://{tmp_path / 'store'}",
        CORPUSFLOW_WORK_DIR=str(tmp_path / "work"),
        # Label Studio on a closed port: the run is still retrying its push when killed
        LABEL_STUDIO_URL=f"http://127.0.0.1:{closed_port()}",
        LABEL_STUDIO_API_KEY="x",
    )
    return env


def _kill_once_serving(
    tmp_path: Path, sig: signal.Signals
) -> tuple[subprocess.Popen[bytes], list[psutil.Process], str]:
    """A `corpusflow run` in ephemeral mode, sent `sig` once its temporary server is up; the
    run, its servers (children of it) and its stderr."""
    # stderr to a file: a server that outlives the run would hold a pipe open
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            CLI, cwd=tmp_path, env=_ephemeral_env(tmp_path), stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    parent = psutil.Process(proc.pid)
    servers: list[psutil.Process] = []
    deadline = time.monotonic() + 600
    while not servers and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
        servers = _temporary_servers(parent)
    if not servers:
        proc.kill()
        proc.wait()
        pytest.fail(f"no temporary Prefect server was started: {log.read_text()[-2000:]}")
    time.sleep(3)  # let it come up and the flow start
    assert proc.poll() is None
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc, servers, log.read_text()


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_failures_a_terminated_run_leaves_no_temporary_prefect_server(
    tmp_path: Path, sig: signal.Signals
) -> None:
    proc, servers, err = _kill_once_serving(tmp_path, sig)
    try:
        assert proc.returncode != 0
        _, alive = psutil.wait_procs(servers, timeout=30)
        assert not alive, f"temporary server outlived the run: {alive}\n{err[-2000:]}"
    finally:
        for server in servers:  # (only ours: children of the run this test started)
            if server.is_running():
                server.kill()


@pytest.mark.integration
def test_failures_a_server_left_by_sigkill_is_stopped_by_the_next_run(tmp_path: Path) -> None:
    proc, servers, _ = _kill_once_serving(tmp_path, signal.SIGKILL)
    try:
        # SIGKILL cannot be caught: Prefect's temporary server outlives its run (no setting of
        # Prefect 3.8.8 ties it to its parent) ...
        _, alive = psutil.wait_procs(servers, timeout=5)
        assert alive == servers
        # ... and the next run's first step stops it: the run noted it under PREFECT_HOME
        env = _ephemeral_env(tmp_path)
        code = "from flows.cli import _stop_stale_temporary_servers as f; f()"
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert "stopped a temporary Prefect server left by a killed run" in done.stderr
        _, alive = psutil.wait_procs(servers, timeout=30)
        assert not alive
        assert not list((tmp_path / "prefect-home" / "corpusflow-temporary-servers").iterdir())
    finally:
        for server in servers:
            if server.is_running():
                server.kill()


@pytest.mark.parametrize(
    ("error", "service"),
    [
        (LabelStudioError("list projects on http://h: refused", None), "Label Studio"),
        (EndpointConnectionError(endpoint_url="http://h"), "S3"),
        (ValueError("a bug"), None),
    ],
)
def test_failures_service_of_classifies_the_cause_chain(
    error: Exception, service: str | None
) -> None:
    try:
        try:
            raise error
        except Exception as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as exc:
        found = service_of(exc)
        assert (found.name if found else None) == service
        assert stage_of(exc) == "unknown"


class CuttingProxy:
    """A TCP proxy in front of the real SeaweedFS that cuts the body of the first `cuts`
    answers in half (the connection closes mid-body: a transient read error), relaying every
    other byte unchanged; it counts the requests it saw."""

    def __init__(self, upstream: tuple[str, int], cuts: int) -> None:
        import threading

        self.upstream, self.cuts, self.requests = upstream, cuts, 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        import threading

        up = socket.create_connection(self.upstream)

        def to_upstream() -> None:
            try:
                while data := client.recv(65536):
                    if data[:4] in (b"GET ", b"HEAD", b"PUT "):
                        with self._lock:
                            self.requests += 1
                    up.sendall(data)
            except OSError:
                pass

        threading.Thread(target=to_upstream, daemon=True).start()
        try:
            head = b""
            while b"\r\n\r\n" not in head and (chunk := up.recv(65536)):
                head += chunk
            with self._lock:
                cut, self.cuts = self.cuts > 0, self.cuts - 1
            if cut:
                header, _, body = head.partition(b"\r\n\r\n")
                length = int(header.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length // 2 and (chunk := up.recv(65536)):
                    body += chunk
                client.sendall(header + b"\r\n\r\n" + body[: length // 2])
                return  # closes both: the answer is cut short
            client.sendall(head)
            while chunk := up.recv(65536):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            # shutdown, not close alone: close leaves the connection open while the other
            # thread sits in recv on it, so the client saw no end and waited its read timeout
            for sock in (client, up):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self.server.close()


@pytest.mark.integration
def test_failures_s3_read_cut_short_is_retried_a_4xx_is_not(seaweed: SeaweedService) -> None:
    import uuid

    from corpus.store import NotFound, S3Store, s3_client
    from tests.s3_fixtures import TEST_BUCKET, make_s3_store

    prefix = f"t-{uuid.uuid4().hex[:12]}"
    data = os.urandom(256 * 1024)
    make_s3_store(seaweed, prefix).put_bytes("releases/v0001/corpus.jsonl", data)
    host, port = seaweed.endpoint_url.removeprefix("http://").split(":")

    def through(proxy: CuttingProxy) -> S3Store:
        client = s3_client(
            endpoint_url=proxy.url, access_key=seaweed.access_key, secret_key=seaweed.secret_key
        )
        return S3Store(client, TEST_BUCKET, prefix)

    proxy = CuttingProxy((host, int(port)), cuts=2)
    try:
        assert through(proxy).get_bytes("releases/v0001/corpus.jsonl") == data
        assert proxy.requests == 3  # two answers cut, the third read whole
    finally:
        proxy.close()

    proxy = CuttingProxy((host, int(port)), cuts=1)
    try:
        store = through(proxy)
        store.read_attempts = 1  # without the retry, the same fault is an error
        with pytest.raises(Exception, match="(?i)read|connection|incomplete"):
            store.get_bytes("releases/v0001/corpus.jsonl")
    finally:
        proxy.close()

    proxy = CuttingProxy((host, int(port)), cuts=0)
    try:
        with pytest.raises(NotFound):
            through(proxy).get_bytes("releases/v0001/missing.jsonl")
        assert proxy.requests == 1  # a 404 is an answer, not a fault: asked once
    finally:
        proxy.close()
