"""Run a local Label Studio: headless, on 127.0.0.1, with an admin and a legacy API token made
at its first start (generated, never a default), its data, log and pidfile in one folder. Used by
`make services-up` and the test fixtures."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from services.common import PortInUse, kill_group, pid_alive, port_is_free

_REPO = Path(__file__).resolve().parent.parent
# Label Studio's base data folder, made relative to a relative LABEL_STUDIO_BASE_DATA_DIR: where
# the data of checkouts started before the path was made absolute lies.
_NESTED = Path(".services") / "labelstudio"


# The admin token and password every checkout got before they were generated: an instance
# still holding them is open to anyone who has read this repository's history.
_PUBLISHED_TOKEN = "c0f5e2a9d4b1c87e36f0a5d2b9e4c1f7a83d6b20"


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LabelStudioStartError(RuntimeError):
    """Label Studio did not come up; the message holds the tail of its log."""


class LabelStudioPortInUse(LabelStudioStartError, PortInUse):
    """Our port is held by another process."""


@dataclass
class LabelStudioService:
    """`password` and `token` are the admin's; empty ones are generated (the first start creates
    the admin with them, so a caller keeps them: `services up` writes `.services/env`)."""

    data_dir: Path
    port: int = 8085
    host: str = "127.0.0.1"
    username: str = "admin@corpusflow.local"
    password: str = ""
    token: str = ""
    binary: Path = field(default_factory=lambda: _REPO / ".services/ls-venv/bin/label-studio")

    def __post_init__(self) -> None:
        # Label Studio runs in data_dir: a relative LABEL_STUDIO_BASE_DATA_DIR would nest there
        self.data_dir = Path(self.data_dir).resolve()
        self.password = self.password or secrets.token_urlsafe(18)
        self.token = self.token or secrets.token_hex(20)  # a legacy token: 40 characters

    @classmethod
    def from_env(cls, base: Path, saved: Mapping[str, str] | None = None) -> LabelStudioService:
        """A service under `base` (data in `base/labelstudio`). The admin comes from the
        environment (LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD, LABEL_STUDIO_USER_TOKEN),
        else from `saved` (what `.services/env` holds), else is generated."""
        env = {k: v for k, v in os.environ.items() if v}  # an empty variable counts as unset
        saved = dict(saved or {})
        return cls(
            data_dir=Path(base) / "labelstudio",
            port=int(env.get("CORPUSFLOW_LS_PORT", 8085)),
            username=env.get("LABEL_STUDIO_USERNAME")
            or saved.get("LABEL_STUDIO_USERNAME")
            or "admin@corpusflow.local",
            password=env.get("LABEL_STUDIO_PASSWORD") or saved.get("LABEL_STUDIO_PASSWORD", ""),
            token=env.get("LABEL_STUDIO_USER_TOKEN") or saved.get("LABEL_STUDIO_API_KEY", ""),
        )

    def env(self) -> dict[str, str]:
        """What `.services/env` keeps of this service: the pipeline's URL and token, and the
        admin's login for people."""
        return {
            "LABEL_STUDIO_URL": self.url,
            "LABEL_STUDIO_API_KEY": self.token,
            "LABEL_STUDIO_USERNAME": self.username,
            "LABEL_STUDIO_PASSWORD": self.password,
        }

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

    def start(self, timeout: float = 480, progress: Callable[[str], None] | None = _say) -> None:
        """Start Label Studio unless ours is already up (or starting), then wait until it
        answers and accepts the token; `progress` hears how the wait goes every few seconds."""
        deadline = time.monotonic() + timeout
        pid = self._pid()
        if pid is not None:
            # Ours, from this data folder: up already, or still starting (another caller).
            self._wait_ready(deadline, lambda: pid_alive(pid), started=False, progress=progress)
            return
        if self._healthy() or not port_is_free(self.host, self.port):
            # Our port is taken by something that is not ours: a second server would only fail
            # to bind, after a minute of starting, so say what to change instead.
            raise LabelStudioPortInUse(
                f"Label Studio cannot start, another process holds port {self.port} on "
                f"{self.host}: stop it or set CORPUSFLOW_LS_PORT to a free port"
            )
        self.pid_path.unlink(missing_ok=True)  # stale, from a crashed run
        if not self.binary.exists():
            raise LabelStudioStartError(f"{self.binary} not found: run `make install`")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # its database holds the admin's token
        self._move_nested_data(progress)
        env = self._server_env()
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
            self._wait_ready(
                deadline, lambda: process.poll() is None, started=True, progress=progress
            )
        except LabelStudioStartError:
            self.stop()
            raise

    def _server_env(self) -> dict[str, str]:
        return {
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

    def retire_published_token(self, progress: Callable[[str], None] | None = _say) -> bool:
        """An instance first started by an older checkout has the token and password that were
        then the same for everyone: give it a new token and our (generated) password. True
        when `token` changed (the caller keeps the new one)."""
        if self.token != _PUBLISHED_TOKEN:
            return False
        response = requests.post(
            f"{self.url}/api/current-user/reset-token/",
            headers={"Authorization": f"Token {self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        self.token = str(response.json()["token"])
        # the password on stdin, never on a command line; getpass reads stdin only when there
        # is no terminal to open, hence a session of its own
        done = subprocess.run(
            [str(self.binary), "reset_password", "--username", self.username],
            input=self.password + "\n",
            capture_output=True,
            text=True,
            cwd=self.data_dir,
            env=self._server_env(),
            timeout=300,
            start_new_session=True,
        )
        # it exits 0 when it changed nothing ("not found"): read what it says
        said = done.stdout.lower()
        if done.returncode != 0 or not ("successfully" in said or "same as current" in said):
            raise LabelStudioStartError(
                f"could not set a new admin password in {self.data_dir}:\n{done.stdout[-2000:]}"
            )
        if progress:
            progress("Label Studio: replaced the admin token and password older versions shared")
        return True

    def _move_nested_data(self, progress: Callable[[str], None] | None) -> None:
        """Data of a checkout started while LABEL_STUDIO_BASE_DATA_DIR was relative lies in
        data_dir/.services/labelstudio: move it up, where Label Studio now looks."""
        nested = self.data_dir / _NESTED
        if not nested.is_dir():
            return
        clashes = sorted(p.name for p in nested.iterdir() if (self.data_dir / p.name).exists())
        if clashes:
            raise LabelStudioStartError(
                f"Label Studio data in both {self.data_dir} and {nested} ({', '.join(clashes)}): "
                f"keep one (move the other away) and start again"
            )
        for entry in nested.iterdir():
            os.replace(entry, self.data_dir / entry.name)
        nested.rmdir()
        with contextlib.suppress(OSError):  # anything else in there is not ours to delete
            nested.parent.rmdir()
        if progress:
            progress(f"Label Studio: moved its data from {nested} to {self.data_dir}")

    def _wait_ready(
        self,
        deadline: float,
        alive: Callable[[], bool],
        started: bool,
        progress: Callable[[str], None] | None = None,
        every: float = 5.0,
    ) -> None:
        healthy_since: float | None = None
        began = time.monotonic()
        told = began
        while time.monotonic() < deadline:
            if not alive():
                raise LabelStudioStartError(
                    f"Label Studio on {self.url} exited while starting:\n{self._log_tail()}"
                )
            healthy = self._healthy()
            if healthy:
                if self._token_works():
                    if progress and time.monotonic() - began > every:
                        progress(f"Label Studio: ready on {self.url} after {_ago(began)}")
                    return
                healthy_since = healthy_since or time.monotonic()
                if time.monotonic() - healthy_since > 30:
                    # The admin is created once, with the token of the first start.
                    raise LabelStudioStartError(
                        f"Label Studio on {self.url} rejects the API token; was {self.data_dir} "
                        "first started with another one (LABEL_STUDIO_USER_TOKEN, or "
                        "LABEL_STUDIO_API_KEY in .services/env)? Put that one back, or "
                        "`make clean-data` to start afresh"
                    )
            if progress and time.monotonic() - told >= every:
                told = time.monotonic()
                waits = (
                    "for the admin's API token to be accepted"
                    if healthy
                    else f"for {self.url}/health (a first start takes 1-2 minutes)"
                )
                left = max(0, deadline - told)
                progress(f"Label Studio: {_ago(began)} elapsed, waiting {waits}; {left:.0f} s left")
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
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server's whole process group, as a crash would (the fault tests), and
        wait until it is gone; `start` brings it back on the same data folder."""
        pid = self._pid()
        if pid is not None:
            kill_group(pid)

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
        if not pid_alive(pid):
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


def _ago(since: float) -> str:
    return f"{time.monotonic() - since:.0f} s"
