"""Run a local Prefect server (SQLite), its process work pool and a worker, each with a pidfile
and a log in one folder, and deploy `prefect.yaml`: what `make serve` starts and the tests and
benchmarks use. PREFECT_HOME is that folder, so nothing lands in `~/.prefect`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from services.common import pid_alive

POOL = "corpusflow-process"
DEFAULT_PORT = 4200
PORT_SETTING = "CORPUSFLOW_PREFECT_PORT"


class PrefectServerError(RuntimeError):
    """The Prefect server, the work pool, the worker or a deploy failed; the message says which
    and holds the tail of its log."""


def _bin(name: str) -> Path:
    # The CLI entry points of the environment we run in (.venv/bin/prefect).
    return Path(sys.executable).parent / name


@dataclass
class PrefectServer:
    home: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    pool: str = POOL
    prefect: Path = field(default_factory=lambda: _bin("prefect"))

    @classmethod
    def from_env(cls, base: Path) -> PrefectServer:
        """A server under `base/prefect`, on CORPUSFLOW_PREFECT_PORT (default 4200)."""
        raw = os.environ.get(PORT_SETTING) or ""
        try:
            port = int(raw) if raw else DEFAULT_PORT
        except ValueError:
            raise PrefectServerError(f"{PORT_SETTING}={raw!r} is not a port number") from None
        return cls(home=base / "prefect", port=port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def _path(self, what: str, suffix: str) -> Path:
        return self.home / f"{what}.{suffix}"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a Prefect command talking to this server."""
        return {
            **os.environ,
            **(extra or {}),
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.home}/prefect.db",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_API_URL": self.api_url,
        }

    # ------------------------------------------------------------------ server

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.api_url}/health", timeout=3).ok
        except requests.RequestException:
            return False

    def start(self, timeout: float = 180, *, wait: bool = True) -> None:
        """Start the server unless ours already runs, then wait until /api/health answers
        (`wait=False`: return once it is spawned, and call `wait_ready` later, e.g. while
        other services start)."""
        pid = self._pid("server")
        if pid is None and self.healthy():
            raise PrefectServerError(
                f"{self.url} already answers, but not a server started from {self.home}: "
                f"stop it, or pick another port with {PORT_SETTING}"
            )
        if pid is None:
            self.home.mkdir(parents=True, exist_ok=True)
            cmd = [str(self.prefect), "server", "start", "--host", self.host]
            cmd += ["--port", str(self.port)]
            self._spawn("server", cmd, self.env())
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 180) -> None:
        pid = self._pid("server")
        if pid is None:
            raise PrefectServerError(
                f"no Prefect server started from {self.home}; last lines of its log:\n"
                + self.log_tail("server")
            )
        self._wait(
            "server",
            pid,
            time.monotonic() + timeout,
            self.healthy,
            hint=f"is port {self.port} taken? set {PORT_SETTING} to another port",
        )

    # ------------------------------------------------------------------ pool, worker, deploy

    def ensure_pool(self) -> None:
        """The process work pool the deployments of prefect.yaml name (created once)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.exceptions import ObjectAlreadyExists
        from prefect.settings import PREFECT_API_URL, temporary_settings
        from prefect.workers.process import ProcessWorker

        pool = WorkPoolCreate(
            name=self.pool,
            type="process",
            base_job_template=ProcessWorker.get_default_base_job_template(),
        )
        with temporary_settings({PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as c:
            try:
                c.create_work_pool(pool)
            except ObjectAlreadyExists:
                pass

    def start_worker(self, settings: Mapping[str, str], timeout: float = 120) -> None:
        """A process worker on the pool, with `settings` (the services' variables) in its
        environment, so the flow runs it starts have them too; waits for its first heartbeat."""
        deadline = time.monotonic() + timeout
        pid = self._pid("worker")
        if pid is None:
            cmd = [str(self.prefect), "worker", "start", "--pool", self.pool, "--type", "process"]
            cmd += ["--name", f"corpusflow-{self.port}"]
            pid = self._spawn("worker", cmd, self.env(settings), cwd=_repo())
        self._wait("worker", pid, deadline, self._worker_online)

    def _worker_online(self) -> bool:
        try:
            answer = requests.post(
                f"{self.api_url}/work_pools/{self.pool}/workers/filter", json={}, timeout=5
            )
        except requests.RequestException:
            return False
        return answer.ok and any(w.get("status") == "ONLINE" for w in answer.json())

    def deploy(self, settings: Mapping[str, str], cwd: Path | None = None) -> str:
        """`prefect deploy --all` from the checkout, with `settings` in the environment (the
        deployments' job variables are filled from it); returns its output."""
        where = cwd or _repo()
        # prefect.yaml's pull step names "{{ $PWD }}": the folder we deploy from, not the caller's
        extra = {**settings, "PWD": str(where)}
        done = self._run(["deploy", "--all"], extra=extra, cwd=where, timeout=600)
        return done.stdout

    def save_secrets(self, prefix: str, values: Mapping[str, str]) -> list[str]:
        """Prefect Secret blocks `<prefix>-<name>` for each value (overwritten): how a flow
        run gets the Label Studio token and S3 keys without them in prefect.yaml."""
        from prefect.blocks.system import Secret
        from prefect.settings import PREFECT_API_URL, temporary_settings
        from pydantic import SecretStr

        names = []
        with temporary_settings({PREFECT_API_URL: self.api_url}):
            for name, value in values.items():
                Secret(value=SecretStr(value)).save(f"{prefix}-{name}", overwrite=True)
                names.append(f"{prefix}-{name}")
        return names

    def _run(
        self,
        args: list[str],
        *,
        extra: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.prefect), *args],
            env=self.env(extra),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
            raise PrefectServerError(
                f"`prefect {' '.join(args)}` failed (exit {done.returncode}):\n{tail}"
            )
        return done

    # ------------------------------------------------------------------ processes

    def _spawn(
        self, what: str, cmd: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self._path(what, "log"), "ab") as log:
            process = subprocess.Popen(
                cmd,
                cwd=cwd or self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the caller; stopped by process group
            )
        self._path(what, "pid").write_text(str(process.pid))
        return process.pid

    def _pid(self, what: str) -> int | None:
        """The pid of our `what` from its pidfile, if that process still runs Prefect."""
        path = self._path(what, "pid")
        try:
            pid = int(path.read_text().strip())
            cmdline = _cmdline(pid)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return None
        # An empty cmdline is a process still in exec (Popen has returned, the kernel has
        # not yet set its arguments): ours. Only a cmdline naming something else is a reused pid.
        # Rejecting the empty one made a busy machine start a second server beside the first.
        if (cmdline and b"prefect" not in cmdline) or not pid_alive(pid):  # reused, or a zombie
            path.unlink(missing_ok=True)
            return None
        return pid

    def _wait(
        self,
        what: str,
        pid: int,
        deadline: float,
        ready: Callable[[], bool],
        hint: str = "",
    ) -> None:
        while time.monotonic() < deadline:
            if ready():
                return
            if not pid_alive(pid):
                self._path(what, "pid").unlink(missing_ok=True)
                raise PrefectServerError(
                    f"the Prefect {what} exited during start{'; ' + hint if hint else ''}; "
                    f"last lines of {self._path(what, 'log')}:\n{self.log_tail(what)}"
                )
            time.sleep(0.5)
        raise PrefectServerError(
            f"the Prefect {what} did not become ready in time; "
            f"last lines of {self._path(what, 'log')}:\n{self.log_tail(what)}"
        )

    def log_tail(self, what: str, lines: int = 25) -> str:
        try:
            text = self._path(what, "log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, what: str, timeout: float = 20) -> bool:
        """Stop our `what` ("worker" or "server") and its children; False if none ran."""
        pid = self._pid(what)
        if pid is None:
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and pid_alive(pid):
                time.sleep(0.2)
            if not pid_alive(pid):
                break
        self._path(what, "pid").unlink(missing_ok=True)
        return True

    def stop_all(self) -> None:
        self.stop("worker")
        self.stop("server")

    def status(self) -> dict[str, object]:
        server, worker = self._pid("server"), self._pid("worker")
        return {
            "running": server is not None,
            "answers": server is not None and self.healthy(),
            "url": self.url,
            "pid": server,
            "worker_pid": worker,
            "home": str(self.home),
        }


def _repo() -> Path:
    return Path(__file__).resolve().parent.parent


def _cmdline(pid: int) -> bytes:
    """Process `pid`'s command line as the kernel shows it (empty while it is being exec'd)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes()
