"""Ingest throughput and HTML extractor comparison. Prints figures; asserts nothing.

    .venv/bin/python -m bench.clean            # 5,000 documents built from corpus/samples
    .venv/bin/python -m bench.clean --n 500    # a quick run
    .venv/bin/python -m bench.clean --html-compare

Throughput: our `clean_bytes` (decode, block split, all cleaners, metadata, offset map) beside a
bare baseline measured in the same run: unstructured's `partition_text` plus its `clean`
(extra whitespace, dashes, bullets) on every element, with no tracing. Peak memory is measured by
tracemalloc in a separate pass over a subset, so the timed pass is not slowed by tracing."""

from __future__ import annotations

import argparse
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


def measure(fn: Callable[[bytes], str], docs: list[bytes]) -> tuple[float, float]:
    fn(docs[0])  # imports and warm-up outside the clock
    start = time.perf_counter()
    for d in docs:
        fn(d)
    elapsed = time.perf_counter() - start
    return len(docs) / elapsed, sum(map(len, docs)) / elapsed / 1e6


def peak_mib(fn: Callable[[bytes], str], docs: list[bytes]) -> float:
    fn(docs[0])
    tracemalloc.start()
    for d in docs:
        fn(d)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


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
    print(f"| {'method':<44} | {'docs':>5} | {'docs/s':>8} | {'MB/s':>6} | {'peak MiB':>8} |")
    print(f"|{'-' * 46}|{'-' * 7}|{'-' * 10}|{'-' * 8}|{'-' * 10}|")
    subset = docs[: min(100, n)]
    for name, fn, batch in (
        ("corpusflow clean_bytes (traced, + metadata)", run_ours, docs),
        ("unstructured partition_text + clean", run_baseline, base_docs),
    ):
        docs_s, mb_s = measure(fn, batch)
        peak = peak_mib(fn, subset)
        print(f"| {name:<44} | {len(batch):>5} | {docs_s:>8.1f} | {mb_s:>6.2f} | {peak:>8.1f} |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess max RSS {rss:.0f} MiB; peak MiB = tracemalloc peak over {len(subset)} docs")


# ------------------------------------------------------------------ html extractor comparison

ARTICLE = [
    "Chinese leader Xi Jinping met Russian President Vladimir Putin on Thursday in Samarkand.",
    "The two leaders discussed trade, energy and security, officials said after the talks.",
    "Analysts said the meeting showed how the balance of power between them had shifted.",
    "Putin said he understood that Beijing had questions and concerns about the war.",
    "The summit of the regional organisation ends on Friday with a joint declaration.",
]
CHROME = {
    "nav": '<nav><a href="/">Home</a> <a href="/w">World News</a> <a href="/b">Business</a></nav>',
    "cookie": '<div id="consent">We use cookies to improve your experience. '
    "<button>Accept all</button></div>",
    "share": '<div class="share"><a>Share on Facebook</a> <a>Share on Twitter</a> '
    "<a>Email this</a></div>",
    "related": '<aside class="related"><h3>Most read</h3><ul><li><a href="/1">Ten things to know'
    ' about markets</a></li><li><a href="/2">Storm hits the northern coast</a></li></ul></aside>',
    "newsletter": '<div class="promo">Sign up for our daily newsletter</div>',
    "footer": "<footer><p>Copyright 2022 Example News. All rights reserved.</p>"
    '<p><a href="/about">About us</a> <a href="/privacy">Privacy policy</a></p></footer>',
    "ad": '<div class="ad">Advertisement</div>',
}
NOISE_PROBES = {
    "nav": "World News",
    "cookie": "cookies",
    "share": "Share on Facebook",
    "related": "Ten things to know",
    "newsletter": "newsletter",
    "footer": "Privacy policy",
    "ad": "Advertisement",
}


def build_pages() -> list[str]:
    """Six page layouts: the same article wrapped in different chrome and containers."""
    paras = "".join(f"<p>{s}</p>" for s in ARTICLE)
    shells = [
        "{nav}{cookie}<main><article><h1>Xi meets Putin</h1>{paras}{share}</article></main>"
        "{related}{footer}",
        "{cookie}<div class='wrap'>{nav}<div class='content'><h1>Xi meets Putin</h1>{ad}{paras}"
        "</div>{newsletter}</div>{footer}",
        "<header>{nav}</header><div id='story'><h2>Xi meets Putin</h2>{paras}{share}{related}"
        "</div>{footer}",
        "{nav}<section><h1>Xi meets Putin</h1><div>{paras}</div>{newsletter}{ad}</section>"
        "{related}{cookie}{footer}",
        "<body>{nav}<table><tr><td>{related}</td><td><h1>Xi meets Putin</h1>{paras}</td></tr>"
        "</table>{footer}</body>",
        "{nav}<article><h1>Xi meets Putin</h1><p>By Jane Doe</p>{paras}{ad}{share}</article>"
        "{newsletter}{related}{cookie}{footer}",
    ]
    return [
        "<html><head><title>Xi meets Putin</title></head><body>"
        + s.format(paras=paras, **CHROME)
        + "</body></html>"
        for s in shells
    ]


def extract_trafilatura(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_comments=False, favor_recall=True) or ""


def extract_unstructured(html: str) -> str:
    from unstructured.partition.html import partition_html

    return "\n\n".join(el.text for el in partition_html(text=html))


def after_cleaners(text: str) -> str:
    """Extractor output run through our cleaners, as `load_html` output would be."""
    from ingest.cleaners import clean_text
    from ingest.loaders import paragraphs_text
    from ingest.offsets import apply_edits

    source = paragraphs_text(text.split("\n"))
    return apply_edits(source, clean_text(source).edits).text


def html_compare() -> None:
    pages = build_pages()
    total_s, total_n = len(pages) * len(ARTICLE), len(pages) * len(NOISE_PROBES)
    print(f"{len(pages)} pages, {len(ARTICLE)} article sentences and 7 kinds of chrome each\n")
    print(
        f"| {'extractor':<28} | {'sentences kept':>14} | {'chrome leaked':>13} "
        f"| {'leaked after cleaners':>21} | {'ms/page':>7} |"
    )
    print(f"|{'-' * 30}|{'-' * 16}|{'-' * 15}|{'-' * 23}|{'-' * 9}|")
    for name, fn in (
        ("trafilatura.extract", extract_trafilatura),
        ("unstructured partition_html", extract_unstructured),
    ):
        fn(pages[0])
        start = time.perf_counter()
        outs = [fn(p) for p in pages]
        ms = (time.perf_counter() - start) / len(pages) * 1000
        kept = sum(s in out for out in outs for s in ARTICLE)
        leaked = sum(p in out for out in outs for p in NOISE_PROBES.values())
        cleaned = [after_cleaners(out) for out in outs]
        kept_c = sum(s in out for out in cleaned for s in ARTICLE)
        leaked_c = sum(p in out for out in cleaned for p in NOISE_PROBES.values())
        print(
            f"| {name:<28} | {kept:>5}/{total_s:<8} | {leaked:>5}/{total_n:<7} "
            f"| {leaked_c:>3}/{total_n} ({kept_c}/{total_s} kept){'':<4} | {ms:>7.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="documents to clean (default 5000)")
    parser.add_argument(
        "--baseline-n", type=int, default=200, help="documents for the baseline (default 200)"
    )
    parser.add_argument("--html-compare", action="store_true", help="compare HTML extractors")
    args = parser.parse_args()
    if args.html_compare:
        html_compare()
    else:
        throughput(args.n, args.baseline_n)


if __name__ == "__main__":
    main()
