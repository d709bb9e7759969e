"""Hostile inputs: builds a bad-input corpus and prints, for each entry, its fate and reason, the
time to that fate and the peak memory of the process that decided it; then the per-input
overhead of the guarded parse (worker process) against the unguarded one (in process).

    .venv/bin/python -m bench.hostile                  # the table and the overhead figures
    .venv/bin/python -m bench.hostile --bomb-mb 1024 --oversize-mb 2048
    .venv/bin/python -m bench.hostile --overhead-only --n 200

`build_corpus` is also what tests/test_hostile_inputs.py runs through `corpusflow run`."""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "corpus" / "samples"
WORD_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
ARTICLE = (
    "Leaders met in Brussels on Tuesday to agree on a plan for the summit. "
    "The minister said the accord was a step forward, while critics called it weak."
)


# ---------------------------------------------------------------- builders


def docx_bytes(paragraphs: list[str]) -> bytes:
    from docx import Document

    doc = Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def write_bomb_docx(path: Path, expanded_bytes: int) -> None:
    """A valid docx whose word/document.xml inflates to about `expanded_bytes` (one paragraph
    of repeated text, deflated as it is written: neither side is ever held in memory)."""
    template = zipfile.ZipFile(io.BytesIO(docx_bytes(["x"])))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for item in template.infolist():
            if item.filename != "word/document.xml":
                out.writestr(item, template.read(item))
        with out.open("word/document.xml", "w", force_zip64=True) as xml:
            xml.write(f'<w:document xmlns:w="{WORD_NS}"><w:body><w:p><w:r><w:t>'.encode())
            chunk = b"A" * (1 << 20)
            for _ in range(max(1, expanded_bytes >> 20)):
                xml.write(chunk)
            xml.write(b"</w:t></w:r></w:p></w:body></w:document>")


def write_members_docx(path: Path, members: int) -> None:
    """A docx with `members` tiny extra zip members (a member-count bomb)."""
    data = docx_bytes([ARTICLE])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        template = zipfile.ZipFile(io.BytesIO(data))
        for item in template.infolist():
            out.writestr(item, template.read(item))
        for i in range(members):
            out.writestr(f"extra/item{i}.xml", b"<a/>")


def deep_html(depth: int) -> bytes:
    return (
        "<html><head><title>Deep</title></head><body>"
        + "<div>" * depth
        + f"<p>{ARTICLE}</p>" * 3
        + "</div>" * depth
        + "</body></html>"
    ).encode()


def pdf_bytes(pages: int, password: str | None = None) -> bytes:
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    words = ARTICLE.split()
    for i in range(pages):
        # every page different: lines repeated across pages are removed as running headers
        for line in range(4):
            shift = (i * 4 + line) % len(words)
            c.drawString(72, 720 - 20 * line, " ".join(words[shift:] + words[:shift]))
        c.showPage()
    c.save()
    if password is None:
        return buf.getvalue()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buf.getvalue())))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# name -> what the entry is; the expected fate is what tests assert
HOSTILE: dict[str, str] = {
    "bomb.docx": "docx whose document.xml inflates to the bomb size",
    "members.docx": "docx with 3,000 zip members",
    "many-paragraphs.docx": "25 KB-class docx with 10,000 paragraphs",
    "deep-300.html": "HTML nested 300 levels (within the limit: parsed)",
    "deep-5000.html": "HTML nested 5,000 levels",
    "encrypted.pdf": "PDF encrypted with a user password (AES-128)",
    "pages.pdf": "PDF with more pages than the limit set by the test",
    "oversize.txt": "sparse file over the size limit",
    "invalid-utf8.txt": "text with invalid UTF-8 sequences",
    "evil\n  quarantined  fake-line.txt": "empty file whose name holds a newline",
    "bad-name-\udcff.txt": "file name that is not UTF-8",
    "loop": "symlink to itself",
    "loop-a": "symlink loop a -> b -> a",
    "loop-b": "symlink loop b -> a -> b",
    "dangling.txt": "symlink to a missing file",
    "outside.txt": "symlink to a file outside the source root",
    "inside-link.txt": "symlink to a file inside the root (read)",
    "linked-folder": "symlink to a folder inside the root",
    ".hidden.txt": "hidden file",
    ".hidden-folder": "hidden folder",
    "fifo.txt": "named pipe",
    "socket.txt": "unix socket",
    "good.docx": "an ordinary docx",
}


def build_corpus(
    root: Path, *, bomb_bytes: int = 1 << 30, oversize_bytes: int = 2 << 30, pages: int = 12
) -> dict[str, str]:
    """The bad-input corpus in `root` (created), next to a copy of the sample articles; returns
    HOSTILE. The oversize file is sparse: it costs no disk until it is copied."""
    root.mkdir(parents=True, exist_ok=True)
    for sample in sorted(SAMPLES.iterdir()):
        (root / sample.name).write_bytes(sample.read_bytes())
    write_bomb_docx(root / "bomb.docx", bomb_bytes)
    write_members_docx(root / "members.docx", 3_000)
    words = ARTICLE.split()
    many = [f"{i} {words[i % len(words)]}" for i in range(10_000)]
    (root / "many-paragraphs.docx").write_bytes(docx_bytes(many))
    (root / "good.docx").write_bytes(docx_bytes([ARTICLE, ARTICLE.upper()]))
    (root / "deep-300.html").write_bytes(deep_html(300))
    (root / "deep-5000.html").write_bytes(deep_html(5_000))
    (root / "encrypted.pdf").write_bytes(pdf_bytes(1, password="secret"))
    (root / "pages.pdf").write_bytes(pdf_bytes(pages))
    with open(root / "oversize.txt", "wb") as f:
        f.write(ARTICLE.encode())
        f.truncate(oversize_bytes)
    (root / "invalid-utf8.txt").write_bytes(
        ARTICLE.encode() + b"\n\nBroken \xc3\x28 bytes \xff\xfe and \xe2\x82 here. " * 20
    )
    (root / "evil\n  quarantined  fake-line.txt").write_bytes(b"")
    (root / os.fsdecode(b"bad-name-\xff.txt")).write_text(ARTICLE)
    os.symlink("loop", root / "loop")
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    os.symlink("missing.txt", root / "dangling.txt")
    outside = root.parent / f"{root.name}-outside.txt"
    outside.write_text("a secret outside the source root\n")
    os.symlink(outside, root / "outside.txt")
    os.symlink(sorted(SAMPLES.iterdir())[0].name, root / "inside-link.txt")
    (root / "folder").mkdir()
    (root / "folder" / "nested.txt").write_text(ARTICLE + "\n")
    os.symlink("folder", root / "linked-folder")
    (root / ".hidden.txt").write_text(ARTICLE)
    (root / ".hidden-folder").mkdir()
    (root / ".hidden-folder" / "inside.txt").write_text(ARTICLE)
    os.mkfifo(root / "fifo.txt")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "socket.txt"))
    sock.close()
    return HOSTILE


# ---------------------------------------------------------------- one entry, in its own process

_ONE = r"""
import json, sys, time
from pathlib import Path
from ingest.errors import IngestError
from ingest.guard import clean_guarded
from ingest.limits import Limits
from ingest.sources import read_local, walk
root, key, limits = Path(sys.argv[1]), sys.argv[2], Limits(**json.loads(sys.argv[3]))
clean_guarded(b"warm up", source="w.txt", filename="w.txt", limits=limits)  # worker started
t0 = time.perf_counter()
ref = next(r for r in walk(root) if r.key == key)
if ref.skip:
    fate = ("skipped", ref.skip)
else:
    try:
        data = read_local(ref.location, limits, ref.key)
        doc = clean_guarded(data, source=ref.key, filename=ref.key, limits=limits)
        fate = ("processed", f"{len(doc.text)} characters")
    except IngestError as exc:
        fate = ("quarantined", f"{exc.kind}: {exc.message}")
    except OSError as exc:
        fate = ("skipped", f"unreadable: {exc.strerror or exc}")
print(json.dumps({"fate": fate, "seconds": time.perf_counter() - t0}))
"""


def fate_in_child(root: Path, key: str, limits: dict[str, float]) -> dict[str, object]:
    """The fate of one entry decided in a fresh process: its time (from discovery; the parse
    worker already started, the parser's own imports included) and the peak RSS of that
    process and its parse worker (wait4)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _ONE, str(root), key, json.dumps(limits)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = json.loads(out) if out.strip() else {"fate": ["crashed", f"exit {status}"]}
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def whole_run(root: Path, base: Path) -> str:
    """`corpusflow run` (embedded) over the corpus: seconds, peak RSS (wait4), counts."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(base / "prefect"),
        "CORPUSFLOW_WORK_DIR": str(base / "work"),
        "CORPUSFLOW_MAX_PDF_PAGES": "10",
    }
    store = base / "store"
    t0 = time.perf_counter()
    with open(base / "run.out", "wb") as out, open(base / "run.err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "run", "--json", "--sources", str(root)]
            + ["--store", f"file://{store}"],
            cwd=base,
            env=env,
            stdout=out,
            stderr=err,
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    report = json.loads((base / "run.out").read_text().strip().splitlines()[-1])
    ing = report["ingest"]
    return (
        f"corpusflow run: exit {os.waitstatus_to_exitcode(status)}, {seconds:.0f} s, "
        f"peak RSS {usage.ru_maxrss / 1024:.0f} MB; {report['inputs']} inputs: "
        f"{ing['cleaned']} cleaned, {len(ing['skipped'])} skipped, "
        f"{len(ing['quarantined'])} quarantined"
    )


# ---------------------------------------------------------------- overhead


def overhead(docs: list[tuple[str, bytes]], repeat: int = 1) -> tuple[float, float, float]:
    """(unguarded ms/input, guarded ms/input, worker start s): the same inputs cleaned in
    this process and through the parse worker, after one warm-up pass of each."""
    from ingest.guard import clean_guarded, worker
    from ingest.limits import Limits

    guarded, bare = Limits(), Limits(parse_timeout=0)

    def timed(limits: Limits) -> float:
        t0 = time.perf_counter()
        for _ in range(repeat):
            for name, data in docs:
                clean_guarded(data, source=name, filename=name, limits=limits)
        return (time.perf_counter() - t0) * 1000 / (len(docs) * repeat)

    worker().stop()
    t0 = time.perf_counter()
    clean_guarded(docs[0][1], source=docs[0][0], filename=docs[0][0], limits=guarded)
    start = time.perf_counter() - t0
    timed(bare)  # warm-up: imports, caches
    return timed(bare), timed(guarded), start


def generated_docs(n: int, seed: int = 11) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    texts = [p.read_text() for p in sorted(SAMPLES.iterdir())]
    out = []
    for i in range(n):
        paras = [p for p in rng.choice(texts).split("\n\n") if p.strip()]
        rng.shuffle(paras)
        out.append((f"gen-{i:03d}.txt", "\n\n".join(paras[: rng.randint(3, 12)]).encode()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bomb-mb", type=int, default=1024)
    parser.add_argument("--oversize-mb", type=int, default=2048)
    parser.add_argument("--n", type=int, default=200, help="generated documents for overhead")
    parser.add_argument("--overhead-only", action="store_true")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--run", action="store_true", help="also time `corpusflow run` on it")
    args = parser.parse_args(argv)
    # limits as in tests: defaults, except a small page limit and size limit to show them
    limits: dict[str, float] = {"max_pdf_pages": 10}

    if not args.overhead_only:
        import tempfile

        base = args.dir or Path(tempfile.mkdtemp(prefix="hostile-"))
        root = base / "sources"
        t0 = time.perf_counter()
        build_corpus(root, bomb_bytes=args.bomb_mb << 20, oversize_bytes=args.oversize_mb << 20)
        print(f"corpus built in {root} in {time.perf_counter() - t0:.1f} s")
        print(
            f"bomb.docx {os.path.getsize(root / 'bomb.docx') / 1e6:.1f} MB inflating to "
            f"{args.bomb_mb} MB; oversize.txt {args.oversize_mb} MB sparse"
        )
        from ingest.sources import printable, walk

        print("\n| entry | fate | reason | time to fate | peak RSS |\n|---|---|---|---|---|")
        for ref in walk(root):
            r = fate_in_child(root, ref.key, limits)
            fate, reason = (str(x) for x in r["fate"])  # type: ignore[attr-defined]
            seconds = r.get("seconds")
            took = f"{seconds:.2f} s" if isinstance(seconds, float) else "-"
            reason = printable(str(reason)).replace("|", "\\|").replace(str(root), "<root>")
            print(
                f"| `{printable(ref.key)}` | {fate} | {reason} | "
                f"{took} | {r['peak_rss_mb']:.0f} MB |"
            )

        if args.run:
            print("\n" + whole_run(root, base))

    samples = [(p.name, p.read_bytes()) for p in sorted(SAMPLES.iterdir())]
    rows: list[tuple[str, Callable[[], tuple[float, float, float]]]] = [
        ("5 samples x 20", lambda: overhead(samples, repeat=20)),
        (f"{args.n} generated", lambda: overhead(generated_docs(args.n))),
    ]
    print(
        "\n| inputs | in process ms/input | guarded ms/input | overhead ms/input | worker start |"
    )
    print("|---|---|---|---|---|")
    for label, run in rows:
        bare, guarded, start = run()
        print(f"| {label} | {bare:.2f} | {guarded:.2f} | {guarded - bare:+.2f} | {start:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
