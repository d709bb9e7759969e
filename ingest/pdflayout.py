"""PDF pages -> the decoded source text, with what the layout says about it.

pdfminer.six gives each page's text boxes with their place on the page. Running headers, footers
and page numbers are found by position: a box in the top or bottom band of the page whose text
(digits ignored) comes back at the same height on at least half of the pages, or a page number
there. A paragraph that runs over a page break is seen from the layout: the page's last box ends
with a full-width line and no sentence end. Scanned pages (no text layer) are recognised by
tesseract when it is installed (pages rendered by pypdfium2)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ingest import patterns as P

# the bands of the page where running heads and feet sit (fraction of the page height)
EDGE_BAND = 0.12
# heights within this fraction of the page count as "the same place"
SAME_PLACE = 0.02
OCR_DPI = 300
OCR_TIMEOUT_S = 120


@dataclass
class Box:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    page: int
    start: int = 0
    end: int = 0
    last_line_x1: float = 0.0


@dataclass
class PdfText:
    text: str
    noise: list[tuple[int, int, str]] = field(default_factory=list)
    continues: list[int] = field(default_factory=list)
    pages: int = 0
    text_pages: int = 0


def page_boxes(data: bytes) -> tuple[list[list[Box]], list[tuple[float, float]]]:
    """Every page's text boxes (top to bottom as pdfminer orders them) and page sizes."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer, LTTextLine

    pages: list[list[Box]] = []
    sizes: list[tuple[float, float]] = []
    for n, layout in enumerate(extract_pages(io.BytesIO(data), laparams=LAParams())):
        boxes = []
        for el in layout:
            if not isinstance(el, LTTextContainer):
                continue
            text = el.get_text().strip()
            if not text:
                continue
            lines = [ln for ln in el if isinstance(ln, LTTextLine) and ln.get_text().strip()]
            last_x1 = lines[-1].x1 if lines else el.x1
            boxes.append(Box(text, el.x0, el.y0, el.x1, el.y1, n, last_line_x1=last_x1))
        pages.append(boxes)
        sizes.append((layout.width, layout.height))
    return pages, sizes


def edge_key(box: Box, height: float) -> tuple[str, int, str] | None:
    """(band, height bucket, text with digits as #) for a one-line box in the top or bottom band
    of its page, else None."""
    if "\n" in box.text or len(box.text) > 150 or height <= 0:
        return None
    top = 1 - box.y1 / height
    bottom = box.y0 / height
    if top <= EDGE_BAND:
        band, at = "top", top
    elif bottom <= EDGE_BAND:
        band, at = "bottom", bottom
    else:
        return None
    text = re.sub(r"\s+", " ", re.sub(r"\d+", "#", box.text.casefold()))
    return band, round(at / SAME_PLACE), text


def find_page_edges(pages: list[list[Box]], sizes: list[tuple[float, float]]) -> dict[int, str]:
    """id(box) -> kind for running headers/footers and page numbers found by position."""
    keyed: dict[int, tuple[str, int, str]] = {}
    seen: Counter[tuple[str, int, str]] = Counter()
    for boxes, (_, height) in zip(pages, sizes, strict=True):
        on_page = set()
        for box in boxes:
            key = edge_key(box, height)
            if key is not None:
                keyed[id(box)] = key
                on_page.add(key)
        seen.update(on_page)
    need = max(2, (len(pages) + 1) // 2)
    out: dict[int, str] = {}
    for boxes in pages:
        for box in boxes:
            key = keyed.get(id(box))
            if key is None:
                continue
            # a nearby bucket counts too: the same head drawn a point higher on one page
            hits = sum(seen[(key[0], key[1] + d, key[2])] for d in (-1, 0, 1))
            if P.PAGE_NUMBER.match(box.text) or P.PAGE_OF_LINE.match(box.text):
                if len(pages) >= 2:
                    out[id(box)] = "page_number"
            elif hits >= need and len(pages) >= 2:
                out[id(box)] = "running_header" if key[0] == "top" else "running_footer"
    return out


def layout_text(pages: list[list[Box]], sizes: list[tuple[float, float]]) -> PdfText:
    """Boxes joined by a blank line, pages by a form feed (as before), with the noise spans found
    by position and the offsets where a paragraph continues over the page break."""
    edges = find_page_edges(pages, sizes)
    parts: list[str] = []
    pos = 0
    out = PdfText("", pages=len(pages))
    for n, boxes in enumerate(pages):
        if n > 0:
            parts.append("\n\n\f")
            pos += 3
        if boxes:
            out.text_pages += 1
        for k, box in enumerate(boxes):
            if k > 0:
                parts.append("\n\n")
                pos += 2
            box.start, box.end = pos, pos + len(box.text)
            parts.append(box.text)
            pos = box.end
            if id(box) in edges:
                out.noise.append((box.start, box.end, edges[id(box)]))
    out.text = "".join(parts)
    out.continues = continuations(pages, edges)
    return out


def continuations(pages: list[list[Box]], edges: dict[int, str]) -> list[int]:
    """Ends of the last body box of a page whose last line runs to the right edge of the text
    column and stops without ending a sentence: the paragraph goes on on the next page."""
    out = []
    for n in range(len(pages) - 1):
        body = [b for b in pages[n] if id(b) not in edges]
        after = [b for b in pages[n + 1] if id(b) not in edges]
        if not body or not after:
            continue
        last = body[-1]
        right = max(b.x1 for b in body)
        full = last.last_line_x1 >= right - 0.08 * (right - min(b.x0 for b in body))
        text = last.text.rstrip()
        if full and text and not re.search(r"[.!?:…]['\"”’)]*$", text):
            out.append(last.end)
    return out


# ------------------------------------------------------------------ OCR


def tesseract_path() -> str | None:
    return shutil.which("tesseract")


OCR_HELP = (
    "install tesseract to have scanned pages recognised by OCR (Debian/Ubuntu: "
    "apt-get install tesseract-ocr; macOS: brew install tesseract)"
)


def ocr_pages(data: bytes, lang: str = "eng") -> list[str]:
    """Each page rendered by pypdfium2 at OCR_DPI and read by the tesseract command."""
    import pypdfium2 as pdfium

    exe = tesseract_path()
    if exe is None:
        raise FileNotFoundError(OCR_HELP)
    texts = []
    pdf = pdfium.PdfDocument(data)
    try:
        with tempfile.TemporaryDirectory(prefix="corpusflow-ocr-") as tmp:
            for n in range(len(pdf)):
                image = pdf[n].render(scale=OCR_DPI / 72).to_pil()
                path = Path(tmp) / f"page-{n}.png"
                image.save(path)
                done = subprocess.run(
                    [exe, str(path), "stdout", "-l", lang, "--psm", "3"],
                    capture_output=True,
                    check=True,
                    timeout=OCR_TIMEOUT_S,
                )
                texts.append(done.stdout.decode("utf-8", errors="replace"))
    finally:
        pdf.close()
    return texts


def ocr_text(pages: list[str]) -> str:
    """tesseract's pages as source text: paragraphs (blank-line separated) as blocks, pages by
    a form feed, stray whitespace trimmed."""
    out = []
    for page in pages:
        paras = [p.strip() for p in re.split(r"\n\s*\n", page.replace("\f", "")) if p.strip()]
        out.append("\n\n".join(paras))
    return "\n\n\f".join(out)
