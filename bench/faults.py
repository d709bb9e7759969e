"""Faults injected into `corpusflow run` against a real Label Studio, a real SeaweedFS and a
Prefect server: the run killed with SIGKILL (its whole process group) at a stage boundary plus a
random delay, Label Studio killed mid-run, SeaweedFS killed mid-publish; each followed by the
operator's recovery (restart what crashed, run again). Prints one row per fault: the outcome,
duplicate Label Studio tasks, documents lost, whether `latest` verifies and the release equals a
clean run's, the time to recover and the peak memory of the run's processes.

    .venv/bin/python -m bench.faults                 # every kill point once, then both services
    .venv/bin/python -m bench.faults --seeds 1 2 3   # kill points drawn from these seeds

The machinery (`run_cli`, `inspect`, `kill_point`) is what tests/test_faults.py runs."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = str(ROOT / "corpus" / "samples")
CLI = [sys.executable, "-m", "flows.cli", "run", "--sources"]
BUCKET = "corpusflow-faults"
# A killed run's lease lapses after its TTL (the store cannot tell a dead holder from a slow
# one); short here so that a re-run waits seconds, not the default five minutes.
LEASE_TTL = "15"
LEASE_WAIT = "120"
# release files whose bytes name the store or the version: equal content, other words
NAMING_FILES = frozenset({"README.md", "NOTES.md"})
# Stage boundaries of a run, as the lines it logs on stderr: (the stage a kill right after the
# line interrupts, the line). A kill point is one of them plus a delay.
BOUNDARIES = (
    ("lease", r"Beginning flow run"),
    ("ingest", r"holds the lease of"),
    ("annotate", r"ingest batch \d+/\d+:"),
    ("push", r"annotate batch \d+/\d+:"),
    ("collect", r" - push: \{"),
    ("publish", r" - adjudicate: \{"),
    ("report", r" - publish: v\d+"),
)
SERVICE_VARS = (
    "CORPUSFLOW_STORE",
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "CORPUSFLOW_DASK_ADDRESS",
    "CORPUSFLOW_LEASE_WAIT",
)


@dataclass(frozen=True)
class KillPoint:
    stage: str  # what the kill interrupts (roughly: the delay may carry it into the next)
    pattern: str  # the stderr line it follows
    delay: float  # seconds after that line


def kill_point(seed: int, max_delay: float = 1.0) -> KillPoint:
    """The kill point a seed draws: a stage boundary and a delay after it."""
    rng = random.Random(seed)
    stage, pattern = rng.choice(BOUNDARIES)
    return KillPoint(stage, pattern, round(rng.uniform(0.0, max_delay), 2))


# ---------------------------------------------------------------- the services


@dataclass
class Stack:
    """The services the runs talk to: Label Studio, SeaweedFS (the store and the reader's
    identity) and a Prefect server (so that no run starts a temporary one)."""

    ls: Any  # services.labelstudio.LabelStudioService
    s3: Any  # services.seaweedfs.SeaweedService
    prefect_api: str
    bucket: str = BUCKET

    def env(self, name: str, work: Path, **extra: str) -> dict[str, str]:
        """A run's environment: store `s3://bucket/<name>`, Label Studio project `<name>`."""
        env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
        env.update(
            LABEL_STUDIO_URL=self.ls.url,
            LABEL_STUDIO_API_KEY=self.ls.token,
            AWS_ENDPOINT_URL=self.s3.endpoint_url,
            AWS_ACCESS_KEY_ID=self.s3.access_key,
            AWS_SECRET_ACCESS_KEY=self.s3.secret_key,
            AWS_REGION=self.s3.region,
            CORPUSFLOW_STORE=f"s3://{self.bucket}/{name}",
            CORPUSFLOW_LS_PROJECT=name,
            CORPUSFLOW_WORK_DIR=str(work / "work"),
            CORPUSFLOW_LEASE_TTL=LEASE_TTL,
            PREFECT_API_URL=self.prefect_api,
        )
        env.setdefault("CORPUSFLOW_WORKERS", "1")  # 5 samples: one process is the fastest
        # a dead service is retried three times, as by default, with short waits between
        env.setdefault("CORPUSFLOW_RETRY_DELAYS", "0.5,0.5,0.5")
        env.setdefault("AWS_MAX_ATTEMPTS", "2")
        env.update(extra)
        return env

    def store(self, name: str, *, reader: bool = False) -> Any:
        from corpus.store import S3Store, s3_client

        key, secret = (
            (self.s3.readonly_access_key, self.s3.readonly_secret_key)
            if reader
            else (self.s3.access_key, self.s3.secret_key)
        )
        client = s3_client(endpoint_url=self.s3.endpoint_url, access_key=key, secret_key=secret)
        return S3Store(client, self.bucket, name)


# ---------------------------------------------------------------- one run


@dataclass
class RunResult:
    code: int
    stdout: str
    stderr: str
    seconds: float  # start to exit
    peak_rss_mb: float  # the run's process tree, summed, sampled every 0.2 s
    fired_at: float | None  # time.monotonic() when the action fired (None: never)
    leftovers: list[str] = field(default_factory=list)  # processes of the run still alive after

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def killpg(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 of the run's process group (the run leads it: start_new_session)."""
    os.killpg(proc.pid, signal.SIGKILL)


def while_paused(do: Callable[[], None]) -> Callable[[subprocess.Popen[bytes]], None]:
    """An action that stops the run's processes, does `do` (kill a service), and lets them go
    on: the run next touches the service only once it is dead, whatever the machine's load."""

    def action(proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            do()
        finally:
            os.killpg(proc.pid, signal.SIGCONT)

    return action


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def run_cli(
    env: dict[str, str],
    cwd: Path,
    *,
    on: str | None = None,
    delay: float = 0.0,
    when: Callable[[], bool] | None = None,
    action: Callable[[subprocess.Popen[bytes]], None] = killpg,
    sources: str = SAMPLES,
    timeout: float = 900,
) -> RunResult:
    """`corpusflow run` in a process group of its own; once a stderr line matches `on`, after
    `delay` seconds and once `when()` is true (polled: a service's state, e.g. the first object
    of a release), `action(proc)` (default: kill -9 of the group). Output goes to files: a
    process that outlived the run would hold a pipe open. Afterwards every process the run
    started that is still alive is listed in `leftovers`, then killed."""
    cwd.mkdir(parents=True, exist_ok=True)
    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    began = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [*CLI, sources], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True,
        )  # fmt: skip
    root = psutil.Process(proc.pid)
    seen: dict[int, psutil.Process] = {}
    peak = 0.0
    fired_at: float | None = None
    matched_at: float | None = None
    pattern = re.compile(on) if on else None
    offset = 0
    pending = b""
    while proc.poll() is None:
        if time.monotonic() - began > timeout:
            killpg(proc)
            break
        rss = 0
        for p in _tree(root):
            seen.setdefault(p.pid, p)
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                pass
        peak = max(peak, rss / 2**20)
        if pattern is not None and matched_at is None:
            with err_path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if any(pattern.search(line.decode("utf-8", "replace")) for line in lines):
                matched_at = time.monotonic()
        due = matched_at is not None and time.monotonic() >= matched_at + delay
        if due and fired_at is None and (when is None or when()):
            fired_at = time.monotonic()
            action(proc)
            continue
        time.sleep(0.02 if pattern is not None and fired_at is None else 0.2)
    code = proc.wait()
    seconds = time.monotonic() - began
    leftovers = []
    for p in seen.values():
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                leftovers.append(" ".join(p.cmdline())[:200])
                p.kill()
        except psutil.Error:
            pass
    return RunResult(
        code=code,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        seconds=seconds,
        peak_rss_mb=peak,
        fired_at=fired_at,
        leftovers=leftovers,
    )


# ---------------------------------------------------------------- what the store and LS hold


@dataclass
class Outcome:
    tasks: Counter[str]  # Label Studio tasks per doc_id
    released: list[str]  # doc_ids of `latest`, as the reader pulled and verified it
    version: str | None
    content_hash: str | None
    data_files: dict[str, str]  # release file -> sha256, the files that do not name the store
    fates: Counter[str]  # the ledger's status per input
    verify_error: str | None  # why `latest` did not pull and verify (None: it did)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.tasks.values())

    def lost(self, expected: set[str]) -> set[str]:
        """Documents of a clean run missing from Label Studio or from the release."""
        return (expected - set(self.tasks)) | (expected - set(self.released))

    def same_release(self, clean: Outcome) -> bool:
        return (
            self.content_hash is not None
            and self.content_hash == clean.content_hash
            and self.data_files == clean.data_files
        )


def inspect(stack: Stack, name: str, dest: Path) -> Outcome:
    """What a scenario left: its Label Studio project's tasks, its store's ledger, and `latest`
    pulled by the reader identity (every checksum verified by corpus.pull)."""
    from corpus.ledger import read_ledger
    from corpus.pull import pull
    from corpus.release import read_latest
    from corpus.store import StoreError
    from review.client import LabelStudioClient

    client = LabelStudioClient(stack.ls.url, stack.ls.token)
    found = client.projects(title=name)
    tasks: Counter[str] = Counter()
    if found:
        for t in client.tasks(int(found[0]["id"]), fields=["id", "data"]):
            tasks[str(t["data"]["doc_id"])] += 1
    store = stack.store(name)
    fates: Counter[str] = Counter(e.status for e in read_ledger(store).values())
    latest, _ = read_latest(store)
    released: list[str] = []
    files: dict[str, str] = {}
    error = None
    if latest is None:
        error = "no latest.json"
    else:
        try:
            folder = pull(stack.store(name, reader=True), "latest", dest=dest)
        except StoreError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
                released = [json.loads(line)["doc_id"] for line in lines if line.strip()]
            manifest = json.loads((folder / "manifest.json").read_text())
            files = {
                f"{f['path']}#{i}": f["sha256"]
                for i, f in enumerate(manifest["files"])
                if f["path"] not in NAMING_FILES
            }
    return Outcome(
        tasks=tasks,
        released=sorted(released),
        version=latest["version"] if latest else None,
        content_hash=latest["content_hash"] if latest else None,
        data_files=files,
        fates=fates,
        verify_error=error,
    )


def verify_latest(stack: Stack, name: str, dest: Path) -> str | None:
    """Why `latest` does not pull and verify as the reader, or None when it does (or when
    nothing was published yet: what must never be is a `latest` naming a missing or wrong
    object)."""
    from corpus.pull import pull
    from corpus.release import read_latest
    from corpus.store import StoreError

    if read_latest(stack.store(name))[0] is None:
        return None
    try:
        pull(stack.store(name, reader=True), "latest", dest=dest)
    except StoreError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def release_began(stack: Stack, name: str) -> Callable[[], bool]:
    """A trigger: true once the store holds an object under releases/ it did not hold when the
    trigger was made (a publish has begun writing)."""
    store = stack.store(name)
    before = set(store.list("releases/"))
    return lambda: any(key not in before for key in store.list("releases/"))


def project_made(stack: Stack, name: str) -> Callable[[], bool]:
    """A trigger: true once Label Studio has the project `name` (the push has begun)."""
    from review.client import LabelStudioClient

    client = LabelStudioClient(stack.ls.url, stack.ls.token)
    return lambda: bool(client.projects(title=name))


def failure_report(stack: Stack, name: str, run: RunResult) -> dict[str, Any] | None:
    """The run report a failed run's last line names (in the store, or a local file), with
    `report_at`: where it was."""
    found = re.search(r"run report (\S+)$", run.last_line)
    if not found:
        return None
    where = found[1]
    prefix = f"s3://{stack.bucket}/{name}/"
    if where.startswith(prefix):
        report = dict(stack.store(name).get_json(where.removeprefix(prefix)))
    else:
        report = dict(json.loads(Path(where).read_text()))
    return {**report, "report_at": where}


# ---------------------------------------------------------------- the faults


@dataclass
class Row:
    fault: str
    outcome: str
    duplicates: int
    lost: int
    verified: bool
    same_release: bool
    recover_s: float
    peak_mb: float


@dataclass
class KillFault:
    point: KillPoint
    killed: RunResult
    verify_after_kill: str | None
    lease_left: bool  # the killed run's lease was still in the store after the kill
    rerun: RunResult
    recover_s: float  # the kill -> the re-run's exit (its wait for the dead run's lease included)
    got: Outcome

    def row(self, clean: Outcome) -> Row:
        fired = "" if self.killed.fired_at else " (ended first)"
        left = f", {len(self.killed.leftovers)} processes left" if self.killed.leftovers else ""
        return Row(
            fault=f"kill -9 run at {self.point.stage} +{self.point.delay:.2f}s{fired}",
            outcome=f"killed{left}; rerun {outcome_of(self.rerun)}",
            duplicates=self.got.duplicates,
            lost=len(self.got.lost(set(clean.released))),
            verified=self.verify_after_kill is None and self.got.verify_error is None,
            same_release=self.got.same_release(clean),
            recover_s=self.recover_s,
            peak_mb=max(self.killed.peak_rss_mb, self.rerun.peak_rss_mb),
        )


def fault_kill_run(stack: Stack, work: Path, name: str, point: KillPoint) -> KillFault:
    """kill -9 of the run's process group at `point`, then a re-run to completion."""
    from corpus.lease import LEASE_KEY

    env = stack.env(name, work)
    killed = run_cli(env, work / "killed", on=point.pattern, delay=point.delay)
    began = killed.fired_at or time.monotonic()
    lease_left = stack.store(name).exists(LEASE_KEY)
    verified = verify_latest(stack, name, work / "pulled-after-kill")
    rerun = run_cli({**env, "CORPUSFLOW_LEASE_WAIT": LEASE_WAIT}, work / "rerun")
    recover = time.monotonic() - began
    got = inspect(stack, name, work / "pulled")
    return KillFault(point, killed, verified, lease_left, rerun, recover, got)


@dataclass
class ServiceFault:
    which: str  # "ls" or "s3"
    what: str  # where it was killed, for the table
    failed: RunResult
    report: dict[str, Any] | None  # the failed run's report
    verify_during: str | None  # `latest` while the service was down (Label Studio only)
    restart_s: float  # the service's restart, on the same data folder
    verify_after_restart: str | None
    rerun: RunResult
    recover_s: float  # the restart began -> the re-run's exit
    got: Outcome

    def row(self, clean: Outcome) -> Row:
        label = "Label Studio" if self.which == "ls" else "SeaweedFS"
        return Row(
            fault=f"{label} kill -9 {self.what} (back in {self.restart_s:.1f}s)",
            outcome=f"{outcome_of(self.failed)}; rerun {outcome_of(self.rerun)}",
            duplicates=self.got.duplicates,
            lost=len(self.got.lost(set(clean.released))),
            verified=all(
                v is None
                for v in (self.verify_during, self.verify_after_restart, self.got.verify_error)
            ),
            same_release=self.got.same_release(clean),
            recover_s=self.recover_s,
            peak_mb=max(self.failed.peak_rss_mb, self.rerun.peak_rss_mb),
        )


def fault_service(
    stack: Stack,
    work: Path,
    name: str,
    which: str,
    point: KillPoint,
    *,
    mid: bool = False,
) -> ServiceFault:
    """Kill Label Studio (`ls`) or SeaweedFS (`s3`) with SIGKILL at `point` of a run (the run
    held still meanwhile), or with `mid`, once after it the push or the publish has begun
    (the project exists, the release's first object is written); the run fails after its
    retries; restart the service on the same data folder and run again."""
    service = stack.ls if which == "ls" else stack.s3
    env = stack.env(name, work)
    when = None
    if mid:
        when = project_made(stack, name) if which == "ls" else release_began(stack, name)
    failed = run_cli(
        env,
        work / "failed",
        on=point.pattern,
        delay=point.delay,
        when=when,
        action=while_paused(service.kill),
    )
    began = time.monotonic()
    during = verify_latest(stack, name, work / "pulled-during") if which == "ls" else None
    service.start(timeout=480)
    restarted = time.monotonic() - began
    after = verify_latest(stack, name, work / "pulled-after-restart")
    report = failure_report(stack, name, failed)
    rerun = run_cli({**env, "CORPUSFLOW_LEASE_WAIT": LEASE_WAIT}, work / "rerun")
    recover = time.monotonic() - began
    what = f"{'during' if mid else 'before'} {'push' if which == 'ls' else 'publish'}"
    return ServiceFault(
        which, what, failed, report, during, restarted, after, rerun, recover,
        inspect(stack, name, work / "pulled"),
    )  # fmt: skip


def outcome_of(run: RunResult) -> str:
    if run.code == 0:
        return "exit 0"
    if run.code == -signal.SIGKILL:
        return "killed"
    down = re.search(r"run: (.+?) is down .* at stage '(\w+)'", run.last_line)
    if down:
        return f"exit {run.code} ({down[1]} down at {down[2]})"
    return f"exit {run.code}: {run.last_line[:50]}"


def _print_table(rows: list[Row]) -> None:
    head = ("fault", "outcome", "dup", "lost", "latest ok", "= clean", "recover s", "peak MB")
    table = [
        (
            r.fault,
            r.outcome,
            str(r.duplicates),
            str(r.lost),
            "yes" if r.verified else "NO",
            "yes" if r.same_release else "NO",
            f"{r.recover_s:.1f}",
            f"{r.peak_mb:.0f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)) + " |")


@contextmanager
def local_stack(base: Path) -> Iterator[Stack]:
    """Label Studio, SeaweedFS and a Prefect server on free ports under `base`, stopped after."""
    from services.labelstudio import LabelStudioService
    from services.prefect_server import PrefectServer
    from services.seaweedfs import SeaweedService, free_port

    s3 = SeaweedService.on_free_ports(base / "seaweedfs", release_roots=(f"{BUCKET}/*",))
    ls = LabelStudioService(data_dir=base / "labelstudio", port=free_port())
    prefect = PrefectServer(home=base / "prefect", port=free_port())
    try:
        prefect.start(wait=False)
        s3.start()
        s3.ensure_bucket(BUCKET)
        ls.start(timeout=480)
        prefect.wait_ready(300)
        yield Stack(ls, s3, prefect.api_url)
    finally:
        ls.stop()
        s3.stop()
        prefect.stop_all()


def crash_restart_seconds(service: Any) -> float:
    """kill -9 of an idle service, then the time until it answers again."""
    service.kill()
    began = time.monotonic()
    service.start(timeout=480)
    return time.monotonic() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--seeds", type=int, nargs="*", default=None, help="draw kill points from these seeds "
        "(default: every stage boundary once, with a delay drawn from seed 0)",
    )  # fmt: skip
    parser.add_argument("--workers", default="1", help="CORPUSFLOW_WORKERS of the runs")
    args = parser.parse_args(argv)
    os.environ["CORPUSFLOW_WORKERS"] = args.workers
    if args.seeds:
        points = [kill_point(s) for s in args.seeds]
    else:
        rng = random.Random(0)
        points = [KillPoint(s, p, round(rng.uniform(0, 1), 2)) for s, p in BOUNDARIES]
    boundary = dict(BOUNDARIES)
    with tempfile.TemporaryDirectory(prefix="corpusflow-faults-") as tmp:
        work = Path(tmp)
        with local_stack(work / "services") as stack:
            began = time.monotonic()
            clean_run = run_cli(stack.env("clean", work / "clean"), work / "clean")
            if clean_run.code != 0:
                print(clean_run.stderr[-3000:], file=sys.stderr)
                return 1
            clean = inspect(stack, "clean", work / "clean" / "pulled")
            rows = [
                Row("none (clean run)", "exit 0", clean.duplicates, 0, clean.verify_error is None,
                    True, clean_run.seconds, clean_run.peak_rss_mb)
            ]  # fmt: skip
            for i, point in enumerate(points):
                rows.append(fault_kill_run(stack, work / f"k{i}", f"kill{i}", point).row(clean))
                print(rows[-1], flush=True)
            # (service, the boundary, killed once the push or publish has begun)
            services = (
                ("ls", "ingest", False),
                ("ls", "push", True),
                ("s3", "publish", False),
                ("s3", "publish", True),
            )
            for i, (which, stage, mid) in enumerate(services):
                point = KillPoint(stage, boundary[stage], 0.0)
                fault = fault_service(stack, work / f"s{i}", f"svc{i}", which, point, mid=mid)
                rows.append(fault.row(clean))
                print(rows[-1], flush=True)
            idle = {
                "SeaweedFS": crash_restart_seconds(stack.s3),
                "Label Studio": crash_restart_seconds(stack.ls),
            }
            print()
            _print_table(rows)
            print(
                f"\n{len(rows)} rows in {time.monotonic() - began:.0f} s, CORPUSFLOW_WORKERS="
                f"{args.workers}. 'recover s': the kill (of the run) or the restart (of a service)"
                f" -> the re-run's exit (a dead run's lease on this host is free at once; "
                f"TTL {LEASE_TTL} s otherwise). Idle kill -9 -> answering again: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in idle.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
