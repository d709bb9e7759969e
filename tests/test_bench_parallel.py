"""bench/parallel.py's pinned children: one that fails while loading ends the benchmark with
an error naming it, and the others, waiting for "go", are ended rather than left behind."""

from __future__ import annotations

import sys
import time
from typing import Any

import psutil
import pytest

import bench.parallel as parallel

# a child that fails at once, or gets ready (its pid in a file its job names) and then waits
# for "go" until its stdin closes
_CHILD = """
import json, os, sys
job = json.loads(sys.stdin.readline())
if job["fail"]:
    sys.exit(7)
open(job["pidfile"], "w").write(str(os.getpid()))
print("ready", flush=True)
sys.stdin.readline()
"""


def test_bench_parallel_a_child_failing_to_load_ends_the_others(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    def pinned(cpu: int, role: str) -> dict[str, Any]:
        return {"args": [sys.executable, "-c", _CHILD], "text": True}

    monkeypatch.setattr(parallel, "_pinned", pinned)
    pidfile = tmp_path / "waiting.pid"
    jobs = [{"fail": False, "pidfile": str(pidfile)}, {"fail": True, "pidfile": ""}]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"--bare-child child 1 failed before it was ready"):
        parallel._together("--bare-child", jobs)
    assert time.monotonic() - started < 60
    waiting = int(pidfile.read_text())
    assert not psutil.pid_exists(waiting) or psutil.Process(waiting).status() == "zombie"
