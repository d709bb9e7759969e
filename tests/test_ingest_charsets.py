"""Decoding by the standards: BOM, declared encoding (HTTP, meta, XML), then detection; bytes that
do not decode are counted, never silently re-read in another codec."""

from __future__ import annotations

import pytest

from ingest import IngestError, clean_bytes
from ingest.charsets import (
    charset_from_content_type,
    count_replaced,
    declared_in_markup,
    decode_bytes,
    normalise_label,
)

POLISH = (
    "Atak na kłótnię o wyniki wyborów: opozycja zapowiada protesty w całym kraju, "
    "a rząd odpowiada, że żadnych nieprawidłowości nie stwierdzono."
)
GERMAN = "Die Maßnahmen der Regierung stießen auf Kritik, sagte der Sprecher in München."


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"),
        ("UTF8", "utf-8"),
        ("windows-1250", "cp1250"),
        ("ISO-8859-1", "cp1252"),
        ("latin1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("iso-8859-2", "iso8859-2"),
        ("no-such-charset", None),
        (None, None),
    ],
)
def test_ingest_charsets_label_normalised_per_whatwg(label: str | None, codec: str | None) -> None:
    assert normalise_label(label) == codec


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b'<html><head><meta charset="windows-1250">', ("windows-1250", "meta")),
        (b"<meta charset=utf-8>", ("utf-8", "meta")),
        (
            b'<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-2">',
            ("ISO-8859-2", "meta"),
        ),
        (b'<?xml version="1.0" encoding="ISO-8859-15"?><html>', ("ISO-8859-15", "xml")),
        (b"<html><head><title>none</title>", (None, None)),
    ],
)
def test_ingest_charsets_declaration_found_in_markup(
    head: bytes, found: tuple[str | None, str | None]
) -> None:
    assert declared_in_markup(head) == found


def test_ingest_charsets_content_type_header() -> None:
    assert charset_from_content_type("text/html; charset=ISO-8859-2") == "ISO-8859-2"
    assert charset_from_content_type('text/html; charset="utf-8"') == "utf-8"
    assert charset_from_content_type("text/html") is None


def test_ingest_charsets_count_replaced_counts_each_bad_byte() -> None:
    assert count_replaced(b"caf\xc3\xa9 \xff\xfe!", "utf-8") == ("café \ufffd\ufffd!", 2)
    assert count_replaced(b"plain", "utf-8") == ("plain", 0)


def test_ingest_charsets_utf8_with_one_bad_byte_stays_utf8() -> None:
    """One broken byte must not turn the whole text into cp1252 mojibake."""
    data = (POLISH + " " + GERMAN).encode("utf-8")
    broken = data[:40] + b"\xff" + data[40:]
    decoded = decode_bytes(broken, "p.txt")
    assert decoded.encoding == "utf-8" and decoded.replaced == 1
    assert "kłótnię" in decoded.text and "Maßnahmen" in decoded.text
    assert "Ã" not in decoded.text and "\ufffd" in decoded.text
    doc = clean_bytes(broken, source="p.txt", filename="p.txt")
    assert "kłótnię" in doc.text
    assert doc.metadata.model_extra is not None
    assert doc.metadata.model_extra["decoding"] == {
        "encoding": "utf-8",
        "method": "utf-8",
        "replaced_bytes": 1,
    }


def test_ingest_charsets_windows_1250_page_with_meta_charset() -> None:
    page = (
        '<html><head><meta charset="windows-1250"><title>Kłótnia</title></head><body><article>'
        f"<h1>Kłótnia o wybory</h1><p>{POLISH}</p><p>{POLISH.replace('Atak', 'Drugi atak')}</p>"
        "</article></body></html>"
    ).encode("cp1250")
    doc = clean_bytes(page, source="pl.html", filename="pl.html")
    assert "kłótnię o wyniki wyborów" in doc.text
    assert "k³ótni" not in doc.text and "Ã" not in doc.text
    assert doc.metadata.model_extra is not None
    assert doc.metadata.model_extra["decoding"] == {"encoding": "cp1250", "method": "meta"}


def test_ingest_charsets_http_header_beats_meta() -> None:
    data = ('<meta charset="utf-8"><p>' + GERMAN + "</p>").encode("iso-8859-15")
    decoded = decode_bytes(data, "d.html", declared="ISO-8859-15", markup=True)
    assert decoded.method == "http" and "Maßnahmen" in decoded.text


def test_ingest_charsets_xml_declaration() -> None:
    data = ('<?xml version="1.0" encoding="ISO-8859-2"?><html><p>' + POLISH + "</p></html>").encode(
        "iso-8859-2"
    )
    decoded = decode_bytes(data, "x.html", markup=True)
    assert decoded.method == "xml" and "kłótnię" in decoded.text


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_ingest_charsets_bom_first(codec: str) -> None:
    text = "\ufeff" + GERMAN if codec == "utf-16-be" else GERMAN
    decoded = decode_bytes(text.encode(codec), "u.txt")
    assert decoded.method == "bom" and decoded.text == GERMAN


def test_ingest_charsets_utf16_with_bom_through_clean() -> None:
    article = f"Kritik an der Regierung\n\n{GERMAN}\n\n{GERMAN.replace('Die', 'Auch die')}\n"
    doc = clean_bytes(article.encode("utf-16"), source="u.txt", filename="u.txt")
    assert "Maßnahmen der Regierung stießen" in doc.text


def test_ingest_charsets_cp1252_smart_quotes_detected() -> None:
    text = (
        "“We didn’t expect the talks to end so soon,” the minister said – and added that "
        "the café’s owners were not consulted about the €5 million plan at all."
    )
    decoded = decode_bytes(text.encode("cp1252"), "q.txt")
    assert decoded.text == text and decoded.replaced == 0
    assert decoded.method == "detected"


def test_ingest_charsets_declared_utf8_with_bad_byte_counts_it() -> None:
    page = ('<meta charset="utf-8"><p>' + GERMAN + "</p>").encode("utf-8")
    broken = page.replace("ß".encode(), b"\xdf", 1)  # one latin-1 byte in a UTF-8 page
    decoded = decode_bytes(broken, "b.html", markup=True)
    assert decoded.encoding == "utf-8" and decoded.method == "meta" and decoded.replaced == 1
    assert "stießen" in decoded.text


def test_ingest_charsets_mostly_undecodable_is_refused() -> None:
    with pytest.raises(IngestError) as info:
        decode_bytes(
            b'<meta charset="utf-8">' + bytes(range(0x80, 0x100)) * 4, "z.html", markup=True
        )
    assert info.value.kind == "undecodable"


def test_ingest_charsets_page_labelled_utf8_but_cp1252_is_detected() -> None:
    """A wrong label (common on old sites): detection wins when it decodes cleanly, and the
    label is kept in the provenance."""
    page = ('<meta charset="utf-8"><p>' + GERMAN + " “Zitat” – Ende.</p>").encode("cp1252")
    decoded = decode_bytes(page, "w.html", markup=True)
    assert "Maßnahmen" in decoded.text and "“Zitat”" in decoded.text
    assert decoded.replaced == 0 and decoded.method == "detected"
    assert decoded.provenance()["declared"] == "utf-8"


def test_ingest_charsets_charset_given_with_the_source_wins() -> None:
    text = f"Kritik an der Regierung\n\n{GERMAN}\n\n{GERMAN.replace('Die', 'Auch die')}\n"
    doc = clean_bytes(
        text.encode("iso-8859-15"), source="h.txt", filename="h.txt", charset="ISO-8859-15"
    )
    assert "Maßnahmen der Regierung stießen" in doc.text
    assert doc.metadata.model_extra is not None
    assert doc.metadata.model_extra["decoding"]["method"] == "http"
