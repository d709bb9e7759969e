"""Run a local Label Studio: headless, on 127.0.0.1, with a pre-made admin and legacy API token,
its data, log and pidfile in one folder. Used by `make services-up` and the test fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

DEFAULT_TOKEN = "c0f5e2a9d4b1c87e36f0a5d2b9e4c1f7a83d6b20"
_REPO = Path(__file__).resolve().parent.parent


class LabelStudioStartError(RuntimeError):
    """Label Studio did not come up; the message holds the tail of its log."""


@dataclass
class LabelStudioService:
    data_dir: Path
    port: int = 8085
    host: str = "127.0.0.1"
    username: str = "admin@corpusflow.local"
    password: str = "corpusflow-admin"
    token: str = DEFAULT_TOKEN
    binary: Path = field(default_factory=lambda: _REPO / ".services/ls-venv/bin/label-studio")

    @classmethod
    def from_env(cls, base: Path) -> LabelStudioService:
        """A service under `base` (data in `base/labelstudio`), overridden by the environment."""
        env = {k: v for k, v in os.environ.items() if v}  # an empty variable counts as unset
        service = cls(data_dir=base / "labelstudio")
        if "CORPUSFLOW_LS_PORT" in env:
            service.port = int(env["CORPUSFLOW_LS_PORT"])
        service.username = env.get("LABEL_STUDIO_USERNAME", service.username)
        service.password = env.get("LABEL_STUDIO_PASSWORD", service.password)
        service.token = env.get("LABEL_STUDIO_USER_TOKEN", service.token)
        return service

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "label-studio.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "label-studio.pid"

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 240) -> None:
        """Start Label Studio unless ours is already up (or starting), then wait until it
        answers and accepts the token."""
        deadline = time.monotonic() + timeout
        pid = self._pid()
        if pid is not None:
            # Ours, from this data folder: up already, or still starting (another caller).
            self._wait_ready(deadline, lambda: _alive(pid), started=False)
            return
        if self._healthy():
            # Something answers on our port but is not ours: a second server would only fail
            # to bind, so say what is there instead.
            raise LabelStudioStartError(
                f"{self.url} is already served by a process not started from {self.data_dir}"
            )
        self.pid_path.unlink(missing_ok=True)  # stale, from a crashed run
        if not self.binary.exists():
            raise LabelStudioStartError(f"{self.binary} not found: run `make install`")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "LABEL_STUDIO_USERNAME": self.username,
            "LABEL_STUDIO_PASSWORD": self.password,
            "LABEL_STUDIO_USER_TOKEN": self.token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            # Annotators join through the organisation's invite link only.
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "DJANGO_DB": "sqlite",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
        }
        cmd = [
            str(self.binary),
            "start",
            "--no-browser",
            "--internal-host",
            self.host,
            "--port",
            str(self.port),
            "--enable-legacy-api-token",
        ]
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                cmd,
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the caller; stopped by process group
            )
        self.pid_path.write_text(str(process.pid))
        try:
            self._wait_ready(deadline, lambda: process.poll() is None, started=True)
        except LabelStudioStartError:
            self.stop()
            raise

    def _wait_ready(self, deadline: float, alive: Callable[[], bool], started: bool) -> None:
        healthy_since: float | None = None
        while time.monotonic() < deadline:
            if not alive():
                raise LabelStudioStartError(
                    f"Label Studio on {self.url} exited while starting:\n{self._log_tail()}"
                )
            if self._healthy():
                if self._token_works():
                    return
                healthy_since = healthy_since or time.monotonic()
                if time.monotonic() - healthy_since > 30:
                    # The admin is created once, with the token of the first start.
                    raise LabelStudioStartError(
                        f"Label Studio on {self.url} rejects the API token; was {self.data_dir} "
                        "first started with another LABEL_STUDIO_USER_TOKEN?"
                    )
            time.sleep(1.0)
        what = "start" if started else "become ready"
        raise LabelStudioStartError(
            f"Label Studio did not {what} on {self.url} in time:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server started from this data folder (its whole process group)."""
        pid = self._pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid_path.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        pid = self._pid()
        return {
            "running": pid is not None and self._healthy(),
            "url": self.url,
            "pid": pid,
            "data_dir": str(self.data_dir),
            "log": str(self.log_path),
        }

    # ------------------------------------------------------------------ checks

    def _pid(self) -> int | None:
        """The pid in the pidfile if that process is alive."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            return None
        # A pid can be reused after a reboot or crash: only a label-studio process counts.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no /proc (macOS): trust the pidfile
        return pid if b"label-studio" in cmdline else None

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _token_works(self) -> bool:
        try:
            response = requests.get(
                f"{self.url}/api/current-user/whoami",
                headers={"Authorization": f"Token {self.token}"},
                timeout=5,
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return finished == 0
