"""Loaders: raw bytes of one source -> the decoded source text that every offset indexes.

What "decoded source text" means per format:
- .txt, .md: the bytes decoded (BOM removed; see `ingest.charsets`); nothing else is changed.
- .html/.htm: the main content extracted by trafilatura (see `load_html` for why), its
  paragraphs joined by a blank line, each table one block of rows (`ingest.htmltext`).
- .docx: the elements of unstructured's `partition_docx`, joined by a blank line; tables as in
  HTML.
- .pdf: pdfminer.six text boxes of each page joined by a blank line; pages joined by a form feed;
  heads, feet and page numbers found by their place on the page come with it as noise spans
  (`ingest.pdflayout`); a scanned PDF is its OCR text.
- .eml: the body elements of unstructured's `partition_email` (plain part preferred), joined by
  a blank line; Subject/From/Date become metadata hints.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from ingest.charsets import Decoded, decode_bytes
from ingest.errors import IngestError
from ingest.limits import html_input

# unstructured reports usage over the network unless told not to; ingest must stay offline
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pdf": "application/pdf",
    ".eml": "message/rfc822",
}


@dataclass
class Loaded:
    text: str
    media_type: str
    hints: dict[str, Any] = field(default_factory=dict)
    markdown: bool = False
    # source spans the cleaners must keep whole (tables in the article)
    keep: list[tuple[int, int]] = field(default_factory=list)
    # source spans the loader found to be noise (a navigation table, a header by its position
    # on the page), with their kind; the cleaners remove the blocks they cover
    noise: list[tuple[int, int, str]] = field(default_factory=list)
    # the main-content extractor found an article: cleaning may never empty it
    extracted: bool = False
    # source offsets (block ends) where the layout says the paragraph goes on after the break
    continues: list[int] = field(default_factory=list)


def decode_source(
    data: bytes, source: str, *, charset: str | None = None, markup: bool = False
) -> Decoded:
    """Bytes -> Decoded text (see `ingest.charsets.decode_bytes`): BOM, the `charset` the source
    came with (HTTP header), the markup's declaration, UTF-8, detection."""
    return decode_bytes(data, source, declared=charset, markup=markup)


def decode_text(data: bytes, source: str, charset: str | None = None) -> str:
    """Bytes -> text by `decode_source`.

    b"\\xef\\xbb\\xbfcaf\\xc3\\xa9" -> "café"; b"caf\\xe9" -> "café" (detected)
    """
    return decode_source(data, source, charset=charset).text


def load_text(data: bytes, source: str, charset: str | None = None) -> Loaded:
    """Plain text: decoded as is. unstructured's partition_text is not used because it
    normalises whitespace and would lose offsets into the file; our block splitter keeps them."""
    decoded = decode_source(data, source, charset=charset)
    return Loaded(decoded.text, "text/plain", {"decoding": decoded.provenance()})


def load_markdown(data: bytes, source: str, charset: str | None = None) -> Loaded:
    """Markdown: decoded as is (partition_md renders through HTML and loses offsets); markdown
    syntax is removed by the inline cleaners, each removal traced."""
    decoded = decode_source(data, source, charset=charset)
    return Loaded(decoded.text, "text/markdown", {"decoding": decoded.provenance()}, markdown=True)


def paragraphs_text(parts: list[str]) -> str:
    """Non-empty stripped parts joined by a blank line: ['a ', '', 'b'] -> 'a\\n\\nb'"""
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def load_html(data: bytes, source: str, charset: str | None = None) -> Loaded:
    """HTML: main content by trafilatura. Measured against unstructured's partition_html on
    pages with nav, cookie banner, share bar, related list and footer (bench/clean.py): trafilatura
    keeps the article and drops the page chrome; partition_html keeps every text element of the
    page, so most chrome would reach the cleaners.

    The bytes are decoded by us (BOM, `charset`, the page's meta/XML declaration, detection) and
    trafilatura gets text, so a page is never re-decoded by a guess. Its tree is rendered by
    `ingest.htmltext`: the text trafilatura would give, tables one block of rows each (kept by
    the cleaners, cells in `hints["tables"]`), navigation tables marked as noise."""
    import trafilatura

    from ingest.htmltext import render_body

    decoded = decode_source(data, source, charset=charset, markup=True)
    text = decoded.text
    try:
        doc = trafilatura.bare_extraction(
            html_input(text),  # a tree in libxml2's huge mode for a page deeper than 255
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            favor_recall=True,
        )
    except (ValueError, TypeError) as exc:
        raise IngestError("parse_error", f"HTML could not be parsed: {exc}", source) from exc
    found: dict[str, Any] = {}
    body = None
    if isinstance(doc, dict):
        found = doc
        body = doc.get("body")
    elif doc is not None:
        found = doc.as_dict()
        body = getattr(doc, "body", None)
    author = found.get("author") or ""
    hints: dict[str, Any] = {
        "title": found.get("title"),
        "authors": [a.strip() for a in re.split(r";|\band\b", author) if a.strip()],
        "published": found.get("date"),
        "source_url": found.get("url"),
        "sitename": found.get("sitename"),
        "language": found.get("language"),
        "decoding": decoded.provenance(),
    }
    if body is not None and found.get("text"):
        page = render_body(body)
        loaded = Loaded(page.text, "text/html", hints, extracted=True)
        for table in page.tables:
            if table.navigation:
                loaded.noise.append((table.start, table.end, "navigation"))
            else:
                loaded.keep.append((table.start, table.end))
                hints.setdefault("tables", []).append(table.as_record())
        return loaded
    hints["extractor"] = "partition_html"  # trafilatura found no article
    return Loaded(paragraphs_text(html_fallback_text(text).split("\n")), "text/html", hints)


def html_fallback_text(text: str) -> str:
    """Every text element of the page, through unstructured, when trafilatura finds no article."""
    from unstructured.partition.html import partition_html

    return "\n".join(el.text for el in partition_html(text=text) if el.text)


def load_docx(data: bytes, source: str, charset: str | None = None) -> Loaded:
    """Word: unstructured's partition_docx elements; title/author/created from core properties.
    A table becomes one block of rows (cells in `hints["tables"]`, kept whole by the cleaners),
    as in HTML; a menu-like table is marked as navigation."""
    from docx import Document
    from unstructured.partition.docx import partition_docx

    from ingest.htmltext import render_blocks, table_from_html

    del charset  # the package declares its own encoding
    try:
        elements = partition_docx(file=io.BytesIO(data))
        props = Document(io.BytesIO(data)).core_properties
    except Exception as exc:  # noqa: BLE001 - any parser failure means this input is broken
        raise IngestError("parse_error", f"not a readable .docx: {exc}", source) from exc
    hints: dict[str, Any] = {
        "title": props.title or None,
        "authors": [props.author] if props.author else [],
        "published": props.created.date().isoformat() if props.created else None,
    }
    items: list[Any] = []
    for el in elements:
        as_html = getattr(el.metadata, "text_as_html", None) if el.category == "Table" else None
        table = table_from_html(as_html) if as_html else None
        items.append(table if table is not None and table.rows else el.text)
    page = render_blocks(items)
    loaded = Loaded(page.text, MEDIA_TYPES[".docx"], hints)
    for table in page.tables:
        if table.navigation:
            loaded.noise.append((table.start, table.end, "navigation"))
        else:
            loaded.keep.append((table.start, table.end))
            hints.setdefault("tables", []).append(table.as_record())
    return loaded


def load_pdf(data: bytes, source: str, charset: str | None = None) -> Loaded:
    """PDF: pdfminer.six page by page (unstructured[pdf] would pull torch); text boxes joined
    by a blank line, pages by a form feed. Running headers, footers and page numbers found by
    their place on the page, and paragraphs that go on over a page break, come with the text
    (see `ingest.pdflayout`). A PDF without a text layer is read by OCR where tesseract is
    installed (`metadata.ocr: true`); without it the error says how to enable OCR."""
    from pdfminer.pdfparser import PDFSyntaxError

    from ingest.pdflayout import OCR_HELP, layout_text, ocr_pages, ocr_text, page_boxes

    del charset  # a PDF declares its own encodings
    if not data.startswith(b"%PDF"):
        raise IngestError("parse_error", "does not start with a PDF header", source)
    try:
        boxes, sizes = page_boxes(data)
    except PDFSyntaxError as exc:
        raise IngestError("parse_error", f"PDF could not be parsed: {exc}", source) from exc
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many types for broken files
        raise IngestError("parse_error", f"PDF could not be read: {exc}", source) from exc
    page = layout_text(boxes, sizes)
    hints = pdf_hints(data)
    if page.text_pages == 0 and page.pages > 0:
        try:
            text = ocr_text(ocr_pages(data))
        except FileNotFoundError as exc:
            raise IngestError(
                "empty_after_cleaning",
                f"is a scanned PDF: {page.pages} pages without a text layer; {OCR_HELP}",
                source,
            ) from exc
        except (subprocess.SubprocessError, OSError) as exc:
            raise IngestError(
                "parse_error", f"OCR of the scanned PDF failed: {exc}", source
            ) from exc
        hints["ocr"] = True
        return Loaded(text, "application/pdf", hints)
    loaded = Loaded(page.text, "application/pdf", hints, noise=page.noise)
    loaded.continues = page.continues
    return loaded


def pdf_hints(data: bytes) -> dict[str, Any]:
    """Title, author and creation date from the PDF's document information."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        info = PdfReader(io.BytesIO(data)).metadata
    except (PyPdfError, ValueError, KeyError):
        return {}
    if not info:
        return {}
    created = info.get("/CreationDate")
    m = re.match(r"D:(\d{4})(\d{2})(\d{2})", str(created or ""))
    # producers' placeholders (reportlab writes these when none is set) are not metadata
    placeholder = {"untitled", "anonymous", "unknown", "unspecified", ""}
    title = (info.title or "").strip()
    author = (info.author or "").strip()
    return {
        "title": title if title.casefold() not in placeholder else None,
        "authors": [author] if author.casefold() not in placeholder else [],
        "published": f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None,
    }


def load_email(data: bytes, source: str, charset: str | None = None) -> Loaded:
    """E-mail: headers by the standard library, body elements by unstructured's partition_email
    (plain-text part preferred)."""
    from unstructured.partition.email import partition_email

    del charset  # each MIME part declares its own
    msg = BytesParser(policy=policy.default).parsebytes(data)
    if not msg.keys():
        raise IngestError("parse_error", "has no e-mail headers", source)
    plain = msg.get_body(preferencelist=("plain",))
    try:
        elements = partition_email(
            file=io.BytesIO(data),
            content_source="text/plain" if plain is not None else "text/html",
            process_attachments=False,
        )
    except Exception as exc:  # noqa: BLE001 - a malformed message of any sort
        raise IngestError("parse_error", f"e-mail could not be parsed: {exc}", source) from exc
    hints: dict[str, Any] = {"title": str(msg["subject"]) if msg["subject"] else None}
    senders = getaddresses([str(msg["from"])]) if msg["from"] else []
    hints["authors"] = [name or addr for name, addr in senders if name or addr]
    if msg["date"]:
        try:
            hints["published"] = parsedate_to_datetime(str(msg["date"])).date().isoformat()
        except (TypeError, ValueError):
            hints["published_raw"] = str(msg["date"])
    body = [el.text for el in elements if el.text and el.category != "EmailAddress"]
    return Loaded(paragraphs_text(body), "message/rfc822", hints)


# every loader also takes the charset the source came with (an HTTP/S3 header) as a third,
# optional argument
LOADERS: dict[str, Callable[..., Loaded]] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    ".pdf": load_pdf,
    ".eml": load_email,
}
