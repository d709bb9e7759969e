"""A local SeaweedFS (`weed mini`) for development and tests: a real, authenticated S3 endpoint
with three identities (publisher, reader of `releases/` only, operator) and no way around them:
the filer and master HTTP APIs are off, the volume servers want signed tokens, every gRPC port
wants a client certificate that exists only in the instance's folder (mode 700)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common import PortInUse, kill_group, pid_alive, port_is_free

_VENV_WEED = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "weed"

# Ports that developer services conventionally hold; test instances must never take them.
RESERVED_PORTS = frozenset({8080, 8085, 8333, 9333, 8888})


# The setting that moves each port of a `from_env` instance (a gRPC port follows its HTTP port).
PORT_SETTINGS = {
    "s3": "CORPUSFLOW_S3_PORT",
    "s3_grpc": "CORPUSFLOW_S3_GRPC_PORT",
    "master": "CORPUSFLOW_SEAWEED_MASTER_PORT",
    "master_grpc": "CORPUSFLOW_SEAWEED_MASTER_PORT (gRPC on it + 10000)",
    "volume": "CORPUSFLOW_SEAWEED_VOLUME_PORT",
    "volume_grpc": "CORPUSFLOW_SEAWEED_VOLUME_PORT (gRPC on it + 10000)",
    "filer": "CORPUSFLOW_SEAWEED_FILER_PORT",
    "filer_grpc": "CORPUSFLOW_SEAWEED_FILER_PORT (gRPC on it + 10000)",
    "admin": "CORPUSFLOW_SEAWEED_ADMIN_PORT",
    "admin_grpc": "CORPUSFLOW_SEAWEED_ADMIN_PORT (gRPC on it + 10000)",
}

# Names in `.services/env` (and in the environment, which wins) of the non-pipeline identities.
READER_VARS = ("CORPUSFLOW_S3_READONLY_ACCESS_KEY", "CORPUSFLOW_S3_READONLY_SECRET_KEY")
OPERATOR_VARS = ("CORPUSFLOW_S3_OPERATOR_ACCESS_KEY", "CORPUSFLOW_S3_OPERATOR_SECRET_KEY")

# gRPC components of one `weed mini` process; each gets the same certificate (weed checks the
# CA, not host names), and [grpc.client] is what the S3 gateway and `weed shell` present.
_GRPC_SECTIONS = ("master", "volume", "filer", "s3", "admin", "worker", "msg_broker", "msg_agent")


class SeaweedError(RuntimeError):
    """SeaweedFS could not be started, or something else holds its place."""


class SeaweedPortInUse(SeaweedError, PortInUse):
    """A port of ours is held by another process."""


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


def _new_key(prefix: str) -> tuple[str, str]:
    return prefix + secrets.token_hex(8), secrets.token_urlsafe(24)


@dataclass
class SeaweedService:
    """One `weed mini` instance. `access_key`/`secret_key` are the publisher's (what the pipeline
    uses: read, write, list, tag; no bucket administration); `readonly_*` the reader's (get and
    list under `<root>/releases/` of each of `release_roots`, nothing else); `operator_*` the
    operator's (admin: buckets and their settings). Keys not given are generated; a caller
    that needs them again keeps them (`services up` writes them to `.services/env`)."""

    data_dir: Path
    s3_port: int = 8333
    host: str = "127.0.0.1"
    access_key: str = ""
    secret_key: str = ""
    readonly_access_key: str = ""
    readonly_secret_key: str = ""
    operator_access_key: str = ""
    operator_secret_key: str = ""
    # "bucket/prefix" of each store whose releases the reader may read; `*` is a wildcard (the
    # tests give each test a prefix of its own), so a production root should name its prefix
    release_roots: tuple[str, ...] = ("corpusflow/store",)
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
        self.release_roots = tuple(r.strip("/") for r in self.release_roots)
        if not (self.access_key and self.secret_key):
            self.access_key, self.secret_key = _new_key("cfpub")
        if not (self.readonly_access_key and self.readonly_secret_key):
            self.readonly_access_key, self.readonly_secret_key = _new_key("cfro")
        if not (self.operator_access_key and self.operator_secret_key):
            self.operator_access_key, self.operator_secret_key = _new_key("cfop")

    # ------------------------------------------------------------ construction

    @classmethod
    def from_env(
        cls,
        base: Path,
        saved: Mapping[str, str] | None = None,
        *,
        release_roots: tuple[str, ...] = ("corpusflow/store",),
    ) -> SeaweedService:
        """The developer instance under `base/seaweedfs`, configured by CORPUSFLOW_S3_* and
        CORPUSFLOW_SEAWEED_*_PORT variables. Keys come from the environment, else from `saved`
        (what `.services/env` holds: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are the
        publisher's there), else are generated."""
        env = {k: v for k, v in os.environ.items() if v != ""}
        saved = dict(saved or {})

        def port(name: str, default: int) -> int:
            return int(env.get(name, default))

        def key(env_name: str, saved_name: str) -> str:
            return env.get(env_name) or saved.get(saved_name, "")

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
            "access_key": key("CORPUSFLOW_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
            "secret_key": key("CORPUSFLOW_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
            "readonly_access_key": key(READER_VARS[0], READER_VARS[0]),
            "readonly_secret_key": key(READER_VARS[1], READER_VARS[1]),
            "operator_access_key": key(OPERATOR_VARS[0], OPERATOR_VARS[0]),
            "operator_secret_key": key(OPERATOR_VARS[1], OPERATOR_VARS[1]),
            "release_roots": release_roots,
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
        while admin + 10000 > 65535 or not port_is_free(host, admin + 10000):
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
        return cls(data_dir=data_dir, **{**ports, **kwargs})

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
    def security_file(self) -> Path:
        """weed reads ./security.toml first; weed runs in data_dir, and so must `weed shell`."""
        return self.data_dir / "security.toml"

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

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """Environment variables pointing corpusflow (as the publisher) at this instance."""
        store = f"s3://{bucket}/{prefix}".rstrip("/")
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "CORPUSFLOW_STORE": store,
        }

    def other_identities_env(self) -> dict[str, str]:
        """The reader's and the operator's keys, under the names `from_env` reads back."""
        return {
            READER_VARS[0]: self.readonly_access_key,
            READER_VARS[1]: self.readonly_secret_key,
            OPERATOR_VARS[0]: self.operator_access_key,
            OPERATOR_VARS[1]: self.operator_secret_key,
        }

    # ------------------------------------------------------------ configuration

    def _identities(self) -> dict[str, object]:
        def identity(name: str, key: str, secret: str, actions: list[str]) -> dict[str, object]:
            return {
                "name": name,
                "credentials": [{"accessKey": key, "secretKey": secret}],
                "actions": actions,
            }

        # SeaweedFS scopes an action to a resource with "Action:bucket/path/*"; the reader's
        # are scoped so it never sees the salt, human/, runs/ (emails) or anything unpublished.
        reader_actions = [
            f"{action}:{root}/releases/*"
            for root in self.release_roots
            for action in ("Read", "List")
        ]
        return {
            "identities": [
                identity(
                    "corpusflow-operator",
                    self.operator_access_key,
                    self.operator_secret_key,
                    ["Admin", "Read", "List", "Tagging", "Write"],
                ),
                identity(
                    "corpusflow-publisher",
                    self.access_key,
                    self.secret_key,
                    ["Read", "List", "Tagging", "Write"],
                ),
                identity(
                    "corpusflow-reader",
                    self.readonly_access_key,
                    self.readonly_secret_key,
                    reader_actions,
                ),
            ]
        }

    def _security_toml(self, tls_dir: Path) -> str:
        """Fresh signing keys on every start (the tokens they sign live 10 s) and mTLS on every
        gRPC port. Without them the filer, master and volume ports answer anyone."""

        def key() -> str:
            return secrets.token_urlsafe(32)

        ca, cert, keyfile = (tls_dir / n for n in ("ca.crt", "weed.crt", "weed.key"))
        lines = [
            "# written by services/seaweedfs.py at each start; regenerated, never edited",
            "[jwt.signing]",  # master -> volume writes
            f'key = "{key()}"',
            "[jwt.signing.read]",  # master -> volume reads
            f'key = "{key()}"',
            "[jwt.filer_signing]",
            f'key = "{key()}"',
            "[jwt.filer_signing.read]",
            f'key = "{key()}"',
            "[access]",
            "ui = false",
            "[filer.expose_directory_metadata]",
            "enabled = false",
            "[grpc]",
            f'ca = "{ca}"',
        ]
        for section in (*_GRPC_SECTIONS, "client"):
            lines += [f"[grpc.{section}]", f'cert = "{cert}"', f'key = "{keyfile}"']
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        d = self.data_dir
        return [
            str(self.binary),
            "mini",
            f"-dir={d / 'data'}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            # the filer's and master's HTTP APIs read, write and delete without any key; the S3
            # gateway talks gRPC to them, so nothing of ours needs them
            "-disableHttp",
            "-filer.exposeDirectoryData=false",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={self.master_grpc_port}",
            "-master.telemetry=false",
            f"-volume.port={self.volume_port}",
            f"-volume.port.grpc={self.volume_grpc_port}",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={self.filer_grpc_port}",
            # unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them in our 700 folder
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

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        (self.data_dir / "data").mkdir(exist_ok=True)
        tls_dir = self.data_dir / "tls"
        _write_tls(tls_dir, self.host)
        _write_private(self.identities_file, json.dumps(self._identities(), indent=2))
        _write_private(self.security_file, self._security_toml(tls_dir))
        # keys lived here before `.services/env` held them; nothing reads this file any more
        (self.data_dir / "credentials.json").unlink(missing_ok=True)

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
        """True when the S3 endpoint accepts our operator's credentials."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client(operator=True, connect_timeout=1, attempts=1).list_buckets()
        except (BotoCoreError, ClientError):  # refused, not ready, or not our credentials
            return False
        return True

    def serves_reads(self) -> bool:
        """True when a stored object can be read back (a byte of the first object of each
        bucket; True with none). Seen once under load: right after a kill -9 and a restart,
        the S3 endpoint listed the buckets while a read failed with InternalError (the
        volumes not loaded yet, by all appearances), so `start` waits for this too."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client = self.client(operator=True, connect_timeout=1, attempts=1)
            for bucket in client.list_buckets().get("Buckets", []):
                name = bucket["Name"]
                for obj in client.list_objects_v2(Bucket=name, MaxKeys=1).get("Contents", []):
                    if obj.get("Size"):
                        client.get_object(Bucket=name, Key=obj["Key"], Range="bytes=0-0")
        except (BotoCoreError, ClientError):
            return False
        return True

    def _busy_ports(self) -> list[str]:
        return [
            f"port {p} ({name}: {PORT_SETTINGS[name]})"
            for name, p in self.ports.items()
            if not port_is_free(self.host, p)
        ]

    def start(self, timeout: float = 60) -> None:
        """Start `weed mini` detached, or reuse the live instance of this data folder."""
        if self._pid() is not None and self.answers():
            return
        stale = self._pid()
        if stale is not None:
            self.stop()  # ours, but with other keys or wedged: restart with the current ones
        busy = self._busy_ports()
        if busy:
            raise SeaweedPortInUse(
                f"SeaweedFS cannot start, another process holds {'; '.join(busy)}: "
                "stop it or set that variable to a free port"
            )
        if not self.binary.exists():
            raise SeaweedError(f"weed binary not found at {self.binary} (run `make install`)")
        self._write_config()
        # WEED_JWT_* and the like win over security.toml: ours must be the configuration
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEED_")}
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=env,
                start_new_session=True,
            )
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                busy = self._busy_ports()  # lost a race for a port since the check above
                if busy:
                    raise SeaweedPortInUse(
                        f"SeaweedFS exited, another process holds {'; '.join(busy)}: "
                        "stop it or set that variable to a free port"
                    )
                raise SeaweedError(
                    f"weed mini exited with {proc.returncode}; log {self.logfile}:\n"
                    + self._log_tail()
                )
            if self.answers() and self.serves_reads():
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
            while time.monotonic() < deadline and pid_alive(pid):
                time.sleep(0.1)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                while pid_alive(pid):
                    time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL our instance's process group, as a crash would (the fault tests), and wait
        until it is gone; `start` brings it back on the same data folder and ports."""
        pid = self._pid()
        if pid is not None:
            kill_group(pid)

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

    def client(  # type: ignore[no-untyped-def]
        self,
        readonly: bool = False,
        *,
        operator: bool = False,
        connect_timeout: float = 5,
        attempts: int = 3,
    ):
        """A boto3 client as the publisher, the reader (`readonly`) or the `operator`."""
        import boto3
        from botocore.config import Config

        if operator:
            key, secret = self.operator_access_key, self.operator_secret_key
        elif readonly:
            key, secret = self.readonly_access_key, self.readonly_secret_key
        else:
            key, secret = self.access_key, self.secret_key
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
            self.client(operator=True).create_bucket(Bucket=name)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise


def _write_private(path: Path, text: str | bytes) -> None:
    """Write atomically, readable by the owner only from the first byte on."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.replace(tmp, path)


def _write_tls(folder: Path, host: str) -> None:
    """A throwaway CA and one certificate it signed, for every gRPC server and client of one
    weed process. The CA's key is never written: no one can mint another certificate, and the
    next start replaces all of it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corpusflow local SeaweedFS CA")])
    ca = (
        x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=ca_name,
            public_key=ca_key.public_key(),
            serial_number=x509.random_serial_number(),
            not_valid_before=start,
            not_valid_after=end,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corpusflow-weed")]),
            public_key=key.public_key(),
            serial_number=x509.random_serial_number(),
            not_valid_before=start,
            not_valid_after=end,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(folder / "ca.crt", ca.public_bytes(pem))
    _write_private(folder / "weed.crt", cert.public_bytes(pem))
    _write_private(
        folder / "weed.key",
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
