"""Least privilege that holds, tried against the real SeaweedFS of the session: no port of the
weed process serves or changes an object without credentials, and the reader identity sees
releases/ and nothing else (not the pseudonym salt, not the emails in human/ and runs/)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from corpus.store import AccessDenied, S3Store
from services.seaweedfs import SeaweedService
from tests.s3_fixtures import TEST_BUCKET, make_s3_store

pytestmark = pytest.mark.integration

EMAIL = "annotator-one@corpusflow.test"
SALT = b"salt-" + uuid.uuid4().hex.encode()
# Every top-level prefix the pipeline writes besides releases/ (flows/, corpus/, review/).
PRIVATE_KEYS = {
    "config/pseudonym-salt": SALT,
    "human/doc-1.json": json.dumps({"annotator": EMAIL}).encode(),
    "human-adjudication/doc-1.json": json.dumps({"annotator": EMAIL}).encode(),
    "runs/run-1.json": json.dumps({"annotators": [EMAIL]}).encode(),
    "adjudicated/doc-1.json": b"{}",
    "machine/doc-1.json": b"{}",
    "clean/doc-1.json": b"{}",
    "quarantine/bad.docx.json": b"{}",
    "ledger/inputs.json": b"{}",
    "review/state.json": b"{}",
    "models/stance/model.json": b"{}",
    "train/dev.jsonl": b"{}",
    "releasesX/not-a-release.json": b"{}",  # a sibling that only starts like releases/
}


@dataclass(frozen=True)
class Planted:
    prefix: str
    marker: bytes  # the content of releases/latest.json; no probe may ever see it
    publisher: S3Store


@pytest.fixture(scope="module")
def planted(seaweed: SeaweedService) -> Iterator[Planted]:
    prefix = f"sec-{uuid.uuid4().hex[:8]}"
    publisher = make_s3_store(seaweed, prefix)
    # big enough to live in a volume chunk rather than inline in the filer's metadata
    marker = b"marker-" + uuid.uuid4().hex.encode() + b"." * 4096
    publisher.put_bytes("releases/latest.json", marker)
    publisher.put_bytes("releases/v0001/manifest.json", b'{"version": "v0001"}')
    for key, data in PRIVATE_KEYS.items():
        publisher.put_bytes(key, data)
    yield Planted(prefix, marker, publisher)


# ---------------------------------------------------------------- what the process listens on


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state owned by `pid`, from /proc (not from what the service says)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def chunk_fid(seaweed: SeaweedService, key: str) -> str:
    """The volume file id of an object's first chunk, asked with the operator's tool (weed
    shell over mTLS, from the instance's folder where its certificate lives)."""
    script = f"fs.meta.cat /buckets/{TEST_BUCKET}/{key}\n"
    out = subprocess.run(
        [
            str(seaweed.binary),
            "shell",
            f"-master={seaweed.host}:{seaweed.master_port}.{seaweed.master_grpc_port}",
            f"-filer={seaweed.host}:{seaweed.filer_port}.{seaweed.filer_grpc_port}",
        ],
        input=script,
        capture_output=True,
        text=True,
        cwd=seaweed.data_dir,
        timeout=120,
    ).stdout
    match = re.search(r'"file_?[iI]d"\s*:\s*"(\d+,[0-9a-f]+)"', out)
    assert match, f"no chunk in weed shell's answer:\n{out[-2000:]}"
    return match.group(1)


def http_probe(host: str, port: int, method: str, path: str) -> tuple[str, bytes]:
    """('<status>', body) or ('refused: <why>', b'') for one request without credentials."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path, body=b"forged" if method in ("PUT", "POST") else None)
        response = conn.getresponse()
        return str(response.status), response.read()
    except (OSError, http.client.HTTPException) as e:
        return f"refused: {type(e).__name__}", b""
    finally:
        conn.close()


def tls_probe(host: str, port: int, cert: tuple[Path, Path] | None) -> str:
    """'accepted' when a TLS client (with `cert`, or none) can talk HTTP/2 to the port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    if cert:
        ctx.load_cert_chain(*cert)
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                # TLS 1.3 reports a refused client certificate on the first read
                return "accepted" if tls.recv(64) else "refused: closed"
    except (OSError, ssl.SSLError) as e:
        return f"refused: {type(e).__name__}"


def print_probe_table(rows: list[tuple[str, int, str, str, str]]) -> None:
    """One line per port: how many probes, and what came back how often."""
    from collections import Counter, defaultdict

    outcomes: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    served: dict[tuple[str, int], set[str]] = defaultdict(set)
    for role, port, _method, path, outcome in rows:
        outcomes[role, port][outcome] += 1
        if outcome[:1] in ("2", "3"):
            served[role, port].add(path)
    print(f"\n{'port role':<12} {'port':>5}  {'probes':>6}  outcomes (status pages served)")
    for (role, port), counts in sorted(outcomes.items()):
        seen = ", ".join(f"{o} x{n}" for o, n in counts.most_common())
        pages = " ".join(sorted(served[role, port]))
        print(f"{role:<12} {port:>5}  {sum(counts.values()):>6}  {seen}  ({pages or '-'})")


# Read-only status pages that answer without a key; they name volumes, sizes and buckets
# (collections), never an object's name or content. Everything else must be refused.
STATUS_PATHS = {"/", "/status", "/cluster/status", "/healthz", "/cluster/healthz"}


def test_services_seaweed_no_port_serves_or_changes_objects_without_credentials(
    seaweed: SeaweedService, planted: Planted
) -> None:
    pid = seaweed.status()["pid"]
    assert isinstance(pid, int)
    ports = listening_ports(pid)
    assert set(seaweed.ports.values()) <= ports, "a port we configured is not listening"
    roles = {p: name for name, p in seaweed.ports.items()}
    key = f"{planted.prefix}/releases/latest.json"
    fid = chunk_fid(seaweed, key)
    volume_id = fid.split(",")[0]
    paths = [
        "/",
        f"/buckets/{TEST_BUCKET}/{key}",  # filer
        f"/buckets/{TEST_BUCKET}/{planted.prefix}/",  # filer directory listing
        f"/{TEST_BUCKET}/{key}",  # S3, anonymous
        f"/{fid}",  # volume
        f"/dir/lookup?fileId={fid}",  # master: hands out a write token when it answers
        "/dir/assign",
        f"/col/delete?collection={TEST_BUCKET}",
        f"/admin/volume/delete?volume={volume_id}",
        "/status",
        "/cluster/status",
    ]
    contents = (planted.marker[:40], SALT, EMAIL.encode())
    names = (b"latest.json", planted.prefix.encode())  # refusals may echo them, pages may not
    rows, wrong = [], []
    for port in sorted(ports):
        role = roles.get(port, "unknown")
        for method in ("GET", "PUT", "DELETE", "POST"):
            for path in paths:
                outcome, body = http_probe(seaweed.host, port, method, path)
                rows.append((role, port, method, path, outcome))
                served = outcome[:1] in ("2", "3")
                if any(s in body for s in contents) or (served and any(n in body for n in names)):
                    wrong.append((role, port, method, path, outcome, "leaks an object"))
                elif served and path.split("?")[0] not in STATUS_PATHS:
                    wrong.append((role, port, method, path, outcome, "not refused"))
    cert = (seaweed.data_dir / "tls" / "weed.crt", seaweed.data_dir / "tls" / "weed.key")
    for port in sorted(ports):
        role = roles.get(port, "unknown")
        outcome = tls_probe(seaweed.host, port, None)
        rows.append((role, port, "TLS", "no client cert", outcome))
        if outcome == "accepted":
            wrong.append((role, port, "TLS", "no client cert", outcome, "gRPC without mTLS"))
    for name in ("master_grpc", "volume_grpc", "filer_grpc", "s3_grpc", "admin_grpc"):
        # the probe can tell: with the instance's own certificate the same handshake passes
        assert tls_probe(seaweed.host, seaweed.ports[name], cert) == "accepted", name
    # the filer's unix socket is in the instance's folder, which only its owner can enter
    assert seaweed.data_dir.stat().st_mode & 0o777 == 0o700
    print_probe_table(rows)
    assert not wrong, "\n".join(map(str, wrong))
    # nothing changed: the object and its neighbours are as the publisher wrote them
    assert planted.publisher.get_bytes("releases/latest.json") == planted.marker
    assert planted.publisher.get_bytes("config/pseudonym-salt") == SALT
    listed = set(planted.publisher.list(""))
    assert listed == {"releases/latest.json", "releases/v0001/manifest.json", *PRIVATE_KEYS}
    assert seaweed.answers()


def test_services_seaweed_s3_refuses_missing_and_wrong_keys(
    seaweed: SeaweedService, planted: Planted
) -> None:
    from corpus.store import s3_client

    key = f"{planted.prefix}/releases/latest.json"
    for access, secret in (
        (seaweed.access_key, "not-the-secret"),
        (seaweed.readonly_access_key, seaweed.secret_key),
        ("cfunknown0000000", "whatever"),
    ):
        client = s3_client(endpoint_url=seaweed.endpoint_url, access_key=access, secret_key=secret)
        with pytest.raises(ClientError) as got:
            client.get_object(Bucket=TEST_BUCKET, Key=key)
        assert got.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError):
            client.put_object(Bucket=TEST_BUCKET, Key=key, Body=b"forged")
    status, body = http_probe(seaweed.host, seaweed.s3_port, "GET", f"/{TEST_BUCKET}/{key}")
    assert status == "403" and planted.marker[:40] not in body
    assert planted.publisher.get_bytes("releases/latest.json") == planted.marker


# ---------------------------------------------------------------- the reader


@pytest.mark.parametrize("key", sorted(PRIVATE_KEYS))
def test_services_reader_is_refused_outside_releases(
    seaweed: SeaweedService, planted: Planted, key: str
) -> None:
    reader = make_s3_store(seaweed, planted.prefix, readonly=True)
    with pytest.raises(AccessDenied):
        reader.get_bytes(key)
    with pytest.raises(AccessDenied):
        list(reader.list(key.split("/")[0] + "/"))
    with pytest.raises(AccessDenied):
        reader.put_bytes(key, b"forged")
    with pytest.raises(AccessDenied):
        reader.delete(key)
    # head answers no body; SeaweedFS says 403, which the store reads as absent or denied
    try:
        assert reader.head(key) is None
    except AccessDenied:
        pass
    assert planted.publisher.get_bytes(key) == PRIVATE_KEYS[key]


def test_services_reader_reads_releases_and_nothing_of_the_store_root(
    seaweed: SeaweedService, planted: Planted
) -> None:
    reader = make_s3_store(seaweed, planted.prefix, readonly=True)
    assert reader.get_bytes("releases/latest.json") == planted.marker
    assert sorted(reader.list("releases/")) == [
        "releases/latest.json",
        "releases/v0001/manifest.json",
    ]
    with pytest.raises(AccessDenied):
        list(reader.list(""))  # listing the store root would name every private key
    with pytest.raises(AccessDenied):
        reader.put_bytes("releases/latest.json", b"forged")
    with pytest.raises(AccessDenied):
        reader.delete("releases/v0001/manifest.json")
    # another bucket, not named among the reader's roots: nothing at all
    seaweed.ensure_bucket("corpusflow-other")
    make_s3_store(seaweed, "x").client.put_object(
        Bucket="corpusflow-other", Key="x/releases/latest.json", Body=b"{}"
    )
    other = S3Store(reader.client, "corpusflow-other", "x")
    with pytest.raises(AccessDenied):
        other.get_bytes("releases/latest.json")


def test_services_publisher_cannot_administer_buckets_operator_can(
    seaweed: SeaweedService,
) -> None:
    name = f"cf-admin-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ClientError) as got:
        seaweed.client().create_bucket(Bucket=name)
    assert got.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        seaweed.client(readonly=True).create_bucket(Bucket=name)
    seaweed.client(operator=True).create_bucket(Bucket=name)
    seaweed.client(operator=True).delete_bucket(Bucket=name)


def test_services_seaweed_config_files_are_private(seaweed: SeaweedService) -> None:
    for path in (
        seaweed.identities_file,
        seaweed.security_file,
        seaweed.data_dir / "tls" / "weed.key",
    ):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert not (seaweed.data_dir / "tls" / "ca.key").exists()  # no one can mint a certificate


def test_services_no_identity_can_raise_its_own_rights(
    seaweed: SeaweedService, planted: Planted
) -> None:
    """The embedded IAM API answers on the S3 port: it must refuse new keys and policies."""
    import boto3

    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    )
    for key, secret in (
        (seaweed.access_key, seaweed.secret_key),
        (seaweed.readonly_access_key, seaweed.readonly_secret_key),
        (seaweed.operator_access_key, seaweed.operator_secret_key),
    ):
        iam = boto3.client(
            "iam",
            endpoint_url=seaweed.endpoint_url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name=seaweed.region,
        )
        with pytest.raises(ClientError):
            iam.create_user(UserName=f"extra-{uuid.uuid4().hex[:6]}")
        with pytest.raises(ClientError):
            iam.create_access_key(UserName="corpusflow-reader")
        with pytest.raises(ClientError):
            iam.put_user_policy(
                UserName="corpusflow-reader", PolicyName="all", PolicyDocument=policy
            )
    reader = make_s3_store(seaweed, planted.prefix, readonly=True)
    with pytest.raises(AccessDenied):
        reader.get_bytes("config/pseudonym-salt")
