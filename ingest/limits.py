"""Limits per input: what one source may cost before it is parsed, checked cheaply (from the zip
directory, a streaming count, the PDF trailer) so that a hostile input is refused fast and at
low memory. Every refusal is an IngestError whose message names the limit and its variable."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ingest.errors import IngestError

if TYPE_CHECKING:
    from schemas.settings import Settings

# setting name -> environment variable, for the messages
VARIABLES = {
    "max_source_bytes": "CORPUSFLOW_MAX_BYTES",
    "max_unzipped_bytes": "CORPUSFLOW_MAX_UNZIPPED_BYTES",
    "max_zip_members": "CORPUSFLOW_MAX_ZIP_MEMBERS",
    "max_docx_paragraphs": "CORPUSFLOW_MAX_DOCX_PARAGRAPHS",
    "max_html_depth": "CORPUSFLOW_MAX_HTML_DEPTH",
    "max_html_elements": "CORPUSFLOW_MAX_HTML_ELEMENTS",
    "max_pdf_pages": "CORPUSFLOW_MAX_PDF_PAGES",
    "parse_timeout": "CORPUSFLOW_PARSE_TIMEOUT",
    "parse_memory_mb": "CORPUSFLOW_PARSE_MEMORY_MB",
}

# libxml2 builds trees at most this deep unless asked for its "huge" mode (deeper elements are
# dropped, which made a deep page "no text content"); see `html_input`
LXML_DEFAULT_DEPTH = 255


def _default(name: str) -> Any:
    from schemas.settings import Settings

    return Settings.model_fields[name].default


@dataclass(frozen=True)
class Limits:
    """The limits one input is held to; defaults are the settings' defaults."""

    max_source_bytes: int = _default("max_source_bytes")
    max_unzipped_bytes: int = _default("max_unzipped_bytes")
    max_zip_members: int = _default("max_zip_members")
    max_docx_paragraphs: int = _default("max_docx_paragraphs")
    max_html_depth: int = _default("max_html_depth")
    max_html_elements: int = _default("max_html_elements")
    max_pdf_pages: int = _default("max_pdf_pages")
    parse_timeout: float = _default("parse_timeout")  # seconds; 0: parse in this process
    parse_memory_mb: int = _default("parse_memory_mb")  # address space of the parser; 0: none

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


def over_limit(what: str, name: str, limit: float, source: str) -> IngestError:
    """The error for one exceeded limit, naming the limit and the variable that sets it.

    over_limit("has 9000 paragraphs", "max_docx_paragraphs", 5000, "a.docx")
    -> "a.docx: has 9000 paragraphs, over the limit of 5000 (max_docx_paragraphs,
    CORPUSFLOW_MAX_DOCX_PARAGRAPHS)"
    """
    kind = "too_large" if name == "max_source_bytes" else "limit_exceeded"
    shown = int(limit) if float(limit).is_integer() else limit
    return IngestError(
        kind, f"{what}, over the limit of {shown} ({name}, {VARIABLES[name]})", source
    )


def check_size(size: int, limits: Limits, source: str) -> None:
    if size > limits.max_source_bytes:
        raise over_limit(f"is {size} bytes", "max_source_bytes", limits.max_source_bytes, source)


# ---------------------------------------------------------------- zip containers (docx)


def check_zip(data: bytes, limits: Limits, source: str) -> zipfile.ZipFile:
    """Member count and total uncompressed size from the zip's central directory, before
    anything is inflated. Python's zipfile never inflates a member past the size the directory
    declares (a lying entry fails its CRC instead), so the declared sizes bound the work."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise IngestError("parse_error", f"not a readable zip container: {exc}", source) from exc
    members = archive.infolist()
    if len(members) > limits.max_zip_members:
        raise over_limit(
            f"has {len(members)} zip members", "max_zip_members", limits.max_zip_members, source
        )
    total = sum(m.file_size for m in members)
    if total > limits.max_unzipped_bytes:
        biggest = max(members, key=lambda m: m.file_size)
        raise over_limit(
            f"expands to {total} bytes ({biggest.filename} alone to {biggest.file_size})",
            "max_unzipped_bytes",
            limits.max_unzipped_bytes,
            source,
        )
    return archive


# a paragraph start tag of any namespace prefix (w:p, DrawingML's a:p in text boxes): <w:p> or
# <w:p attr=...>, not <w:pPr> or <w:proofErr>
PARAGRAPH_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?p[\s/>]")


def count_docx_paragraphs(archive: zipfile.ZipFile) -> int:
    """Paragraph start tags in word/document.xml, counted over the inflated bytes as they
    stream (constant memory: a parse would hold the longest text node whole).
    unstructured's partition_docx runs a spaCy pipeline on every paragraph to classify it
    (about 8 ms each here), which is why a small file of many paragraphs is slow."""
    try:
        stream = archive.open("word/document.xml")
    except KeyError:
        return 0
    count, tail = 0, b""
    with stream:
        while chunk := stream.read(1 << 20):
            window = tail + chunk
            # a tag cut by the chunk boundary is counted in the next window, not twice
            keep = max(0, len(window) - 64)
            count += sum(1 for m in PARAGRAPH_TAG.finditer(window) if m.start() < keep)
            tail = window[keep:]
    return count + sum(1 for _ in PARAGRAPH_TAG.finditer(tail))


def check_docx(data: bytes, limits: Limits, source: str) -> None:
    archive = check_zip(data, limits, source)
    try:
        paragraphs = count_docx_paragraphs(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise IngestError("parse_error", f"not a readable .docx: {exc}", source) from exc
    if paragraphs > limits.max_docx_paragraphs:
        raise over_limit(
            f"has {paragraphs} paragraphs",
            "max_docx_paragraphs",
            limits.max_docx_paragraphs,
            source,
        )


# ---------------------------------------------------------------- HTML


class _ShapeTarget:
    """lxml parser target that keeps no tree: the deepest nesting and the element count, as
    libxml2's HTML parser sees them (implied end tags included)."""

    def __init__(self) -> None:
        self.depth = 0
        self.max_depth = 0
        self.elements = 0

    def start(self, tag: str, attrib: Any) -> None:
        self.depth += 1
        self.elements += 1
        self.max_depth = max(self.max_depth, self.depth)

    def end(self, tag: str) -> None:
        self.depth -= 1

    def data(self, data: str) -> None:
        pass

    def close(self) -> tuple[int, int]:
        return self.max_depth, self.elements


def html_shape(data: bytes | str) -> tuple[int, int]:
    """(deepest nesting, element count) of an HTML document, without building it.

    html_shape("<html><body><p>a</p></body></html>") -> (3, 3)
    """
    from lxml import etree

    parser = etree.HTMLParser(target=_ShapeTarget(), huge_tree=True, no_network=True)
    parser.feed(data)
    depth, elements = parser.close()
    return int(depth), int(elements)


def check_html(data: bytes, limits: Limits, source: str) -> None:
    try:
        depth, elements = html_shape(data)
    except Exception as exc:  # noqa: BLE001 - lxml raises its own types for broken input
        raise IngestError("parse_error", f"HTML could not be parsed: {exc}", source) from exc
    if depth > limits.max_html_depth:
        raise over_limit(
            f"is nested {depth} levels deep", "max_html_depth", limits.max_html_depth, source
        )
    if elements > limits.max_html_elements:
        raise over_limit(
            f"has {elements} elements", "max_html_elements", limits.max_html_elements, source
        )


def html_input(text: str) -> Any:
    """What to hand trafilatura: the text itself, or, for a page nested deeper than libxml2's
    default tree depth, a tree parsed in libxml2's huge mode (else everything below level 255
    is dropped). Deeper than the limit never gets here (`check_html`)."""
    depth, _elements = html_shape(text)
    if depth < LXML_DEFAULT_DEPTH:
        return text
    import lxml.html

    return lxml.html.fromstring(text, parser=lxml.html.HTMLParser(huge_tree=True))


# ---------------------------------------------------------------- PDF


def check_pdf(data: bytes, limits: Limits, source: str) -> None:
    """Encryption and page count from pypdf's reading of the trailer and page tree (no page is
    rendered). A PDF that opens with the empty password is read as usual."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(
                "encrypted",
                "is an encrypted PDF that needs a password; decrypt it and add it again",
                source,
            )
        pages = len(reader.pages)
    except IngestError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        # pypdf is stricter than pdfminer on some damaged files: let the loader decide
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
            raise IngestError("encrypted", f"is an encrypted PDF: {exc}", source) from exc
        return
    except NotImplementedError as exc:  # an encryption scheme pypdf cannot open
        raise IngestError("encrypted", f"is an encrypted PDF: {exc}", source) from exc
    if pages > limits.max_pdf_pages:
        raise over_limit(f"has {pages} pages", "max_pdf_pages", limits.max_pdf_pages, source)


CHECKS = {
    ".docx": check_docx,
    ".html": check_html,
    ".htm": check_html,
    ".pdf": check_pdf,
}


def check_input(data: bytes, suffix: str, limits: Limits, source: str) -> None:
    """Every cheap check for an input of this suffix; raises IngestError naming the limit."""
    check_size(len(data), limits, source)
    check = CHECKS.get(suffix)
    if check is not None:
        check(data, limits, source)
