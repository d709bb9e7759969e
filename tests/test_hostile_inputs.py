"""A bad-input corpus generated here (bench/hostile.py builds it) where every entry of the source
folder gets a fate with its reason: skipped at discovery, quarantined by a named limit, or
processed; `corpusflow run` goes through all of it at bounded memory."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from bench.hostile import SAMPLES, build_corpus
from corpus.ledger import read_ledger
from corpus.store import open_store
from ingest.limits import Limits
from ingest.sources import open_regular, printable, read_local, walk

OVERSIZE = 64 << 20  # sparse; over the default 20 MB limit
BOMB = 1 << 30  # document.xml inflates to 1 GB, as in the issue
NEWLINE_NAME = "evil\n  quarantined  fake-line.txt"


class RssSampler(threading.Thread):
    """The peak RSS of each process role under a run, sampled every 0.1 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.done = threading.Event()
        self.peaks: dict[str, float] = {}

    @staticmethod
    def role(cmdline: list[str]) -> str:
        line = " ".join(cmdline)
        if "ingest.guard" in line:
            return "parse worker"
        if "flows.cli" in line:
            return "run"
        if "spawn_main" in line:
            return "dask worker"
        return "other"

    def run(self) -> None:
        while not self.done.wait(0.1):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for p in procs:
                try:
                    role, mb = self.role(p.cmdline()), p.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.peaks[role] = max(self.peaks.get(role, 0.0), mb)


# entry -> (fate, a piece of its reason); None: whatever the decoder decides (issue 13)
EXPECTED: dict[str, tuple[str, str] | None] = {
    **{p.name: ("processed", "") for p in SAMPLES.iterdir()},
    "folder/nested.txt": ("processed", ""),
    "inside-link.txt": ("processed", ""),
    "good.docx": ("processed", ""),
    "deep-300.html": ("processed", ""),
    "bomb.docx": ("quarantined", "(max_unzipped_bytes, CORPUSFLOW_MAX_UNZIPPED_BYTES)"),
    "members.docx": ("quarantined", "(max_zip_members, CORPUSFLOW_MAX_ZIP_MEMBERS)"),
    "many-paragraphs.docx": (
        "quarantined",
        "has 10000 paragraphs, over the limit of 5000 (max_docx_paragraphs, "
        "CORPUSFLOW_MAX_DOCX_PARAGRAPHS)",
    ),
    "deep-5000.html": ("quarantined", "(max_html_depth, CORPUSFLOW_MAX_HTML_DEPTH)"),
    "encrypted.pdf": ("quarantined", "encrypted PDF that needs a password"),
    "pages.pdf": ("quarantined", "has 12 pages, over the limit of 10 (max_pdf_pages"),
    "oversize.txt": ("quarantined", f"is {OVERSIZE} bytes, over the limit of 20000000"),
    "invalid-utf8.txt": None,
    NEWLINE_NAME: ("quarantined", "is empty"),
    "bad-name-\\xff.txt": ("skipped", "file name is not valid UTF-8"),
    "loop": ("skipped", "symlink loop (-> loop)"),
    "loop-a": ("skipped", "symlink loop"),
    "loop-b": ("skipped", "symlink loop"),
    "dangling.txt": ("skipped", "dangling symlink (-> missing.txt"),
    "outside.txt": ("skipped", "symlink to outside the source root"),
    "linked-folder": ("skipped", "symlink to a folder"),
    ".hidden.txt": ("skipped", "hidden file"),
    ".hidden-folder": ("skipped", "hidden folder"),
    "fifo.txt": ("skipped", "not a regular file: a fifo"),
    "socket.txt": ("skipped", "not a regular file: a socket"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "sources"
    build_corpus(root, bomb_bytes=BOMB, oversize_bytes=OVERSIZE, pages=12)
    return root


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("report.txt", "report.txt"),
        ("café/Zürich – 東京.md", "café/Zürich – 東京.md"),  # printable text is unchanged
        ("a\nb.txt", "a\\nb.txt"),
        ("a\r\n\tb", "a\\r\\n\\tb"),
        ("\x1b[2Jclear.txt", "\\x1b[2Jclear.txt"),  # a terminal escape
        ("abc\u202etxt.exe", "abc\\u202etxt.exe"),  # right-to-left override
        ("line\u2028sep", "line\\u2028sep"),
        (os.fsdecode(b"bad-\xff.txt"), "bad-\\xff.txt"),  # a byte of a non-UTF-8 name
    ],
)
def test_sources_printable_escapes_what_could_forge_a_line(name: str, shown: str) -> None:
    assert printable(name) == shown
    assert "\n" not in printable(name) and printable(name).isprintable()


def test_sources_walk_gives_every_entry_a_fate(corpus: Path) -> None:
    refs = walk(corpus)
    assert sorted(r.key for r in refs) == sorted(EXPECTED)
    assert [r.key for r in refs] == sorted(r.key for r in refs)  # stable batches
    for ref in refs:
        expected = EXPECTED[ref.key]
        if expected is not None and expected[0] == "skipped":
            assert ref.skip is not None and expected[1] in ref.skip, (ref.key, ref.skip)
        else:
            assert ref.skip is None, (ref.key, ref.skip)


class _Scandir:
    """os.scandir as it is, except that listing `bad` fails: at once ("open") or after its
    first entry ("midway", a folder that stops being readable while it is listed)."""

    def __init__(self, bad: str, when: str) -> None:
        self.real, self.bad, self.when = os.scandir, bad, when

    def __call__(self, path: str) -> object:
        if os.path.basename(path) == self.bad and self.when == "open":
            raise PermissionError(13, "Permission denied", path)
        it = self.real(path)
        if os.path.basename(path) != self.bad:
            return it
        return _FailingAfterOne(it)


class _FailingAfterOne:
    def __init__(self, it: object) -> None:
        self.it, self.n = it, 0

    def __enter__(self) -> _FailingAfterOne:
        return self

    def __exit__(self, *exc: object) -> None:
        self.it.close()  # type: ignore[attr-defined]

    def __iter__(self) -> _FailingAfterOne:
        return self

    def __next__(self) -> object:
        self.n += 1
        if self.n > 1:
            raise OSError(5, "Input/output error")
        return next(self.it)  # type: ignore[call-overload]


@pytest.mark.parametrize(("when", "reason"), [("open", "Permission denied"),
                                               ("midway", "Input/output error")])  # fmt: skip
def test_sources_walk_records_a_folder_it_cannot_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str, reason: str
) -> None:
    """A folder that cannot be listed (or fails part way) is one skipped entry with the
    reason; the folders beside it are walked as usual."""
    for folder in ("bad", "good"):
        (tmp_path / folder).mkdir()
        for name in ("x.txt", "y.txt"):
            (tmp_path / folder / name).write_text(name)
    monkeypatch.setattr(os, "scandir", _Scandir("bad", when))
    refs = {r.key: r for r in walk(tmp_path)}
    assert refs["bad"].skip == f"unreadable folder: {reason}"
    assert refs["good/x.txt"].skip is refs["good/y.txt"].skip is None
    listed = [k for k in refs if k.startswith("bad/")]
    assert len(listed) == (0 if when == "open" else 1)  # what it listed before failing stays


def test_sources_walk_holds_one_folder_entry_at_a_time(tmp_path: Path) -> None:
    """Discovery holds a SourceRef per input, not also every DirEntry (name, path, stat) of a
    folder: measured, 1,105 B a file at its peak when the folder was listed whole, 319 B one
    entry at a time, over 50,000 files (2026-12-03)."""
    import tracemalloc

    for i in range(3000):
        (tmp_path / f"a{i:07d}.txt").write_text("x")
    tracemalloc.start()
    try:
        refs = walk(tmp_path)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(refs) == 3000
    assert peak / len(refs) < 1.5 * held / len(refs) < 700, (peak, held)


def test_sources_read_local_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def read() -> None:
        try:
            read_local(fifo, Limits(), "pipe.txt")
        except OSError as exc:
            done.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "reading a fifo blocked"
    assert "not a regular file: a fifo" in str(done[0])


def test_sources_file_swapped_for_a_symlink_after_discovery_is_not_followed(
    tmp_path: Path,
) -> None:
    root = tmp_path / "sources"
    root.mkdir()
    (root / "a.txt").write_text("fine")
    (tmp_path / "secret.txt").write_text("outside the root")
    [ref] = walk(root)
    assert (ref.key, ref.skip, ref.link) == ("a.txt", None, False)
    (root / "a.txt").unlink()
    (root / "a.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(OSError):
        read_local(ref.location, Limits(), ref.key, follow=ref.link)


def test_sources_read_local_checks_the_size_before_reading(tmp_path: Path) -> None:
    from ingest.errors import IngestError

    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(3 << 30)  # sparse: 3 GB that cost no disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(IngestError) as info:
        read_local(big, Limits(), "big.txt")
    assert info.value.kind == "too_large"
    assert "(max_source_bytes, CORPUSFLOW_MAX_BYTES)" in info.value.message
    grew_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grew_kb < 100 * 1024  # nothing of the 3 GB was read
    fd, size = open_regular(big, "big.txt")
    os.close(fd)
    assert size == 3 << 30


@pytest.mark.model
def test_hostile_inputs_run_embedded_every_entry_has_a_fate(corpus: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "CORPUSFLOW_WORK_DIR": str(tmp_path / "work"),
        "CORPUSFLOW_MAX_PDF_PAGES": "10",
    }
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "run", "--sources", str(corpus)]
            + ["--store", f"file://{store_dir}"],
            cwd=tmp_path,
            env=env,
            stdout=fo,
            stderr=fe,
        )
        watchdog = threading.Timer(1800, proc.kill)  # a hang fails the test, it never blocks it
        watchdog.start()
        sampler = RssSampler(proc.pid)
        sampler.start()
        t0 = time.monotonic()
        _pid, wait_status, usage = os.wait4(proc.pid, 0)
        sampler.done.set()
        watchdog.cancel()
        sampler.join()
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    stdout = out.read_text()
    assert proc.returncode == 0, err.read_text()[-3000:]

    # peak memory of the run's processes (wait4: the largest of them, exact; the sampler: each
    # role's, every 0.1 s), with a 1 GB docx bomb and a 64 MB file in the corpus. Measured here:
    # the run ~390 MB, a Dask worker with both models ~510 MB, the parse worker ~290 MB.
    peak_mb = usage.ru_maxrss / 1024
    roles = ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(sampler.peaks.items()))
    print(f"hostile run: {seconds:.0f} s, peak RSS {peak_mb:.0f} MB ({roles})")
    # the bomb held whole (1 GB of XML) in the parse worker, or the 64 MB file read whole a few
    # times over, would pass these; so would the 2.3-3 GB of the issue
    assert sampler.peaks.get("parse worker", 0) < 768, roles
    assert peak_mb < 1536, roles

    store = open_store(f"file://{store_dir}")
    report = json.loads(store.get_bytes(next(iter(store.list("runs/")))))
    assert report["inputs"] == len(EXPECTED)
    ing = report["ingest"]
    assert ing["cleaned"] + len(ing["skipped"]) + len(ing["quarantined"]) == len(EXPECTED)

    ledger = read_ledger(store)
    assert sorted(ledger) == sorted(EXPECTED)  # nothing vanished from the count
    for source, expected in EXPECTED.items():
        entry = ledger[source]
        if expected is None:
            assert entry.status == "processed" or entry.reason, entry
            continue
        status, reason = expected
        assert entry.status == status, (source, entry)
        if status != "processed":
            assert entry.reason and reason in entry.reason, (source, entry.reason)

    # the oversize file was streamed into quarantine in parts, never held whole
    base = next(k.rsplit("/", 1)[0] for k in store.list("quarantine/") if "part-" in k)
    meta = store.get_json(f"{base}/reason.json")
    assert (meta["source"], meta["size"], meta["parts"]) == ("oversize.txt", OVERSIZE, 8)
    digest = hashlib.sha256()
    for i in range(meta["parts"]):
        digest.update(store.get_bytes(f"{base}/input.part-{i:05d}"))
    assert digest.hexdigest() == ledger["oversize.txt"].source_sha256
    with open(corpus / "oversize.txt", "rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == digest.hexdigest()

    # names are escaped in the summary: the newline in a name does not forge a line
    assert f"quarantined {printable(NEWLINE_NAME)}: empty:" in stdout
    assert not any(line.startswith("  quarantined  fake-line") for line in stdout.splitlines())
    shown = {x["source"] for x in ing["quarantined"] + ing["skipped"]}
    assert all(s.isprintable() for s in shown)
