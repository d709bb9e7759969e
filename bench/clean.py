"""Ingest throughput and HTML extractor comparison. Prints figures; asserts nothing.

    .venv/bin/python -m bench.clean                  # everything: text, HTML speed, HTML quality
    .venv/bin/python -m bench.clean --n 500          # a quick run
    .venv/bin/python -m bench.clean --quality-only --verbose

Throughput: our `clean_bytes` (decode, block split, all cleaners, metadata, offset map) beside a
bare baseline measured in the same run: unstructured's `partition_text` plus its `clean`
(extra whitespace, dashes, bullets) on every element, with no tracing. Peak memory is measured by
tracemalloc in a separate pass over a subset, so the timed pass is not slowed by tracing.

HTML: the same for .html pages against bare trafilatura and partition_html, and a quality table
(snippet-scored precision/recall/F1, as trafilatura's own evaluation scores) on bench/data/html,
a small set of pages whose licences allow it (bench/data/html/LICENSES)."""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

SAMPLES = Path(__file__).resolve().parents[1] / "corpus" / "samples"
NOISE_LINES = [
    "Advertisement",
    "Read more",
    "Share Facebook Twitter Email",
    "Sign up for our daily newsletter",
    "[ site banner ]",
    "Page {n} of 9",
    "slot-ad-{n:02d}",
    "Tags: Politics, World, Asia",
]


def build_documents(n: int, seed: int = 7) -> list[bytes]:
    """`n` documents: each a sample with its paragraphs lightly shuffled in the body and noise
    lines inserted, so no two are identical and sizes vary."""
    rng = random.Random(seed)
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.glob("*.txt"))]
    docs = []
    for i in range(n):
        paras = texts[i % len(texts)].split("\n\n")
        head, body = paras[:4], paras[4:]
        if len(body) > 4 and rng.random() < 0.5:
            k = rng.randrange(1, len(body) - 2)
            body[k], body[k + 1] = body[k + 1], body[k]
        for _ in range(rng.randrange(0, 4)):
            body.insert(rng.randrange(0, len(body) + 1), rng.choice(NOISE_LINES).format(n=i % 90))
        docs.append(("\n\n".join(head + body) + f"\n\nRef {i}.\n").encode("utf-8"))
    return docs


def run_ours(data: bytes) -> str:
    from ingest import clean_bytes

    return clean_bytes(data, source="bench.txt", filename="bench.txt").text


def run_baseline(data: bytes) -> str:
    from unstructured.cleaners.core import clean
    from unstructured.partition.text import partition_text

    elements = partition_text(text=data.decode("utf-8"))
    return "\n\n".join(
        clean(el.text, extra_whitespace=True, dashes=True, bullets=True) for el in elements
    )


def measure(fn: Callable[[bytes], str], docs: list[bytes]) -> tuple[float, float, float]:
    """(docs/s, MB/s) on the wall clock, and MB/s on this process's CPU time (the machine may be
    shared: CPU time shows the cost of the method itself)."""
    fn(docs[0])  # imports and warm-up outside the clock
    start, cpu = time.perf_counter(), time.process_time()
    for d in docs:
        fn(d)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    size = sum(map(len, docs)) / 1e6
    return len(docs) / elapsed, size / elapsed, size / max(cpu, 1e-9)


def peak_mib(fn: Callable[[bytes], str], docs: list[bytes]) -> float:
    fn(docs[0])
    tracemalloc.start()
    for d in docs:
        fn(d)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _rss_child(fn: Callable[[bytes], str], docs: list[bytes]) -> float:
    for d in docs:
        fn(d)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib(fn: Callable[[bytes], str], docs: list[bytes]) -> float:
    """Max RSS of a fresh process that imports the method and runs it over `docs`: tracemalloc
    sees only Python's heap, not what lxml, pdfminer or spaCy allocate in C."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return float(pool.apply(_rss_child, (fn, docs)))


def throughput(n: int, baseline_n: int) -> None:
    docs = build_documents(n)
    base_docs = docs[: min(baseline_n, n)]
    total_mb = sum(map(len, docs)) / 1e6
    print(
        f"{n} documents, {total_mb:.1f} MB, built from {len(list(SAMPLES.glob('*.txt')))} samples"
    )
    print(
        f"baseline timed on the first {len(base_docs)} of them (it runs spaCy per element, "
        "so the full set would take too long)\n"
    )
    print(
        f"| {'method':<44} | {'docs':>5} | {'docs/s':>8} | {'MB/s':>6} | {'CPU MB/s':>8} "
        f"| {'heap MiB':>8} "
        f"| {'RSS MiB':>7} |"
    )
    print(f"|{'-' * 46}|{'-' * 7}|{'-' * 10}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    subset = docs[: min(100, n)]
    for name, fn, batch in (
        ("corpusflow clean_bytes (traced, + metadata)", run_ours, docs),
        ("unstructured partition_text + clean", run_baseline, base_docs),
    ):
        docs_s, mb_s, cpu_mb_s = measure(fn, batch)
        peak = peak_mib(fn, subset)
        rss = rss_mib(fn, subset)
        print(
            f"| {name:<44} | {len(batch):>5} | {docs_s:>8.1f} | {mb_s:>6.2f} "
            f"| {cpu_mb_s:>8.2f} | {peak:>8.1f} | {rss:>7.0f} |"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nthis process: max RSS {rss:.0f} MiB. heap MiB = tracemalloc peak (Python objects) "
        f"over {len(subset)} docs; RSS MiB = max RSS of a fresh process running the method over "
        "them (imports included)"
    )


# ------------------------------------------------------------------ html quality and speed

HTML_SET = Path(__file__).resolve().parent / "data" / "html"


def load_html_set() -> list[tuple[str, bytes, list[str], list[str]]]:
    """(name, bytes, must appear, must not appear) for every page of bench/data/html (licences
    in its LICENSES file)."""
    spec = json.loads((HTML_SET / "snippets.json").read_text(encoding="utf-8"))
    return [
        (name, (HTML_SET / name).read_bytes(), s["must_appear"], s["must_not_appear"])
        for name, s in sorted(spec.items())
    ]


def html_ours(data: bytes) -> str:
    from ingest import IngestError, clean_bytes

    try:
        return clean_bytes(data, source="bench.html", filename="bench.html").text
    except IngestError:
        return ""


def html_trafilatura(data: bytes) -> str:
    """Bare trafilatura: its own decoding, default (balanced) settings, tables included."""
    import trafilatura

    return trafilatura.extract(data, include_comments=False, include_tables=True) or ""


def html_trafilatura_recall(data: bytes) -> str:
    import trafilatura

    return (
        trafilatura.extract(data, include_comments=False, include_tables=True, favor_recall=True)
        or ""
    )


def html_partition(data: bytes) -> str:
    from unstructured.partition.html import partition_html

    return "\n\n".join(el.text for el in partition_html(file=io.BytesIO(data)) if el.text)


def flat(text: str) -> str:
    return " ".join(text.split())


def score(outputs: list[str], pages: list[tuple[str, bytes, list[str], list[str]]]) -> dict:
    """Snippet scoring as in trafilatura's evaluation: a must-appear snippet found is a true
    positive, missed a false negative; a must-not-appear snippet found is a false positive."""
    tp = fn = fp = tn = 0
    for out, (_, _, appear, absent) in zip(outputs, pages, strict=True):
        text = flat(out)
        found = [flat(a) in text for a in appear]
        leaked = [flat(a) in text for a in absent]
        tp += sum(found)
        fn += len(found) - sum(found)
        fp += sum(leaked)
        tn += len(leaked) - sum(leaked)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fn": fn, "fp": fp, "tn": tn, "p": precision, "r": recall, "f1": f1}


HTML_METHODS: list[tuple[str, Callable[[bytes], str]]] = [
    ("corpusflow clean_bytes (.html)", html_ours),
    ("trafilatura.extract (bare)", html_trafilatura),
    ("trafilatura.extract favor_recall", html_trafilatura_recall),
    ("unstructured partition_html", html_partition),
]


def html_quality(verbose: bool = False) -> None:
    pages = load_html_set()
    print(f"\nHTML quality: {len(pages)} pages of bench/data/html (licences in its LICENSES file)")
    appear = sum(len(p[2]) for p in pages)
    absent = sum(len(p[3]) for p in pages)
    print(f"{appear} must-appear and {absent} must-not-appear snippets\n")
    print(
        f"| {'method':<34} | {'precision':>9} | {'recall':>6} | {'F1':>6} | {'missed':>6} "
        f"| {'leaked':>6} | {'ms/page':>7} |"
    )
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 9}|")
    for name, fn in HTML_METHODS:
        fn(pages[0][1])
        start = time.perf_counter()
        outs = [fn(p[1]) for p in pages]
        ms = (time.perf_counter() - start) / len(pages) * 1000
        s = score(outs, pages)
        print(
            f"| {name:<34} | {s['p']:>9.3f} | {s['r']:>6.3f} | {s['f1']:>6.3f} | {s['fn']:>6} "
            f"| {s['fp']:>6} | {ms:>7.1f} |"
        )
        if verbose:
            for out, (page, _, ap, ab) in zip(outs, pages, strict=True):
                miss = [a for a in ap if flat(a) not in flat(out)]
                leak = [a for a in ab if flat(a) in flat(out)]
                if miss or leak:
                    print(f"    {page}: missed {miss} leaked {leak}")


def html_throughput(copies: int) -> None:
    pages = [p[1] for p in load_html_set()] * copies
    mb = sum(map(len, pages)) / 1e6
    print(f"\nHTML throughput: {len(pages)} pages ({mb:.2f} MB, the quality set x{copies})\n")
    print(
        f"| {'method':<44} | {'docs':>5} | {'docs/s':>8} | {'MB/s':>6} | {'CPU MB/s':>8} "
        f"| {'heap MiB':>8} "
        f"| {'RSS MiB':>7} |"
    )
    print(f"|{'-' * 46}|{'-' * 7}|{'-' * 10}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    subset = pages[: min(20, len(pages))]
    for name, fn in HTML_METHODS:
        docs_s, mb_s, cpu_mb_s = measure(fn, pages)
        peak = peak_mib(fn, subset)
        rss = rss_mib(fn, subset)
        print(
            f"| {name:<44} | {len(pages):>5} | {docs_s:>8.1f} | {mb_s:>6.2f} "
            f"| {cpu_mb_s:>8.2f} | {peak:>8.1f} | {rss:>7.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="text documents to clean (5000)")
    parser.add_argument(
        "--baseline-n", type=int, default=200, help="documents for the baseline (default 200)"
    )
    parser.add_argument("--html-copies", type=int, default=5, help="HTML set repeats (5)")
    parser.add_argument("--quality-only", action="store_true", help="only the HTML quality table")
    parser.add_argument("--verbose", action="store_true", help="list missed/leaked snippets")
    args = parser.parse_args()
    if not args.quality_only:
        throughput(args.n, args.baseline_n)
        html_throughput(args.html_copies)
    html_quality(args.verbose)


if __name__ == "__main__":
    main()
