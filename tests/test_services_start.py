"""Starting the local services as a newcomer does: secrets generated once, kept private and
never printed; a taken port named with the setting to change; SeaweedFS back at once after a
kill -9; Label Studio's data where it belongs and its slow first start narrated."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import ctl
from services.common import port_is_free, read_env_file, write_env_file
from services.labelstudio import LabelStudioService, LabelStudioStartError
from services.seaweedfs import SeaweedService

SECRET_VARS = (
    "LABEL_STUDIO_PASSWORD",
    "LABEL_STUDIO_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "CORPUSFLOW_S3_READONLY_SECRET_KEY",
    "CORPUSFLOW_S3_OPERATOR_SECRET_KEY",
)
_SETTINGS = (
    "CORPUSFLOW_LS_PORT",
    "CORPUSFLOW_S3_PORT",
    "CORPUSFLOW_S3_GRPC_PORT",
    "CORPUSFLOW_SEAWEED_MASTER_PORT",
    "CORPUSFLOW_SEAWEED_VOLUME_PORT",
    "CORPUSFLOW_SEAWEED_FILER_PORT",
    "CORPUSFLOW_SEAWEED_ADMIN_PORT",
    "LABEL_STUDIO_USERNAME",
    "LABEL_STUDIO_PASSWORD",
    "LABEL_STUDIO_USER_TOKEN",
    "CORPUSFLOW_S3_ACCESS_KEY",
    "CORPUSFLOW_S3_SECRET_KEY",
    "CORPUSFLOW_S3_READONLY_ACCESS_KEY",
    "CORPUSFLOW_S3_READONLY_SECRET_KEY",
    "CORPUSFLOW_S3_OPERATOR_ACCESS_KEY",
    "CORPUSFLOW_S3_OPERATOR_SECRET_KEY",
)


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`services` commands working on a `.services/` of their own, with no ambient settings."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)
    base = tmp_path / ".services"
    monkeypatch.setattr(ctl, "base", lambda: base)
    monkeypatch.setattr(ctl, "env_file", lambda: base / "env")
    return base


def _pair_free(port: int) -> bool:
    return (
        port + 10000 <= 65535
        and port_is_free("127.0.0.1", port)
        and port_is_free("127.0.0.1", port + 10000)
    )


def free_service_ports(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Every port setting of `services up` set to a port that is free with its +10000 twin."""
    chosen: dict[str, int] = {}
    rng = random.Random()
    names = [n for n in _SETTINGS if n.endswith("_PORT")]
    while len(chosen) < len(names):
        port = rng.randrange(20000, 30000)
        taken = set(chosen.values()) | {p + 10000 for p in chosen.values()}
        if port not in taken and port + 10000 not in taken and _pair_free(port):
            chosen[names[len(chosen)]] = port
    for name, port in chosen.items():
        monkeypatch.setenv(name, str(port))
    return chosen


# ---------------------------------------------------------------- secrets


def test_services_env_file_is_private_and_survives_a_shell(tmp_path: Path) -> None:
    path = tmp_path / "svc" / "env"
    values = {"URL": "http://127.0.0.1:8085", "ODD": "p@ss$w'o rd\"; rm -rf x", "EMPTY": ""}
    write_env_file(path, values)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert read_env_file(path) == values
    sourced = subprocess.run(
        ["bash", "-c", f'set -a; source {path}; set +a; printf %s "$ODD"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sourced == values["ODD"]


def test_services_secrets_are_generated_once_and_reused(checkout: Path) -> None:
    ls, s3 = ctl._services()
    ctl._save(ls, s3)
    env_file = checkout / "env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    first = read_env_file(env_file)
    for name in SECRET_VARS:
        assert len(first[name]) >= 24, name
    assert first["LABEL_STUDIO_PASSWORD"] != "corpusflow-admin"
    assert len({first[n] for n in SECRET_VARS}) == len(SECRET_VARS)  # none shared
    # a later start reads them back instead of making new ones
    ls2, s3_2 = ctl._services()
    assert (ls2.password, ls2.token) == (
        first["LABEL_STUDIO_PASSWORD"],
        first["LABEL_STUDIO_API_KEY"],
    )
    assert (s3_2.access_key, s3_2.secret_key) == (
        first["AWS_ACCESS_KEY_ID"],
        first["AWS_SECRET_ACCESS_KEY"],
    )
    assert s3_2.readonly_secret_key == first["CORPUSFLOW_S3_READONLY_SECRET_KEY"]
    assert s3_2.operator_secret_key == first["CORPUSFLOW_S3_OPERATOR_SECRET_KEY"]
    # and two checkouts never share them
    other = LabelStudioService(data_dir=checkout / "other")
    assert other.password != ls.password and other.token != ls.token


def test_services_environment_overrides_saved_secrets(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctl._save(*ctl._services())
    monkeypatch.setenv("LABEL_STUDIO_PASSWORD", "my-own-password")
    monkeypatch.setenv("LABEL_STUDIO_USER_TOKEN", "my-own-token")
    monkeypatch.setenv("CORPUSFLOW_S3_READONLY_SECRET_KEY", "my-own-reader-secret")
    ls, s3 = ctl._services()
    assert (ls.password, ls.token) == ("my-own-password", "my-own-token")
    assert s3.readonly_secret_key == "my-own-reader-secret"


def test_services_where_prints_where_secrets_are_not_the_secrets(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctl._save(*ctl._services())
    saved = read_env_file(checkout / "env")
    assert ctl.main(["where"]) == 0
    out = capsys.readouterr()
    for name in SECRET_VARS:
        assert saved[name] not in out.out + out.err, name
    assert str(checkout / "env") in out.out and "LABEL_STUDIO_PASSWORD" in out.out


# ---------------------------------------------------------------- ports


def test_services_port_check_ignores_time_wait_but_not_a_listener() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    assert not port_is_free("127.0.0.1", port)  # someone listens
    accepted.close()  # the server side closes first: its port goes to TIME_WAIT
    time.sleep(0.1)
    client.close()
    listener.close()
    with socket.socket() as plain:  # what the old check did, and why it refused for ~60 s
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    assert port_is_free("127.0.0.1", port)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other process is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        yield s.getsockname()[1]


@pytest.mark.integration
def test_services_up_with_s3_port_taken_says_which_setting_in_one_line(
    checkout: Path,
    held_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    free_service_ports(monkeypatch)  # its gRPC port among them, so only the S3 port clashes
    monkeypatch.setenv("CORPUSFLOW_S3_PORT", str(held_port))
    assert ctl.main(["up"]) == 2  # services commands exit 2 on a start error
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"port {held_port}" in err and "CORPUSFLOW_S3_PORT" in err
    assert "Traceback" not in err


@pytest.mark.integration
def test_services_up_with_label_studio_port_taken_says_which_setting_in_one_line(
    checkout: Path,
    held_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    free_service_ports(monkeypatch)
    monkeypatch.setenv("CORPUSFLOW_LS_PORT", str(held_port))
    try:
        assert ctl.main(["up"]) == 2  # SeaweedFS starts (under a second), Label Studio cannot
    finally:
        ctl.main(["down"])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"port {held_port}" in err and "CORPUSFLOW_LS_PORT" in err


# ---------------------------------------------------------------- SeaweedFS after a crash


def _time_wait_count(port: int) -> int:
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "06" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


@pytest.mark.integration
def test_services_seaweed_restarts_right_after_kill_9(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = SeaweedService.on_free_ports(tmp_path / "seaweedfs")
    service.start()
    try:
        service.ensure_bucket("crash-test")
        client = service.client()
        for i in range(20):
            client.put_object(Bucket="crash-test", Key=f"k{i}", Body=b"x")
        pid = service.status()["pid"]
        assert isinstance(pid, int)
        os.killpg(pid, signal.SIGKILL)
        while service.status()["running"]:
            time.sleep(0.05)
        waiting = sum(_time_wait_count(p) for p in service.ports.values())
        began = time.monotonic()
        service.start(timeout=60)
        took = time.monotonic() - began
        with capsys.disabled():  # a figure for the table, not an assertion
            print(
                f"\nSeaweedFS back {took:.1f} s after kill -9 "
                f"({waiting} TIME_WAIT sockets on its ports)"
            )
        assert service.client().get_object(Bucket="crash-test", Key="k19")["Body"].read() == b"x"
    finally:
        service.stop()


# ---------------------------------------------------------------- Label Studio


def test_services_labelstudio_moves_data_from_the_nested_folder(tmp_path: Path) -> None:
    service = LabelStudioService(data_dir=tmp_path / "labelstudio")
    nested = service.data_dir / ".services" / "labelstudio"
    (nested / "media").mkdir(parents=True)
    (nested / "label_studio.sqlite3").write_bytes(b"db")
    told: list[str] = []
    service._move_nested_data(told.append)
    assert (service.data_dir / "label_studio.sqlite3").read_bytes() == b"db"
    assert (service.data_dir / "media").is_dir()
    assert not (service.data_dir / ".services").exists()
    assert told and str(service.data_dir) in told[0]


def test_services_labelstudio_refuses_to_merge_two_data_folders(tmp_path: Path) -> None:
    service = LabelStudioService(data_dir=tmp_path / "labelstudio")
    nested = service.data_dir / ".services" / "labelstudio"
    nested.mkdir(parents=True)
    (nested / "label_studio.sqlite3").write_bytes(b"old")
    (service.data_dir / "label_studio.sqlite3").write_bytes(b"new")
    with pytest.raises(LabelStudioStartError, match="label_studio.sqlite3"):
        service._move_nested_data(None)
    assert (service.data_dir / "label_studio.sqlite3").read_bytes() == b"new"


def test_services_labelstudio_data_dir_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    service = LabelStudioService.from_env(Path(".services"))
    assert service.data_dir == tmp_path / ".services" / "labelstudio"


@pytest.mark.integration
def test_services_up_generates_secrets_narrates_and_reuses(
    checkout: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One real `services up` on a fresh `.services/` (a Label Studio cold start: 1-3 min)."""
    import requests

    free_service_ports(monkeypatch)
    try:
        began = time.monotonic()
        assert ctl.main(["up"]) == 0
        took = time.monotonic() - began
        first = capsys.readouterr()
        told = [line for line in first.err.splitlines() if line.startswith("Label Studio:")]
        with capsys.disabled():
            print(f"\nfirst `services up` (cold start): {took:.0f} s, {len(told)} progress lines:")
            print("\n".join(told[:1] + told[-1:]))
        saved = read_env_file(checkout / "env")
        for name in SECRET_VARS:
            assert saved[name] not in first.out + first.err, name
        assert str(checkout / "env") in first.out
        progress = [line for line in first.err.splitlines() if "elapsed, waiting" in line]
        assert progress, first.err  # the cold start said what it waits for while it waited
        # the admin was made with the generated token, and its data is where we look
        whoami = requests.get(
            f"{saved['LABEL_STUDIO_URL']}/api/current-user/whoami",
            headers={"Authorization": f"Token {saved['LABEL_STUDIO_API_KEY']}"},
            timeout=10,
        )
        assert whoami.status_code == 200
        assert (checkout / "labelstudio" / "label_studio.sqlite3").exists()
        assert not (checkout / "labelstudio" / ".services").exists()
        assert ctl.main(["where"]) == 0
        assert ctl.main(["up"]) == 0  # a second `up` reuses what runs, and the same secrets
        second = capsys.readouterr()
        assert read_env_file(checkout / "env") == saved
        for name in SECRET_VARS:
            assert saved[name] not in second.out + second.err, name
    finally:
        ctl.main(["down"])


@pytest.mark.integration
def test_services_labelstudio_retires_the_token_and_password_older_checkouts_shared(
    tmp_path: Path,
) -> None:
    """A Label Studio first started by an older checkout (token and password the same for
    everyone) gets a new token and our generated password; the old token stops working."""
    import requests

    from services.labelstudio import _PUBLISHED_TOKEN
    from tests.ls_fixtures import free_port

    port = free_port()
    old = LabelStudioService(
        data_dir=tmp_path / "labelstudio",
        port=port,
        password="corpusflow-admin",
        token=_PUBLISHED_TOKEN,
    )
    old.start(timeout=480)
    try:
        upgraded = LabelStudioService(
            data_dir=tmp_path / "labelstudio", port=port, token=_PUBLISHED_TOKEN
        )
        assert upgraded.retire_published_token(progress=None) is True
        assert upgraded.token != _PUBLISHED_TOKEN

        def whoami(token: str) -> int:
            return requests.get(
                f"{upgraded.url}/api/current-user/whoami",
                headers={"Authorization": f"Token {token}"},
                timeout=10,
            ).status_code

        assert whoami(upgraded.token) == 200
        assert whoami(_PUBLISHED_TOKEN) == 401
        # Label Studio's own tool says the generated password is now the admin's
        check = subprocess.run(
            [str(upgraded.binary), "reset_password", "--username", upgraded.username],
            input=upgraded.password + "\n",
            capture_output=True,
            text=True,
            cwd=upgraded.data_dir,
            env=upgraded._server_env(),
            timeout=300,
            start_new_session=True,
        )
        assert "same as current" in check.stdout, check.stdout[-2000:]
        assert upgraded.retire_published_token(progress=None) is False  # once is enough
    finally:
        old.stop()


@pytest.mark.parametrize(
    ("cmdline", "kept"),
    [
        (b"", True),  # still in exec: Popen has returned, the kernel has not set its arguments
        (b"/venv/bin/python\x00/venv/bin/prefect\x00server\x00start\x00", True),
        (b"/usr/bin/python3\x00other.py\x00", False),  # the pid was reused by another program
    ],
)
def test_services_prefect_pidfile_keeps_a_process_still_in_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cmdline: bytes, kept: bool
) -> None:
    from services import prefect_server

    server = prefect_server.PrefectServer(home=tmp_path)
    process = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "server.pid").write_text(str(process.pid))
        monkeypatch.setattr(prefect_server, "_cmdline", lambda pid: cmdline)
        assert server._pid("server") == (process.pid if kept else None)
        assert (tmp_path / "server.pid").exists() is kept
    finally:
        process.kill()
        process.wait()
    # Once it has exited, the pidfile goes whatever its cmdline said.
    assert server._pid("server") is None
