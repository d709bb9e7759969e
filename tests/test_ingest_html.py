"""The HTML path: trafilatura's article kept (never lost without a traced removal), tables kept as
rows with their cells in the metadata, navigation tables and favor_recall's leftovers removed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest import clean_bytes
from ingest.htmltext import is_navigation_table
from ingest.loaders import decode_source, load_html
from ingest.offsets import check_accounting

HTML_SET = Path(__file__).resolve().parents[1] / "bench" / "data" / "html"
SNIPPETS = json.loads((HTML_SET / "snippets.json").read_text(encoding="utf-8"))

ARTICLE = (
    "<p>We ran the same set of benchmarks on three laptops over two weeks, charging each one to "
    "full before every run.</p>"
)
TABLE = (
    "<table><tr><th>Laptop</th><th>Battery (hours)</th><th>Price</th></tr>"
    "<tr><td>Alpha 14</td><td>11.5</td><td>$999</td></tr>"
    "<tr><td>Gamma Air</td><td>14.2</td><td>$849</td></tr></table>"
)
NAV_TABLE = (
    '<table class="nav"><tr><td><a href="/">Reviews</a></td><td><a href="/n">News</a></td>'
    '<td><a href="/d">Deals</a></td><td><a href="/f">Forum</a></td></tr></table>'
)


def page(body: str) -> bytes:
    return (
        f"<html><head><meta charset='utf-8'><title>Laptops</title></head><body>{NAV_TABLE}"
        f"<article><h1>Three laptops tested</h1>{body}<p>The Gamma Air lasted longest on a "
        "charge by a wide margin, but it was also the slowest of the three.</p></article>"
        "</body></html>"
    ).encode()


def test_ingest_html_article_table_kept_as_rows_with_cells_in_metadata() -> None:
    doc = clean_bytes(page(ARTICLE + TABLE), source="t.html", filename="t.html")
    assert "Laptop | Battery (hours) | Price\nAlpha 14 | 11.5 | $999\nGamma Air | 14.2 | $849" in (
        doc.text
    )
    assert doc.metadata.model_extra is not None
    (table,) = doc.metadata.model_extra["tables"]
    assert table["rows"][0] == ["Laptop", "Battery (hours)", "Price"]
    assert table["rows"][2] == ["Gamma Air", "14.2", "$849"] and table["header"] is True
    source = load_html(page(ARTICLE + TABLE), "t.html").text
    assert source[table["start"] : table["end"]].startswith("Laptop | Battery")


def test_ingest_html_navigation_table_removed_and_traced() -> None:
    """A menu laid out as a table that trafilatura keeps (no <article> on the page)."""
    data = (HTML_SET / "p03_benchmark_table.html").read_bytes()
    source = load_html(data, "t.html").text
    assert "Deals" in source  # trafilatura alone keeps the menu
    doc = clean_bytes(data, source="t.html", filename="t.html")
    assert "Deals" not in doc.text and "Forum" not in doc.text
    nav = [r for r in doc.removed if "Deals" in source[r.start : r.end]]
    assert nav and nav[0].kind == "navigation"
    assert "Gamma Air | 14.2 | 260 | $849" in doc.text
    assert check_accounting(source, doc.text, doc.removed, doc.repairs, doc.offset_map) == []


@pytest.mark.parametrize(
    ("rows", "navigation"),
    [
        ([["Reviews", "News", "Deals", "Forum"]], True),
        ([["Home"], ["About us"], ["Contact"]], True),
        ([["Alpha 14", "11.5"], ["Beta", "9.0"]], False),
        ([["Name", "Role"], ["Ann Lee", "Editor"], ["Bo Chen", "Writer"]], False),
        ([["2022", "2023", "2024"]], False),
        ([["News", "Sport"]], False),
    ],
)
def test_ingest_html_is_navigation_table(rows: list[list[str]], navigation: bool) -> None:
    assert is_navigation_table(rows) is navigation


def test_ingest_html_favor_recall_leftovers_removed() -> None:
    html = (
        b"<html><body><div class='post'><h1>How we repaired the old bridge</h1>"
        b"<p>Notice: Undefined variable: thumb in /var/www/html/wp-content/themes/a/single.php "
        b"on line 41</p>"
        b"<p>For almost a year the old stone bridge over the river was closed to cars, after the "
        b"spring floods had washed away part of its foundations.</p>"
        b"<p>Volunteers from the village worked every weekend through the summer, clearing the "
        b"riverbed and carrying new stones from the quarry.</p>"
        b"<h3>Related posts</h3><ul><li><a href='/a'>Spring floods: what we learned</a></li>"
        b"<li><a href='/b'>The quarry reopens</a></li></ul>"
        b"<p>Contact us: notes@village.example | Tel. 01234 567 890</p></div></body></html>"
    )
    doc = clean_bytes(html, source="b.html", filename="b.html")
    assert "closed to cars" in doc.text and "new stones from the quarry" in doc.text
    for noise in ("Undefined variable", "Related posts", "Spring floods:", "notes@village"):
        assert noise not in doc.text, noise
    kinds = {r.kind for r in doc.removed}
    assert {"php_error", "contact"} <= kinds


def test_ingest_html_article_of_short_lines_not_quarantined() -> None:
    """trafilatura finds the poem; our cleaners alone would remove every short line."""
    doc = clean_bytes(
        (HTML_SET / "p09_short_lines.html").read_bytes(), source="p.html", filename="p.html"
    )
    assert "the north wind blows" in doc.text and "a robin's song" in doc.text


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_ingest_html_keeps_what_trafilatura_keeps(name: str) -> None:
    """Every line trafilatura's own text has (on the same decoded page) is in our source text,
    and what of it is not in the clean text was removed by a traced removal."""
    import trafilatura

    data = (HTML_SET / name).read_bytes()
    decoded = decode_source(data, name, markup=True).text
    found = trafilatura.bare_extraction(
        decoded, with_metadata=True, include_comments=False, include_tables=True, favor_recall=True
    )
    loaded = load_html(data, name)
    assert not isinstance(found, dict)  # as_dict=False: a Document or None
    found_text = found.text if found is not None else ""
    assert found_text is not None
    lines = [
        line.strip()
        for line in found_text.split("\n")
        if line.strip() and not line.startswith("|")  # tables: rendered by us, checked above
    ]
    doc = clean_bytes(data, source=name, filename=name)
    for line in lines:
        at = loaded.text.find(line)
        assert at >= 0, line
        in_clean = " ".join(line.split()) in " ".join(doc.text.split())
        traced = any(r.start <= at < r.end and r.kind != "whitespace" for r in doc.removed)
        assert in_clean or traced, line


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_ingest_html_bench_pages_snippets(name: str) -> None:
    doc = clean_bytes((HTML_SET / name).read_bytes(), source=name, filename=name)
    text = " ".join(doc.text.split())
    for snippet in SNIPPETS[name]["must_appear"]:
        assert " ".join(snippet.split()) in text, snippet
    for snippet in SNIPPETS[name]["must_not_appear"]:
        assert " ".join(snippet.split()) not in text, snippet
