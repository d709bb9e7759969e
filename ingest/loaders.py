"""Loaders: raw bytes of one source -> the decoded source text that every offset indexes.

What "decoded source text" means per format:
- .txt, .md: the bytes decoded (BOM removed); nothing else is changed.
- .html/.htm: the main content extracted by trafilatura (see `load_html` for why), its
  paragraphs joined by a blank line.
- .docx: the elements of unstructured's `partition_docx`, joined by a blank line.
- .pdf: pdfminer.six text boxes of each page joined by a blank line; pages joined by a form feed,
  so running headers and footers can be found by repetition across pages.
- .eml: the body elements of unstructured's `partition_email` (plain part preferred), joined by
  a blank line; Subject/From/Date become metadata hints.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

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

# signatures of binary formats that must not be read as text
BINARY_MAGIC = (
    b"%PDF",
    b"PK\x03\x04",
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"\x7fELF",
    b"MZ",
    b"\x1f\x8b",
    b"BZh",
    b"7z\xbc\xaf",
    b"Rar!",
    b"\xd0\xcf\x11\xe0",
)


CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


@dataclass
class Loaded:
    text: str
    media_type: str
    hints: dict[str, Any] = field(default_factory=dict)
    markdown: bool = False


def decode_text(data: bytes, source: str) -> str:
    """Bytes -> text: BOM (UTF-8/16/32) first, then UTF-8, cp1252, latin-1.

    b"\\xef\\xbb\\xbfcaf\\xc3\\xa9" -> "café"; b"caf\\xe9" -> "café" (cp1252)
    """
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise IngestError(
                    "undecodable",
                    f"has a {codec} byte-order mark but is not {codec}: {exc}",
                    source,
                ) from exc
    if data.startswith(BINARY_MAGIC) or b"\x00" in data[:8192]:
        raise IngestError("binary", "is binary data, not text", source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    controls = len(CONTROL_CHARS.findall(text))
    if controls > max(2, len(text) // 50):
        raise IngestError(
            "undecodable",
            f"{controls} control characters in {len(text)}: not a text encoding",
            source,
        )
    return text


def load_text(data: bytes, source: str) -> Loaded:
    """Plain text: decoded as is. unstructured's partition_text is not used because it
    normalises whitespace and would lose offsets into the file; our block splitter keeps them."""
    return Loaded(decode_text(data, source), "text/plain")


def load_markdown(data: bytes, source: str) -> Loaded:
    """Markdown: decoded as is (partition_md renders through HTML and loses offsets); markdown
    syntax is removed by the inline cleaners, each removal traced."""
    return Loaded(decode_text(data, source), "text/markdown", markdown=True)


def paragraphs_text(parts: list[str]) -> str:
    """Non-empty stripped parts joined by a blank line: ['a ', '', 'b'] -> 'a\\n\\nb'"""
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def load_html(data: bytes, source: str) -> Loaded:
    """HTML: main content by trafilatura. Measured against unstructured's partition_html on
    pages with nav, cookie banner, share bar, related list and footer (bench/clean.py
    `--html-compare`): trafilatura keeps the article and drops the page chrome; partition_html
    keeps every text element of the page, so most chrome would reach the cleaners."""
    import trafilatura

    text = decode_text(data, source)
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
    if isinstance(doc, dict):
        found = doc
    elif doc is not None:
        found = doc.as_dict()
    body = found.get("text") or html_fallback_text(text)
    author = found.get("author") or ""
    hints: dict[str, Any] = {
        "title": found.get("title"),
        "authors": [a.strip() for a in re.split(r";|\band\b", author) if a.strip()],
        "published": found.get("date"),
        "source_url": found.get("url"),
        "sitename": found.get("sitename"),
        "language": found.get("language"),
    }
    return Loaded(paragraphs_text(body.split("\n")), "text/html", hints)


def html_fallback_text(text: str) -> str:
    """Every text element of the page, through unstructured, when trafilatura finds no article."""
    from unstructured.partition.html import partition_html

    return "\n".join(el.text for el in partition_html(text=text) if el.text)


def load_docx(data: bytes, source: str) -> Loaded:
    """Word: unstructured's partition_docx elements; title/author/created from core properties."""
    from docx import Document
    from unstructured.partition.docx import partition_docx

    try:
        elements = partition_docx(file=io.BytesIO(data))
        props = Document(io.BytesIO(data)).core_properties
    except Exception as exc:  # noqa: BLE001 - any parser failure means this input is broken
        raise IngestError("parse_error", f"not a readable .docx: {exc}", source) from exc
    hints = {
        "title": props.title or None,
        "authors": [props.author] if props.author else [],
        "published": props.created.date().isoformat() if props.created else None,
    }
    return Loaded(paragraphs_text([el.text for el in elements]), MEDIA_TYPES[".docx"], hints)


def load_pdf(data: bytes, source: str) -> Loaded:
    """PDF: pdfminer.six page by page (unstructured[pdf] would pull torch); text boxes joined
    by a blank line, pages by a form feed."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer
    from pdfminer.pdfparser import PDFSyntaxError

    if not data.startswith(b"%PDF"):
        raise IngestError("parse_error", "does not start with a PDF header", source)
    pages: list[str] = []
    try:
        for layout in extract_pages(io.BytesIO(data), laparams=LAParams()):
            boxes = [el.get_text() for el in layout if isinstance(el, LTTextContainer)]
            pages.append(paragraphs_text(boxes))
    except PDFSyntaxError as exc:
        raise IngestError("parse_error", f"PDF could not be parsed: {exc}", source) from exc
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many types for broken files
        raise IngestError("parse_error", f"PDF could not be read: {exc}", source) from exc
    return Loaded("\n\n\f".join(pages), "application/pdf", pdf_hints(data))


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
    return {
        "title": info.title or None,
        "authors": [info.author] if info.author else [],
        "published": f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None,
    }


def load_email(data: bytes, source: str) -> Loaded:
    """E-mail: headers by the standard library, body elements by unstructured's partition_email
    (plain-text part preferred)."""
    from unstructured.partition.email import partition_email

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


LOADERS: dict[str, Callable[[bytes, str], Loaded]] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    ".pdf": load_pdf,
    ".eml": load_email,
}
