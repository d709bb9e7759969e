"""Parse one input where it can be stopped: a long-lived worker process runs `clean_bytes`; an
input that outlives its wall-time limit gets the worker killed (and replaced on the next
input), an input that exhausts the worker's memory limit or crashes it is quarantined, and the
run goes on with the rest.

The worker is a plain subprocess (`python -m ingest.guard FD`) talking over a multiprocessing
Connection: unlike multiprocessing's own processes it can be started from a daemonic process
(Dask's workers are), and it does not re-import the parent's `__main__`. It is started once
per process and reused, so the per-input cost is a pickle round trip (see bench/hostile.py)."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Connection, Pipe
from typing import Any

from ingest.errors import IngestError
from ingest.limits import VARIABLES, Limits
from schemas.records import CleanDocument

STARTUP_TIMEOUT = 300.0  # seconds for the worker to import the ingest stage (a loaded machine)


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class ParseWorker:
    """One worker process, started on first use, restarted after a timeout or a crash."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._memory_mb: int | None = None
        self.started = 0  # workers started so far (restarts included)

    def _start(self, memory_mb: int) -> Connection:
        parent, child = Pipe(duplex=True)
        env = dict(os.environ)
        # the worker imports what this process imports, from the same places
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        fd = child.fileno()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.guard", str(fd), str(memory_mb)],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            stdout=2,  # a library's print must never reach the parent's stdout (JSON lines)
            env=env,
            close_fds=True,
        )
        child.close()
        self._conn, self._memory_mb = parent, memory_mb
        self.started += 1
        if not parent.poll(STARTUP_TIMEOUT) or parent.recv() != "ready":
            self.stop()
            raise RuntimeError("the ingest parser process did not start")
        return parent

    def stop(self) -> None:
        """Kill the worker (if any) and reap it."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()

    def _connection(self, memory_mb: int) -> Connection:
        proc = self._proc
        if proc is not None and (proc.poll() is not None or memory_mb != self._memory_mb):
            self.stop()
        if self._conn is None:
            return self._start(memory_mb)
        return self._conn

    def clean(
        self, data: bytes, *, source: str, filename: str, doc_id: str | None, limits: Limits
    ) -> CleanDocument:
        """`clean_bytes` in the worker, within `limits.parse_timeout` seconds."""
        with self._lock:
            conn = self._connection(limits.parse_memory_mb)
            conn.send((data, source, filename, doc_id, limits))
            try:
                ready = conn.poll(limits.parse_timeout)
            except (EOFError, OSError):
                ready = True
            if not ready:
                self.stop()
                raise IngestError(
                    "timeout",
                    f"was still being parsed after {limits.parse_timeout:g} s, the limit "
                    f"(parse_timeout, {VARIABLES['parse_timeout']}); the parser was stopped",
                    source,
                )
            try:
                status, payload = conn.recv()
            except (EOFError, OSError):
                proc = self._proc
                code = proc.wait() if proc is not None else 0
                self.stop()
                raise IngestError(
                    "parser_crashed",
                    f"the parser process died ({_signal_name(code)}) while reading it",
                    source,
                ) from None
        if status == "ok":
            assert isinstance(payload, CleanDocument)
            return payload
        kind, message = payload
        if status == "fatal":  # the worker exits after a MemoryError: its heap is suspect
            with self._lock:
                self.stop()
        raise IngestError(kind, message, source)


_WORKER = ParseWorker()
atexit.register(_WORKER.stop)


def clean_guarded(
    data: bytes,
    *,
    source: str,
    filename: str,
    doc_id: str | None = None,
    limits: Limits | None = None,
) -> CleanDocument:
    """`clean_bytes` held to `limits`: checked cheaply first (ingest.limits), then parsed in
    the worker process under the wall-time and memory limits (in this process if
    `parse_timeout` is 0). Raises IngestError naming `source`."""
    from ingest.pipeline import clean_bytes

    limits = limits or Limits()
    if limits.parse_timeout <= 0:
        return clean_bytes(
            data,
            source=source,
            filename=filename,
            doc_id=doc_id,
            max_bytes=limits.max_source_bytes,
            limits=limits,
        )
    return _WORKER.clean(data, source=source, filename=filename, doc_id=doc_id, limits=limits)


def worker() -> ParseWorker:
    """The process's parse worker (for tests and benchmarks)."""
    return _WORKER


# ---------------------------------------------------------------- the worker side


def _limit_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    import resource

    cap = memory_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _near_memory_cap(memory_mb: int) -> bool:
    """Whether this process's address space peaked within 25% of its cap: a C library (lxml)
    that fails an allocation reports it as its own error, not as MemoryError."""
    if memory_mb <= 0:
        return False
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            peak_kb = next(int(x.split()[1]) for x in f if x.startswith("VmPeak:"))
    except (OSError, StopIteration, ValueError):
        return False
    return peak_kb * 1024 >= memory_mb * 1024 * 1024 * 0.75


def _serve(conn: Connection, memory_mb: int) -> None:
    # imported before the memory cap: the stage's own code is not what the cap is for
    from ingest.pipeline import clean_bytes

    _limit_memory(memory_mb)
    conn.send("ready")
    while True:
        try:
            data, source, filename, doc_id, limits = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        reply: tuple[str, Any]
        out_of_memory: str | None = None  # what the parser said when its memory ran out
        try:
            doc = clean_bytes(
                data,
                source=source,
                filename=filename,
                doc_id=doc_id,
                max_bytes=limits.max_source_bytes,
                limits=limits,
            )
            reply = ("ok", doc)
        except MemoryError:
            out_of_memory = ""
        except IngestError as exc:
            reply = ("error", (exc.kind, exc.message))
            if _near_memory_cap(memory_mb):
                out_of_memory = f" ({exc.message})"
        except RecursionError as exc:
            reply = ("error", ("parse_error", f"is nested too deeply to parse: {exc}"))
        except Exception as exc:  # noqa: BLE001 - a parser's bug must not stop the run
            reply = ("error", ("parse_error", f"the parser failed: {type(exc).__name__}: {exc}"))
        if out_of_memory is not None:
            del data
            message = (
                f"needed more than {memory_mb} MB to parse, the limit "
                f"(parse_memory_mb, {VARIABLES['parse_memory_mb']}){out_of_memory}"
            )
            # the heap of a process that ran out is not to be trusted: this worker ends
            conn.send(("fatal", ("limit_exceeded", message)))
            return
        conn.send(reply)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
