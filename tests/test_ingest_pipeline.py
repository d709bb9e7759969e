"""clean_bytes / clean_path end to end: errors, encodings, formats, hashes, the offset map."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import (
    CLEANER_VERSION,
    SUPPORTED_SUFFIXES,
    IngestError,
    clean_bytes,
    clean_path,
    make_doc_id,
)
from ingest.offsets import check_accounting
from schemas.records import CleanDocument

ARTICLE = (
    "Xi Meets Putin in Samarkand\n\n"
    "By Jane Doe and John Roe\n\n"
    "The two leaders met on Thursday at a regional summit in Uzbekistan, officials said.\n\n"
    "They discussed trade, energy and security during a meeting that lasted two hours.\n"
)


def accounted(doc: CleanDocument, source: str) -> bool:
    return check_accounting(source, doc.text, doc.removed, doc.repairs, doc.offset_map) == []


def test_ingest_pipeline_public_api() -> None:
    assert SUPPORTED_SUFFIXES == {".txt", ".md", ".html", ".htm", ".docx", ".pdf", ".eml"}
    assert CLEANER_VERSION
    assert make_doc_id("samples/a.txt") == make_doc_id("samples/a.txt")
    assert len(make_doc_id("x")) == 16 and make_doc_id("x") != make_doc_id("y")


@pytest.mark.parametrize(
    ("data", "filename", "kind"),
    [
        (b"", "a.txt", "empty"),
        (b"   \n\n\t ", "a.txt", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "a.txt", "binary"),
        (b"abc\x00def\x00ghi", "a.txt", "binary"),
        (b"some text", "a.xyz", "unsupported_format"),
        (b"some text", "README", "unsupported_format"),
        (bytes(range(1, 32)) * 20, "a.txt", "undecodable"),
        (b"\xff\xfe\x00\xd8", "a.txt", "undecodable"),
        (b"Advertisement\n\nRead more\n\nPage 2 of 3\n", "a.txt", "empty_after_cleaning"),
        (b"not a pdf at all", "a.pdf", "parse_error"),
        (b"PK\x03\x04 broken zip", "a.docx", "parse_error"),
        (b"<html><body></body></html>", "a.html", "empty_after_cleaning"),
    ],
)
def test_ingest_pipeline_bad_input_raises_specific_kind(
    data: bytes, filename: str, kind: str
) -> None:
    with pytest.raises(IngestError) as info:
        clean_bytes(data, source=f"in/{filename}", filename=filename)
    assert info.value.kind == kind
    assert f"in/{filename}" in str(info.value) and f"in/{filename}" in info.value.message
    assert info.value.source == f"in/{filename}"


def test_ingest_pipeline_too_large_names_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"word " * 100)
    with pytest.raises(IngestError) as info:
        clean_path(path, max_bytes=100)
    assert info.value.kind == "too_large" and "100" in info.value.message
    with pytest.raises(IngestError, match="too_large|over the limit"):
        clean_bytes(b"word " * 100, source="b", filename="b.txt", max_bytes=10)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"])
def test_ingest_pipeline_detects_encodings(encoding: str) -> None:
    text = (
        ARTICLE.replace("Thursday", "Thursday’s café")
        if encoding != "latin-1"
        else ARTICLE.replace("Thursday", "Thursday café")
    )
    doc = clean_bytes(text.encode(encoding), source="e.txt", filename="e.txt")
    assert "café" in doc.text
    assert accounted(doc, text)


def test_ingest_pipeline_txt_document_fields(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    doc = clean_path(path, source="a.txt", doc_id="fixed")
    assert doc.doc_id == "fixed" and doc.source == "a.txt" and doc.media_type == "text/plain"
    assert doc.metadata.title == "Xi Meets Putin in Samarkand"
    assert doc.metadata.authors == ["Jane Doe", "John Roe"]
    assert "By Jane Doe" not in doc.text
    assert doc.cleaner_version == CLEANER_VERSION
    assert len(doc.source_sha256) == 64 and len(doc.content_hash) == 64
    again = clean_path(path, source="a.txt", doc_id="fixed")
    assert again.content_hash == doc.content_hash
    assert clean_path(path).doc_id == make_doc_id(str(path))


def test_ingest_pipeline_markdown_syntax_removed_and_traced() -> None:
    md = (
        "# Xi Meets Putin\n\n"
        "The leaders met in **Samarkand** on Thursday, see [the report](https://ex.org/r).\n\n"
        "## Background\n\n"
        "- The summit is held every year.\n- It has eight members.\n\n"
        "## Related\n\n- [Ten things to know](https://ex.org/1)\n- [Markets](https://ex.org/2)\n"
    )
    doc = clean_bytes(md.encode(), source="a.md", filename="a.md")
    assert doc.media_type == "text/markdown"
    assert "The leaders met in Samarkand on Thursday, see the report." in doc.text
    assert "Background" in doc.text and "#" not in doc.text
    assert "Ten things" not in doc.text and "Related" not in doc.text
    assert "- The summit is held every year.\n- It has eight members." in doc.text
    assert doc.metadata.title == "Xi Meets Putin"
    assert accounted(doc, md)


HTML = b"""<html><head><title>Xi meets Putin | Example News</title>
<meta name="author" content="Jane Doe">
<meta property="article:published_time" content="2022-09-15T10:00:00Z"></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/politics">Politics</a></nav>
<div class="cookie">We use cookies to improve your experience. Accept all</div>
<article><h1>Xi meets Putin in Samarkand</h1>
<p>Chinese leader Xi Jinping met Russian President Vladimir Putin on Thursday at a summit in
Uzbekistan, their first meeting since the war began.</p>
<p>The two leaders discussed trade, energy and security, officials said after the talks.</p>
<div class="share">Share Facebook Twitter Email</div>
<p>Analysts said the meeting showed how the balance of power had shifted.</p></article>
<aside><h3>Most read</h3><ul><li>Ten things to know about the summit</li>
<li>Markets react to the news</li></ul></aside>
<footer>Copyright 2022 Example News. All rights reserved.</footer></body></html>"""


def test_ingest_pipeline_html_main_content_only() -> None:
    doc = clean_bytes(HTML, source="a.html", filename="a.html")
    assert doc.media_type == "text/html"
    assert "their first meeting since the war began." in doc.text
    assert "the balance of power had shifted." in doc.text
    for noise in ("Home", "cookies", "Facebook", "Most read", "Ten things", "All rights"):
        assert noise not in doc.text, noise
    assert doc.metadata.title == "Xi meets Putin in Samarkand"
    assert doc.metadata.authors == ["Jane Doe"]
    assert doc.metadata.published == "2022-09-15"


def test_ingest_pipeline_html_offsets_index_extracted_text() -> None:
    from ingest.loaders import load_html

    doc = clean_bytes(HTML, source="a.html", filename="a.html")
    assert accounted(doc, load_html(HTML, "a.html").text)
