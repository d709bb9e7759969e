"""Golden tests on the five sample articles: noise gone, article sentences intact, metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import clean_path
from ingest.offsets import check_accounting
from schemas.records import CleanDocument

SAMPLES = Path(__file__).resolve().parents[1] / "corpus" / "samples"


def sample(prefix: str) -> CleanDocument:
    path = next(SAMPLES.glob(f"{prefix}_*.txt"))
    return clean_path(path, source=path.name)


def source_text(prefix: str) -> str:
    return next(SAMPLES.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")


@pytest.mark.parametrize("prefix", ["000", "001", "002", "003", "004"])
def test_ingest_samples_every_character_accounted_for(prefix: str) -> None:
    doc = sample(prefix)
    src = source_text(prefix)
    assert check_accounting(src, doc.text, doc.removed, doc.repairs, doc.offset_map) == []


@pytest.mark.parametrize("prefix", ["000", "001", "002", "003", "004"])
def test_ingest_samples_keep_every_long_sentence_whole(prefix: str) -> None:
    """Every sentence of prose in the source (outside removed spans) is in the clean text."""
    doc = sample(prefix)
    src = source_text(prefix)
    removed = [(r.start, r.end) for r in doc.removed if r.kind not in {"markup", "whitespace"}]
    flat = " ".join(doc.text.split())
    for para_start, para in _paragraphs(src):
        if any(s <= para_start < e for s, e in removed):
            continue
        for sentence in para.replace("**", "").replace("<u>", "").replace("</u>", "").split(". "):
            words = sentence.replace("\\$", "$").split()
            if len(words) >= 6 and not sentence.startswith(("– –", "- ")):
                assert " ".join(words) in flat, sentence


def _paragraphs(text: str) -> list[tuple[int, str]]:
    out, pos = [], 0
    for para in text.split("\n\n"):
        out.append((pos, para))
        pos += len(para) + 2
    return out


NOISE = {
    "000": ["CSAG INFORMATION PAPER", "**", "do not necessarily reflect the views"],
    "001": [
        "Make a charitable donation",
        "Weapons of Mass Destruction (WMD)",
        "rfe/rl banner",
        "By Reid Standish",
        "Source: https",
        "Copyright (c) 2022",
        "mailing list",
    ],
    "002": ["PISM SPOTLIGHT", "did not\n\nconclude"],
    "003": [
        "Russian setbacks in Ukraine then Putin meets Xi",
        "Published:",
        "full screen",
        "Photo: Li Tao",
        "Source: NE",
        "Read more",
        "afbl-general-01",
        "– – ",
    ],
    "004": [
        "Embed:",
        "pic.twitter.com",
        "(@BNNUzbekistan)",
        "Eerily empty streets",
        "<u>",
        "Kremlin Pool Photo",
        "\\$",
        "Original url",
        "By Anastasia",
    ],
}


@pytest.mark.parametrize(("prefix", "noise"), [(p, n) for p, ns in NOISE.items() for n in ns])
def test_ingest_samples_remove_noise(prefix: str, noise: str) -> None:
    assert noise not in sample(prefix).text


KEPT = {
    "000": [
        "Xi-Putin Meeting in SCO Summit",
        "1. Subject: Xi has put on some weight;",
        " - a. Putin to assure Xi for support and show to the world he is not isolated.",
        "6. Recommendations for USCENTCOM.",
    ],
    "001": [
        "A Symbolic Meeting",
        '"We highly value the balanced stance of our Chinese friends when it comes to the Ukraine'
        ' crisis," Putin said during the meeting.',
        "Amid the fallout from the war, Central Asian countries -- Kazakhstan, in particular --",
    ],
    "002": [
        "the summit did not conclude with specific decisions aimed at the U.S.",
        "including those that threaten the implementation of China's initiatives",
        "made no reference to the war in Ukraine",
        "What did Vladimir Putin achieve?",
    ],
    "003": [
        "Russian setbacks in Ukraine – then Putin meets Xi",
        "– They are probably as surprised as anyone else",
        "– For China and Russia, it is about the Central Asian states",
        "Facts\n\nSCO\n\nThe SCO (in English called the Shanghai Cooperation Organisation)",
    ],
    "004": [
        "focus on gas exports and broader trade relations as Moscow seeks",
        "reached $35 billion in the first five months of the war, up from $20 billion",
        'where the two announced a "no limits" friendship.',
        '"Beijing, like no other, benefits from the current situation."',
    ],
}


@pytest.mark.parametrize(("prefix", "kept"), [(p, k) for p, ks in KEPT.items() for k in ks])
def test_ingest_samples_keep_article_text(prefix: str, kept: str) -> None:
    assert kept in sample(prefix).text


@pytest.mark.parametrize(
    ("prefix", "field", "value"),
    [
        ("000", "title", "Xi-Putin Meeting in SCO Summit"),
        ("000", "authors", ["Jussi Puustinen"]),
        (
            "001",
            "title",
            "What We Know About The Russia-China Partnership After The Xi-Putin Meeting",
        ),
        ("001", "authors", ["Reid Standish"]),
        ("001", "published", "2022-09-15"),
        (
            "001",
            "source_url",
            "https://www.rferl.org/a/what-we-know-about-the-russia-china-partnership/32035626.html",
        ),
        ("002", "authors", ["Agnieszka Legucka", "Marcin Przychodniak"]),
        ("003", "title", "Russian setbacks in Ukraine – then Putin meets Xi"),
        ("003", "published", None),
        ("004", "authors", ["Anastasia Tenisheva"]),
        ("004", "published", "2022-09-15"),
        (
            "004",
            "source_url",
            "https://www.themoscowtimes.com/2022/09/15/"
            "uneasy-allies-putin-and-xi-set-to-meet-for-first-time-since-ukraine-war-a78794",
        ),
    ],
)
def test_ingest_samples_metadata(prefix: str, field: str, value: object) -> None:
    assert getattr(sample(prefix).metadata, field) == value


def test_ingest_samples_rights_notice_becomes_metadata() -> None:
    rights = sample("001").metadata.rights
    assert rights is not None and rights.startswith("Copyright (c) 2022")


def test_ingest_samples_removed_spans_carry_kinds() -> None:
    doc = sample("004")
    src = source_text("004")
    kinds = {r.kind for r in doc.removed}
    assert {"embed", "caption", "byline", "dateline", "markup", "source"} <= kinds
    embed = [src[r.start : r.end] for r in doc.removed if r.kind == "embed"]
    assert any("@Nat_Vasilyeva" in e for e in embed)
