"""Layout-aware PDFs built by the test with reportlab: running heads and feet found by their
place on the page, page numbers, a paragraph across a page break, hyphenation; OCR of a scanned
PDF where tesseract is installed."""

from __future__ import annotations

import io
import shutil

import pytest

from ingest import IngestError, clean_bytes
from ingest.loaders import load_pdf
from ingest.offsets import check_accounting

HEAD = "Central Asia Security Review 2022"
FOOT = "Example Institute for Policy Studies"

PAGE_LINES = [
    [
        "Russia and China in Central Asia",
        "",
        "The summit of regional leaders took place in Samarkand last week and was watched",
        "closely by diplomats from many countries. Observers expected a show of unity, but",
        "the talks were attended only by the leaders of the member states, among them the",
        "presidents of Kazakhstan, Kyrgyzstan and Uzbekistan, who arrived together with",
    ],
    [
        "Vladimir Putin on Wednesday evening and left again on Friday after the final session.",
        "",
        "Several delegations criticised the Western-dominated order, and one speaker called",
        "for a fairer settlement in which the Western-",
    ],
    [
        "dominated institutions would share power with the regional organisations.",
        "",
        "The next summit is planned for the following year in another member state, and the",
        "organisers expect more observers from outside the region to take part in the talks.",
    ],
]


def build_report(pages: list[list[str]], head: str = HEAD, foot: str = FOOT) -> bytes:
    """A three-page report: a running head at the top, a running foot and 'Page N of M' at the
    bottom (drawn a little higher on one page, as real layouts are), body lines in between."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setAuthor("Ann Lee")
    c.setTitle("Russia and China in Central Asia")
    width, height = A4
    for n, lines in enumerate(pages, start=1):
        c.setFont("Helvetica", 9)
        c.drawString(72, height - 40 - (1 if n == 2 else 0), head)
        c.drawString(72, 40, foot)
        c.drawRightString(width - 72, 40, f"Page {n} of {len(pages)}")
        y = height - 110
        for line in lines:
            if line:
                c.setFont("Helvetica-Bold" if y == height - 110 and n == 1 else "Helvetica", 11)
                c.drawString(72, y, line)
            y -= 15 if line else 25
        c.showPage()
    c.save()
    return buf.getvalue()


def test_ingest_pdf_heads_feet_and_page_numbers_found_by_position() -> None:
    data = build_report(PAGE_LINES)
    loaded = load_pdf(data, "r.pdf")
    kinds = {kind for _, _, kind in loaded.noise}
    assert {"running_header", "running_footer", "page_number"} <= kinds
    for start, end, _ in loaded.noise:
        assert loaded.text[start:end].strip() in {HEAD, FOOT} or "Page" in loaded.text[start:end]
    doc = clean_bytes(data, source="r.pdf", filename="r.pdf")
    for noise in (HEAD, FOOT, "Page 2 of 3", "Page 1 of 3"):
        assert noise not in doc.text
    assert check_accounting(loaded.text, doc.text, doc.removed, doc.repairs, doc.offset_map) == []
    # each removal names its source span
    removed = {loaded.text[r.start : r.end].strip() for r in doc.removed if r.kind != "whitespace"}
    assert HEAD in removed and FOOT in removed


def test_ingest_pdf_paragraph_across_page_break_with_capital_rejoined() -> None:
    doc = clean_bytes(build_report(PAGE_LINES), source="r.pdf", filename="r.pdf")
    assert "who arrived together with Vladimir Putin on Wednesday evening" in doc.text
    assert doc.text.startswith("Russia and China in Central Asia")
    assert doc.metadata.authors == ["Ann Lee"]


def test_ingest_pdf_hyphenation_repaired_with_the_documents_words() -> None:
    """'Western-' at a page end before 'dominated': the text uses 'Western-dominated', so the
    hyphen stays; a word split only by the line break is joined."""
    doc = clean_bytes(build_report(PAGE_LINES), source="r.pdf", filename="r.pdf")
    assert "in which the Western-dominated institutions would share power" in doc.text
    assert "Westerndominated" not in doc.text
    assert any(r.kind == "dehyphenate" and r.replacement == "-" for r in doc.repairs)


def test_ingest_pdf_running_text_that_is_body_stays() -> None:
    """A line at the top of one page only is not a running head."""
    pages = [list(p) for p in PAGE_LINES]
    doc = clean_bytes(build_report(pages, head="", foot=""), source="r.pdf", filename="r.pdf")
    assert "Russia and China in Central Asia" in doc.text
    assert "organisers expect more observers" in doc.text


def scanned_pdf(text_lines: list[str]) -> bytes:
    """A PDF with no text layer: the page is an image of printed lines."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    img = Image.new("L", (1700, 900), 255)
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=40)
    except TypeError:  # Pillow < 10.1 has a fixed-size default font only
        font = ImageFont.load_default()
    for k, line in enumerate(text_lines):
        draw.text((60, 60 + 70 * k), line, fill=0, font=font)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    width, height = A4
    c.drawImage(
        ImageReader(img), 36, height - 36 - 400, width=width - 72, height=400 * 900 / 1700 * 2
    )
    c.showPage()
    c.save()
    return buf.getvalue()


SCANNED = [
    "The leaders met in Samarkand on Thursday.",
    "They discussed trade and energy for two hours.",
    "Officials said the talks had gone well.",
]


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
def test_ingest_pdf_scanned_pages_read_by_ocr() -> None:
    doc = clean_bytes(scanned_pdf(SCANNED), source="s.pdf", filename="s.pdf")
    assert doc.metadata.model_extra is not None and doc.metadata.model_extra["ocr"] is True
    flat = " ".join(doc.text.split())
    assert "Samarkand" in flat and "trade and energy" in flat


def test_ingest_pdf_scanned_without_tesseract_says_how_to_enable_ocr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ingest.pdflayout

    # the machine may have tesseract; this test is about the message when it has not
    monkeypatch.setattr(ingest.pdflayout, "tesseract_path", lambda: None)
    with pytest.raises(IngestError) as info:
        clean_bytes(scanned_pdf(SCANNED), source="s.pdf", filename="s.pdf")
    assert info.value.kind == "empty_after_cleaning"
    assert (
        "tesseract" in info.value.message and "apt-get install tesseract-ocr" in info.value.message
    )
