"""One run at a time per store: a lease object taken by conditional write (create-only, or
replace-if-unchanged once expired), naming its holder, renewed while the run lives.

The store's conditional writes make two holders impossible, not unlikely: of two runs that both
see the lease free (or expired), exactly one write succeeds. A lease whose holder ran on this
host and whose process is gone (kill -9, a crash) is free at once; on another host it lapses at
expiry. Expiry is judged on the holders'
clocks, so machines sharing a store should keep their clocks in sync to well under the TTL.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil
from botocore.exceptions import BotoCoreError, ClientError

from corpus.store import NotFound, PreconditionFailed, Store, StoreError

LEASE_KEY = "locks/run.json"
DEFAULT_TTL = 300.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """Who holds the lease, for the message the next run prints."""

    run_id: str
    host: str
    pid: int
    user: str
    acquired_at: float
    expires_at: float

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.acquired_at))
        left = self.expires_at - now
        expiry = f"expires in {left:.0f} s" if left > 0 else f"expired {-left:.0f} s ago"
        return (
            f"run {self.run_id} by {self.user}@{self.host} (pid {self.pid}) since {since}, {expiry}"
        )


class LeaseHeld(StoreError):
    """Another run holds the store's lease."""

    def __init__(self, store_url: str, key: str, holder: Holder) -> None:
        self.holder = holder
        self.key = key
        super().__init__(
            f"another corpusflow run holds {store_url}: {holder.describe()}. Wait for it to "
            f"finish (corpusflow run --wait-lease SECONDS waits), or if that run is dead its "
            f"lease lapses by itself at expiry ({key} in the store)."
        )


class LeaseLost(StoreError):
    """The lease this run held was taken over (it expired: the run stalled past its TTL)."""


def _decode(data: bytes) -> Holder | None:
    try:
        raw: dict[str, Any] = json.loads(data.decode("utf-8"))
        return Holder(
            run_id=str(raw["run_id"]),
            host=str(raw["host"]),
            pid=int(raw["pid"]),
            user=str(raw["user"]),
            acquired_at=float(raw["acquired_at"]),
            expires_at=float(raw["expires_at"]),
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None  # unreadable lease: treated as expired, replaced by conditional write


def _holder_is_dead(holder: Holder) -> bool:
    """True when the holder ran on this host and its process is gone (or the pid now belongs to
    a process started after the lease was taken): a kill -9 leaves a lease behind, and waiting
    out its TTL would refuse the operator's next run for minutes. A holder on another host is
    judged by its expiry only: we cannot see its processes."""
    if holder.host != socket.gethostname():
        return False
    try:
        started = psutil.Process(holder.pid).create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False  # not ours to inspect: trust the expiry
    # create_time has a resolution of the clock tick; one second of slack
    return started > holder.acquired_at + 1.0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class Lease:
    """`with Lease(store, run_id):` holds the store for one run; a background thread renews it
    every ttl/3 until the block ends. `ensure_held()` before an irreversible step raises
    LeaseLost if the lease lapsed and another run took it."""

    def __init__(
        self, store: Store, run_id: str, *, ttl: float = DEFAULT_TTL, key: str = LEASE_KEY
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl}")
        self.store = store
        self.run_id = run_id
        self.ttl = ttl
        self.key = key
        self._etag: str | None = None
        self._acquired_at = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    # ---------------------------------------------------------------- state

    def _record(self, now: float) -> bytes:
        holder = Holder(
            run_id=self.run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            user=_user(),
            acquired_at=self._acquired_at or now,
            expires_at=now + self.ttl,
        )
        return json.dumps(asdict(holder), sort_keys=True).encode("utf-8")

    def current(self) -> Holder | None:
        """The holder named in the store now (None when free)."""
        try:
            return _decode(self.store.get_bytes(self.key))
        except NotFound:
            return None

    @property
    def held(self) -> bool:
        return self._etag is not None and self._lost is None

    # ---------------------------------------------------------------- protocol

    def try_acquire(self) -> Holder | None:
        """Take the lease if it is free or expired; returns None on success, else the holder."""
        now = time.time()
        self._acquired_at = now
        try:
            self._etag = self.store.put_if_absent(
                self.key, self._record(now), content_type="application/json"
            )
            return None
        except PreconditionFailed:
            pass
        try:
            data, etag = self.store.get_with_etag(self.key)
        except NotFound:
            return self.try_acquire()  # released between our two calls: try the create again
        holder = _decode(data)
        dead = holder is not None and _holder_is_dead(holder)
        if holder is not None and holder.expires_at > now and not dead:
            return holder
        try:  # expired (or unreadable): replace exactly the version we read
            self._etag = self.store.put_if_match(
                self.key, self._record(now), etag, content_type="application/json"
            )
        except PreconditionFailed:
            return self.current() or holder  # someone else replaced it first
        if holder is not None and dead:
            log.warning(
                "took over the lease of a run whose process is gone: %s", holder.describe(now)
            )
        elif holder is not None:
            log.warning("took over an expired lease: %s", holder.describe(now))
        return None

    def acquire(self, wait: float = 0.0, poll: float = 2.0) -> None:
        """Take the lease, waiting up to `wait` seconds for a holder to finish; raises
        LeaseHeld naming the holder when it is still held after that."""
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            holder = self.try_acquire()
            if holder is None:
                self._start_heartbeat()
                return
            if time.monotonic() >= deadline:
                raise LeaseHeld(self.store.url, self.key, holder)
            time.sleep(min(poll, max(deadline - time.monotonic(), 0.05)))

    def renew(self) -> None:
        """Push the expiry forward; raises LeaseLost when our version was replaced."""
        with self._mutex:
            if self._etag is None:
                raise LeaseLost(f"lease {self.key} is not held by run {self.run_id}")
            try:
                self._etag = self.store.put_if_match(
                    self.key, self._record(time.time()), self._etag, content_type="application/json"
                )
            except PreconditionFailed as e:
                holder = self.current()
                self._lost = f"run {self.run_id} lost its lease on {self.store.url}: " + (
                    holder.describe() if holder else "it was removed"
                )
                raise LeaseLost(self._lost) from e

    def ensure_held(self) -> None:
        """Before an irreversible step: raise LeaseLost if the lease lapsed meanwhile."""
        if self._lost is not None:
            raise LeaseLost(self._lost)
        self.renew()

    def release(self) -> None:
        """Stop renewing and remove the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._mutex:
            if self._etag is None:
                return
            try:
                _, etag = self.store.get_with_etag(self.key)
            except NotFound:
                etag = None
            # A race between this read and the delete needs the lease to expire in between:
            # we only release a lease we renewed less than ttl/3 ago.
            if etag is not None and etag == self._etag:
                self.store.delete(self.key)
            self._etag = None

    # ---------------------------------------------------------------- heartbeat

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.run_id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except LeaseLost as e:
                log.error("%s", e)
                return
            except (StoreError, OSError, BotoCoreError, ClientError) as e:
                # a passing store or network error: the next beat tries again
                log.warning("lease renewal failed, will retry: %s", e)

    def __enter__(self) -> Lease:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
