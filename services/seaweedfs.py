"""A local SeaweedFS (`weed mini`) for development and tests: a real, authenticated S3 endpoint
with an admin identity and a read+list-only identity, every port set explicitly."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_VENV_WEED = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "weed"

# Ports that developer services conventionally hold; test instances must never take them.
RESERVED_PORTS = frozenset({8080, 8085, 8333, 9333, 8888})


class SeaweedError(RuntimeError):
    """SeaweedFS could not be started, or something else holds its place."""


def free_port(host: str = "127.0.0.1", *, avoid: set[int] | None = None) -> int:
    """A TCP port nobody listens on right now (another process may still take it later)."""
    avoid = set(avoid or ()) | RESERVED_PORTS
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port
    raise SeaweedError("no free port found")


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class SeaweedService:
    data_dir: Path
    s3_port: int = 8333
    host: str = "127.0.0.1"
    access_key: str = ""
    secret_key: str = ""
    readonly_access_key: str = ""
    readonly_secret_key: str = ""
    binary: Path = field(default_factory=lambda: _VENV_WEED)
    # Every other port `weed mini` opens. The gRPC ports are given explicitly because weed
    # otherwise derives them (+10000) and two instances would collide. The admin worker dials
    # admin_port + 10000 whatever -admin.port.grpc says, so keep that relation.
    s3_grpc_port: int = 18333
    master_port: int = 9333
    master_grpc_port: int = 19333
    volume_port: int = 9340
    volume_grpc_port: int = 19340
    filer_port: int = 8888
    filer_grpc_port: int = 18888
    admin_port: int = 23646
    admin_grpc_port: int = 33646
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.binary = Path(self.binary)
        if not (self.access_key and self.secret_key):
            self.access_key, self.secret_key = self._stored_credentials("admin")
        if not (self.readonly_access_key and self.readonly_secret_key):
            self.readonly_access_key, self.readonly_secret_key = self._stored_credentials(
                "readonly"
            )

    # ------------------------------------------------------------ construction

    @classmethod
    def from_env(cls, base: Path) -> SeaweedService:
        """The developer instance under `base/seaweedfs`, configured by CORPUSFLOW_S3_* and
        CORPUSFLOW_SEAWEED_*_PORT variables; credentials not given in the environment are
        generated once and kept in the data folder so a restart reuses them."""
        env = {k: v for k, v in os.environ.items() if v != ""}

        def port(name: str, default: int) -> int:
            return int(env.get(name, default))

        s3_port = port("CORPUSFLOW_S3_PORT", 8333)
        master_port = port("CORPUSFLOW_SEAWEED_MASTER_PORT", 9333)
        volume_port = port("CORPUSFLOW_SEAWEED_VOLUME_PORT", 9340)
        filer_port = port("CORPUSFLOW_SEAWEED_FILER_PORT", 8888)
        admin_port = port("CORPUSFLOW_SEAWEED_ADMIN_PORT", 23646)
        kwargs: dict[str, Any] = {
            "data_dir": Path(base) / "seaweedfs",
            "host": env.get("CORPUSFLOW_S3_HOST", "127.0.0.1"),
            "s3_port": s3_port,
            "s3_grpc_port": port("CORPUSFLOW_S3_GRPC_PORT", s3_port + 10000),
            "master_port": master_port,
            "master_grpc_port": master_port + 10000,
            "volume_port": volume_port,
            "volume_grpc_port": volume_port + 10000,
            "filer_port": filer_port,
            "filer_grpc_port": filer_port + 10000,
            "admin_port": admin_port,
            "admin_grpc_port": admin_port + 10000,
            "access_key": env.get("CORPUSFLOW_S3_ACCESS_KEY", ""),
            "secret_key": env.get("CORPUSFLOW_S3_SECRET_KEY", ""),
            "readonly_access_key": env.get("CORPUSFLOW_S3_READONLY_ACCESS_KEY", ""),
            "readonly_secret_key": env.get("CORPUSFLOW_S3_READONLY_SECRET_KEY", ""),
        }
        if "CORPUSFLOW_WEED" in env:
            kwargs["binary"] = Path(env["CORPUSFLOW_WEED"])
        return cls(**kwargs)

    @classmethod
    def on_free_ports(cls, data_dir: Path, **kwargs: Any) -> SeaweedService:
        """An instance on ports nobody uses now, with fresh random credentials (for tests)."""
        host = kwargs.get("host", "127.0.0.1")
        taken: set[int] = set()

        def pick() -> int:
            p = free_port(host, avoid=taken)
            taken.add(p)
            return p

        admin = pick()
        while admin + 10000 > 65535 or not _port_is_free(host, admin + 10000):
            admin = pick()
        taken.add(admin + 10000)
        ports = {
            "s3_port": pick(),
            "s3_grpc_port": pick(),
            "master_port": pick(),
            "master_grpc_port": pick(),
            "volume_port": pick(),
            "volume_grpc_port": pick(),
            "filer_port": pick(),
            "filer_grpc_port": pick(),
            "admin_port": admin,
            "admin_grpc_port": admin + 10000,
        }
        creds = {
            "access_key": "cf" + secrets.token_hex(8),
            "secret_key": secrets.token_urlsafe(24),
            "readonly_access_key": "cfro" + secrets.token_hex(8),
            "readonly_secret_key": secrets.token_urlsafe(24),
        }
        return cls(data_dir=data_dir, **{**ports, **creds, **kwargs})

    # ------------------------------------------------------------ paths

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "weed.pid"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "weed.log"

    @property
    def identities_file(self) -> Path:
        return self.data_dir / "s3-identities.json"

    @property
    def ports(self) -> dict[str, int]:
        return {
            "s3": self.s3_port,
            "s3_grpc": self.s3_grpc_port,
            "master": self.master_port,
            "master_grpc": self.master_grpc_port,
            "volume": self.volume_port,
            "volume_grpc": self.volume_grpc_port,
            "filer": self.filer_port,
            "filer_grpc": self.filer_grpc_port,
            "admin": self.admin_port,
            "admin_grpc": self.admin_grpc_port,
        }

    def _stored_credentials(self, who: str) -> tuple[str, str]:
        path = self.data_dir / "credentials.json"
        stored: dict[str, list[str]] = {}
        if path.exists():
            stored = json.loads(path.read_text())
        if who not in stored:
            prefix = "cf" if who == "admin" else "cfro"
            stored[who] = [prefix + secrets.token_hex(8), secrets.token_urlsafe(24)]
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(stored, indent=2))
            tmp.chmod(0o600)
            os.replace(tmp, path)
        key, secret = stored[who]
        return key, secret

    def _identities(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "corpusflow-admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                },
                {
                    "name": "corpusflow-readonly",
                    "credentials": [
                        {
                            "accessKey": self.readonly_access_key,
                            "secretKey": self.readonly_secret_key,
                        }
                    ],
                    "actions": ["Read", "List"],
                },
            ]
        }

    def command(self) -> list[str]:
        d = self.data_dir
        return [
            str(self.binary),
            "mini",
            f"-dir={d / 'data'}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={self.master_grpc_port}",
            "-master.telemetry=false",
            f"-volume.port={self.volume_port}",
            f"-volume.port.grpc={self.volume_grpc_port}",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={self.filer_grpc_port}",
            # unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them with the instance
            f"-filer.localSocket={d / 'filer.sock'}",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={self.s3_grpc_port}",
            f"-s3.localSocket={d / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.identities_file}",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={self.admin_port}",
            f"-admin.port.grpc={self.admin_grpc_port}",
        ]

    # ------------------------------------------------------------ lifecycle

    def _pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return None
        # the pid may have been reused by an unrelated process since we wrote the file
        if not any(a.endswith(b"weed") for a in cmdline[:1]) or str(self.data_dir).encode() not in (
            b" ".join(cmdline)
        ):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def answers(self) -> bool:
        """True when the S3 endpoint accepts our admin credentials."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client(connect_timeout=1, attempts=1).list_buckets()
        except (BotoCoreError, ClientError):  # refused, not ready, or not our credentials
            return False
        return True

    def start(self, timeout: float = 60) -> None:
        """Start `weed mini` detached, or reuse the live instance of this data folder."""
        if self._pid() is not None and self.answers():
            return
        stale = self._pid()
        if stale is not None:
            self.stop()
        busy = [f"{n}={p}" for n, p in self.ports.items() if not _port_is_free(self.host, p)]
        if busy:
            raise SeaweedError(
                f"ports already in use, cannot start SeaweedFS in {self.data_dir}: "
                + ", ".join(busy)
            )
        if not self.binary.exists():
            raise SeaweedError(f"weed binary not found at {self.binary} (run `make install`)")
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        tmp = self.identities_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._identities(), indent=2))
        tmp.chmod(0o600)
        os.replace(tmp, self.identities_file)
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SeaweedError(
                    f"weed mini exited with {proc.returncode}; log {self.logfile}:\n"
                    + self._log_tail()
                )
            if self.answers():
                return
            time.sleep(0.1)
        self.stop()
        raise SeaweedError(
            f"SeaweedFS did not answer on {self.endpoint_url} within {timeout}s; "
            f"log {self.logfile}:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        """Stop our instance (found by pidfile); a no-op when none runs."""
        pid = self._pid()
        if pid is not None:
            # start_new_session made weed a process-group leader: the group is ours alone
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                while _alive(pid):
                    time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        pid = self._pid()
        return {
            "running": pid is not None,
            "answers": pid is not None and self.answers(),
            "pid": pid,
            "endpoint_url": self.endpoint_url,
            "data_dir": str(self.data_dir),
            "log": str(self.logfile),
            "ports": self.ports,
        }

    # ------------------------------------------------------------ clients

    def client(self, readonly: bool = False, *, connect_timeout: float = 5, attempts: int = 3):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        key, secret = (
            (self.readonly_access_key, self.readonly_secret_key)
            if readonly
            else (self.access_key, self.secret_key)
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name=self.region,
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": attempts},
                s3={"addressing_style": "path"},
            ),
        )

    def ensure_bucket(self, name: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client().create_bucket(Bucket=name)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """Environment variables pointing corpusflow at this instance."""
        store = f"s3://{bucket}/{prefix}".rstrip("/")
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "CORPUSFLOW_STORE": store,
        }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        # a zombie child of ours still "exists"; reap it if it is ours
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        stat = Path(f"/proc/{pid}/stat")
        try:
            return stat.read_text().split(") ", 1)[1][:1] != "Z"
        except (FileNotFoundError, IndexError):
            return False
