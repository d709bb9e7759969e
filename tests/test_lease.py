"""The run lease: one holder at a time on a local store and on real SeaweedFS, the holder named
to whoever waits, expired leases taken over by exactly one run, renewals that notice a loss."""

from __future__ import annotations

import json
import multiprocessing
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus.lease import LEASE_KEY, Lease, LeaseHeld, LeaseLost
from corpus.store import LocalStore, Store
from tests.s3_fixtures import make_s3_store


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    seaweed = request.getfixturevalue("seaweed")
    return make_s3_store(seaweed, f"lease-{tmp_path.name}")


def test_lease_second_run_is_refused_with_the_holder_named(store: Store) -> None:
    first = Lease(store, "run-one", ttl=60)
    first.acquire()
    try:
        with pytest.raises(LeaseHeld) as info:
            Lease(store, "run-two", ttl=60).acquire()
        message = str(info.value)
        assert "run run-one" in message and "expires in" in message
        assert info.value.holder.run_id == "run-one"
    finally:
        first.release()
    assert store.head(LEASE_KEY) is None


def test_lease_waiter_gets_it_after_release(store: Store) -> None:
    first = Lease(store, "run-one", ttl=60)
    first.acquire()
    second = Lease(store, "run-two", ttl=60)
    assert second.try_acquire() is not None
    first.release()
    second.acquire(wait=5, poll=0.1)
    try:
        holder = second.current()
        assert holder is not None and holder.run_id == "run-two"
    finally:
        second.release()


def test_lease_expired_is_taken_over_and_the_old_holder_notices(store: Store) -> None:
    stale = Lease(store, "stalled", ttl=0.5)
    assert stale.try_acquire() is None  # no heartbeat: it stalls
    time.sleep(0.7)
    fresh = Lease(store, "fresh", ttl=60)
    fresh.acquire()
    try:
        with pytest.raises(LeaseLost, match="fresh"):
            stale.ensure_held()
        stale.release()  # not ours any more: must not delete the new holder's lease
        holder = fresh.current()
        assert holder is not None and holder.run_id == "fresh"
    finally:
        fresh.release()


def test_lease_heartbeat_keeps_a_short_lease_alive(store: Store) -> None:
    with Lease(store, "long-run", ttl=0.9) as lease:
        time.sleep(2.0)  # > 2 TTLs: only renewals keep it
        lease.ensure_held()
        assert Lease(store, "other", ttl=60).try_acquire() is not None
    assert store.head(LEASE_KEY) is None


def test_lease_unreadable_record_counts_as_expired(store: Store) -> None:
    store.put_bytes(LEASE_KEY, b"not json")
    with Lease(store, "after-garbage", ttl=60) as lease:
        assert lease.held


def _race(root: str, run_id: str, start: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = LocalStore(root)
    while time.time() < start:
        time.sleep(0.001)
    lease = Lease(store, run_id, ttl=30)
    out.put((run_id, lease.try_acquire() is None))
    # stay alive while the others try: the lease of a process that is gone is free at once
    while time.time() < start + 5.0:
        time.sleep(0.05)


def test_lease_racing_processes_exactly_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 2.0
    procs = [
        ctx.Process(target=_race, args=(str(tmp_path / "store"), f"p{i}", start, out))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert sum(results.values()) == 1, results


def test_lease_rejects_a_nonpositive_ttl(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ttl"):
        Lease(LocalStore(tmp_path), "x", ttl=0)


def _take_and_die(root: str) -> None:
    Lease(LocalStore(root), "killed-run", ttl=3600).try_acquire()
    # no release: the process ends as a kill -9 would leave it


def test_lease_of_a_dead_process_on_this_host_is_free_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_take_and_die, args=(str(tmp_path / "store"),))
    proc.start()
    proc.join(timeout=60)
    store = LocalStore(tmp_path / "store")
    left = json.loads(store.get_bytes(LEASE_KEY))
    assert left["run_id"] == "killed-run" and left["expires_at"] > time.time() + 3000
    with caplog.at_level("WARNING", logger="corpus.lease"), Lease(store, "next", ttl=60) as lease:
        assert lease.held
    assert "process is gone" in caplog.text and "killed-run" in caplog.text


@pytest.mark.parametrize(
    ("host", "pid_of", "taken"),
    [
        ("this", "alive", False),  # the holder still runs here: refused
        ("other", "gone", False),  # another host: its processes are not ours to see
        ("this", "gone", True),
    ],
)
def test_lease_dead_holder_judged_on_this_host_only(
    tmp_path: Path, host: str, pid_of: str, taken: bool
) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        if pid_of == "gone":
            gone = subprocess.Popen([sys.executable, "-c", "pass"])
            gone.wait()
            pid = gone.pid
        else:
            pid = sleeper.pid
        now = time.time()
        record = {
            "run_id": "holder",
            "host": socket.gethostname() if host == "this" else "elsewhere.example",
            "pid": pid,
            "user": "someone",
            "acquired_at": now,
            "expires_at": now + 3600,
        }
        store = LocalStore(tmp_path / "store")
        store.put_bytes(LEASE_KEY, json.dumps(record).encode())
        holder = Lease(store, "next", ttl=60).try_acquire()
        assert (holder is None) is taken, holder
    finally:
        sleeper.kill()
        sleeper.wait()
