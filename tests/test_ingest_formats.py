"""docx, pdf and eml through their loaders, on small files the tests build."""

from __future__ import annotations

import io

from ingest import clean_bytes
from ingest.offsets import check_accounting
from schemas.records import CleanDocument


def accounted(doc: CleanDocument, decoded: str) -> bool:
    return check_accounting(decoded, doc.text, doc.removed, doc.repairs, doc.offset_map) == []


def source_of(doc: CleanDocument) -> str:
    """The decoded source text, rebuilt from the clean text and the records (all must agree)."""
    pieces: list[tuple[int, str]] = []
    for seg in doc.offset_map:
        pieces.append((seg.source_start, doc.text[seg.clean_start : seg.clean_start + seg.length]))
    return "".join(p for _, p in sorted(pieces))


# ------------------------------------------------------------------ pdf


def build_pdf(pages: list[list[tuple[int, str]]], title: str = "Test Report") -> bytes:
    """A minimal valid PDF: each page a list of (y, line) drawn in Helvetica 11pt at x=72."""
    objects: list[bytes] = []
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    info_id = font_id + 1
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, lines in enumerate(pages):
        ops = []
        for y, line in lines:
            esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"BT /F1 11 Tf 72 {y} Td ({esc}) Tj ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(f"<< /Title ({title}) /Author (Ann Lee) /CreationDate (D:20220915) >>".encode())
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for k, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % k + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, info_id, xref)
    )
    return out.getvalue()


def report_pages() -> list[list[tuple[int, str]]]:
    header = (750, "Example Policy Review - Issue 4")
    pages = []
    body = [
        [
            "The summit of regional leaders took place in Samarkand last week and was watched",
            "closely by diplomats from many countries. Observers expected a show of unity, but",
            "the leaders did not",
        ],
        [
            "conclude with specific decisions, and the final declaration stayed vague about the",
            "war. Several delegations criticised the Western-",
        ],
        [
            "dominated order in their speeches, while others avoided the subject entirely.",
            "The next summit is planned for the following year in another member state.",
        ],
    ]
    for n, lines in enumerate(body, start=1):
        page = [header]
        page += [(650 - 14 * k, line) for k, line in enumerate(lines)]
        page.append((40, f"Page {n} of {len(body)}"))
        pages.append(page)
    return pages


def test_ingest_formats_pdf_headers_footers_and_page_breaks() -> None:
    doc = clean_bytes(build_pdf(report_pages()), source="r.pdf", filename="r.pdf")
    assert doc.media_type == "application/pdf"
    assert "Example Policy Review" not in doc.text
    assert "Page 2 of 3" not in doc.text
    assert "the leaders did not conclude with specific decisions" in doc.text
    assert "criticised the Westerndominated order" in doc.text
    assert "watched closely by diplomats" in doc.text
    kinds = {r.kind for r in doc.removed}
    assert "running_header" in kinds and "page_number" in kinds
    assert {r.kind for r in doc.repairs} >= {"paragraph_join", "line_join"}
    assert doc.metadata.authors == ["Ann Lee"]
    assert doc.metadata.published == "2022-09-15"


def test_ingest_formats_pdf_offsets_index_pdfminer_text() -> None:
    from ingest.loaders import load_pdf

    data = build_pdf(report_pages())
    decoded = load_pdf(data, "r.pdf").text
    doc = clean_bytes(data, source="r.pdf", filename="r.pdf")
    assert "\f" in decoded
    assert accounted(doc, decoded)


# ------------------------------------------------------------------ docx


def build_docx() -> bytes:
    from docx import Document

    d = Document()
    d.core_properties.title = "Summit notes"
    d.core_properties.author = "Ann Lee"
    d.add_heading("Xi Meets Putin in Samarkand", level=1)
    d.add_paragraph("By Ann Lee and Bo Chen")
    d.add_paragraph(
        "The two leaders met on Thursday at a regional summit in Uzbekistan, officials said."
    )
    d.add_paragraph("Advertisement")
    d.add_paragraph("They discussed trade, energy and security during a two-hour meeting.")
    d.add_paragraph("Share Facebook Twitter Email")
    d.add_paragraph("© 2022 Example News. All rights reserved.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_ingest_formats_docx_cleaned_with_metadata() -> None:
    from ingest.loaders import load_docx

    data = build_docx()
    doc = clean_bytes(data, source="n.docx", filename="n.docx")
    assert doc.text.startswith("Xi Meets Putin in Samarkand")
    assert "officials said." in doc.text and "two-hour meeting." in doc.text
    for noise in ("Advertisement", "Facebook", "All rights reserved", "By Ann Lee"):
        assert noise not in doc.text
    assert doc.metadata.authors == ["Ann Lee", "Bo Chen"]
    assert doc.metadata.rights == "© 2022 Example News. All rights reserved."
    assert accounted(doc, load_docx(data, "n.docx").text)


# ------------------------------------------------------------------ eml

EML = b"""From: Ann Lee <ann@example.org>
To: desk@example.org
Subject: Xi meets Putin in Samarkand
Date: Thu, 15 Sep 2022 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

The two leaders met on Thursday at a regional summit in Uzbekistan, officials said.

They discussed trade, energy and security during a two-hour meeting.

Sign up for our daily newsletter
"""


def test_ingest_formats_eml_body_and_headers() -> None:
    from ingest.loaders import load_email

    doc = clean_bytes(EML, source="m.eml", filename="m.eml")
    assert doc.media_type == "message/rfc822"
    assert "officials said." in doc.text and "two-hour meeting." in doc.text
    assert "newsletter" not in doc.text
    assert doc.metadata.title == "Xi meets Putin in Samarkand"
    assert doc.metadata.authors == ["Ann Lee"]
    assert doc.metadata.published == "2022-09-15"
    assert accounted(doc, load_email(EML, "m.eml").text)


def test_ingest_formats_docx_table_kept_as_rows() -> None:
    from docx import Document

    d = Document()
    d.add_heading("Three laptops tested", level=1)
    d.add_paragraph(
        "We ran the same benchmarks on three laptops over two weeks and list the results here."
    )
    table = d.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("Laptop", "Price"), ("Alpha 14", "$999"), ("Beta Pro", "$1,299")]):
        table.cell(r, 0).text = a
        table.cell(r, 1).text = b
    d.add_paragraph("The Alpha 14 is the best balance of speed, battery life and price for most.")
    buf = io.BytesIO()
    d.save(buf)
    doc = clean_bytes(buf.getvalue(), source="t.docx", filename="t.docx")
    assert "Laptop | Price\nAlpha 14 | $999\nBeta Pro | $1,299" in doc.text
    assert doc.metadata.model_extra is not None
    assert doc.metadata.model_extra["tables"][0]["rows"][2] == ["Beta Pro", "$1,299"]
