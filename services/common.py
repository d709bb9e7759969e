"""What the local services share: the settings file `.services/env` (generated secrets, mode 600)
and the free-port check both services make before they start."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import time
from collections.abc import Mapping
from pathlib import Path

ENV_FILE_HEADER = (
    "# corpusflow local services: settings and generated secrets (keep this file private).\n"
    "# Written by `services up`; a variable set in your environment wins over its line here.\n"
)


class PortInUse(RuntimeError):
    """A service's port is held by another process; the message names the setting to change."""


def port_is_free(host: str, port: int) -> bool:
    """True when a listener could bind `port` now. SO_REUSEADDR as Go's and Python's servers
    set it: without it, the TIME_WAIT sockets a killed server leaves for ~60 s read as taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines of a file written by `write_env_file` (comments and blanks skipped);
    an absent file reads as empty."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = "".join(shlex.split(value))  # undo shlex.quote
    return values


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Write `values` atomically, readable by the owner only; the folder too (mode 700)."""
    for key in values:
        if not key.isidentifier():
            raise ValueError(f"{key!r} is not a variable name ({path})")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        # sourced by a shell (`set -a; source .services/env`): quoted, a value stays a value
        f.write(ENV_FILE_HEADER + "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()))
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover tmp file
    os.replace(tmp, path)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid`, as a crash would (the fault tests), and wait
    until its leader is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs: a zombie (ours, reaped here, or another's) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # our own child that exited: reap it
        return done == 0
    except ChildProcessError:  # not our child: read its state
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
        except (OSError, IndexError):
            return False
