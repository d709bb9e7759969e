"""Bytes -> text the way the standards say: a byte-order mark first, then the encoding the source
declares (an HTTP header when it came with one, `<meta charset>` / `http-equiv`, an XML
declaration), then detection on the bytes. A source that does not decode cleanly is decoded with
the best candidate and the replaced bytes are counted, never silently re-read in another codec."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from ingest.errors import IngestError

BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)

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

# the WHATWG Encoding Standard maps these labels to windows-1252 (browsers decode them so, and
# pages labelled latin-1 routinely hold cp1252 quotes); UTF-16 labels in a byte-scanned
# declaration cannot be true (the scan found ASCII), so they mean UTF-8
WHATWG_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "x-user-defined": "cp1252",
}

# the HTML prescan looks at the first 1024 bytes; real pages put a long <head> first, so we look
# further (a declaration later than this is not honoured by browsers either way)
PRESCAN_BYTES = 4096
META_CHARSET = re.compile(rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
XML_DECLARATION = re.compile(rb"""^\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
LONE_SURROGATE = re.compile("[\udc80-\udcff]")
UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


@dataclass(frozen=True)
class Decoded:
    """The text and how it was decoded: `method` is bom, http, meta, xml, utf-8 or detected;
    `replaced` counts the source bytes that could not be decoded and became U+FFFD."""

    text: str
    encoding: str
    method: str
    replaced: int = 0
    declared: str | None = None

    def provenance(self) -> dict[str, object]:
        """The record kept in the document's metadata under `decoding`."""
        out: dict[str, object] = {"encoding": self.encoding, "method": self.method}
        if self.declared and normalise_label(self.declared) != self.encoding:
            out["declared"] = self.declared
        if self.replaced:
            out["replaced_bytes"] = self.replaced
        return out


def normalise_label(label: str | None) -> str | None:
    """An encoding label as a Python codec name per WHATWG, or None when unknown.

    "ISO-8859-1" -> "cp1252"; "windows-1250" -> "cp1250"; "utf8" -> "utf-8"; "nope" -> None
    """
    if not label:
        return None
    key = label.strip().strip("\"'").casefold()
    key = WHATWG_ALIASES.get(key, key)
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    return WHATWG_ALIASES.get(name, name)


def charset_from_content_type(value: str | None) -> str | None:
    """'text/html; charset=ISO-8859-2' -> 'ISO-8859-2'; 'text/html' -> None"""
    if not value:
        return None
    m = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", value, re.I)
    return m.group(1) if m else None


def declared_in_markup(data: bytes) -> tuple[str | None, str | None]:
    """The encoding an HTML/XML document declares in its first bytes: (label, where).

    b'<meta charset="windows-1250">' -> ("windows-1250", "meta")
    b'<?xml version="1.0" encoding="ISO-8859-2"?>' -> ("ISO-8859-2", "xml")
    """
    head = data[:PRESCAN_BYTES]
    m = XML_DECLARATION.match(head)
    if m:
        return m.group(1).decode("ascii"), "xml"
    m = META_CHARSET.search(head)
    if m:
        return m.group(1).decode("ascii"), "meta"
    return None, None


def count_replaced(data: bytes, codec: str) -> tuple[str, int]:
    """Decode, each undecodable byte becoming U+FFFD, and count them.

    (b"caf\\xc3\\xa9 \\xff", "utf-8") -> ("café \\ufffd", 1)
    """
    # surrogateescape marks each bad byte with a lone surrogate, which a decoder never yields
    # otherwise, so they can be counted exactly and then replaced
    text = data.decode(codec, errors="surrogateescape")
    replaced = len(LONE_SURROGATE.findall(text))
    return (LONE_SURROGATE.sub("\ufffd", text) if replaced else text), replaced


def mostly_utf8(data: bytes, invalid: int) -> bool:
    """UTF-8 with a few broken bytes, as opposed to a legacy single-byte encoding: valid
    multi-byte sequences are there and outnumber the invalid bytes clearly."""
    valid = len(UTF8_MULTIBYTE.findall(data))
    return valid > 0 and invalid <= max(2, valid // 3)


def detect(data: bytes) -> str | None:
    """charset-normalizer's best guess as a codec name, or None."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return normalise_label(best.encoding) if best is not None else None


def decode_bytes(
    data: bytes, source: str, *, declared: str | None = None, markup: bool = False
) -> Decoded:
    """Bytes -> Decoded: BOM, then `declared` (the HTTP charset the source came with), then the
    markup's own declaration when `markup`, then UTF-8, then detection. Raises IngestError
    (binary, undecodable) naming `source`.

    b"\\xef\\xbb\\xbfcaf\\xc3\\xa9" -> "café" (bom); b"caf\\xc3\\xa9 \\xff" -> "café \\ufffd"
    (utf-8, 1 replaced)
    """
    decoded = _decode(data, source, declared, markup)
    controls = len(CONTROL_CHARS.findall(decoded.text))
    if controls > max(2, len(decoded.text) // 50):
        raise IngestError(
            "undecodable",
            f"{controls} control characters in {len(decoded.text)}: not a text encoding",
            source,
        )
    if decoded.replaced > max(8, len(data) // 20):
        raise IngestError(
            "undecodable",
            f"{decoded.replaced} of {len(data)} bytes are not valid {decoded.encoding}",
            source,
        )
    return decoded


def _decode(data: bytes, source: str, declared: str | None, markup: bool) -> Decoded:
    for bom, bom_codec in BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data[len(bom) :].decode(bom_codec), bom_codec, "bom")
            except UnicodeDecodeError as exc:
                raise IngestError(
                    "undecodable",
                    f"has a {bom_codec} byte-order mark but is not {bom_codec}: {exc}",
                    source,
                ) from exc
    if data.startswith(BINARY_MAGIC) or b"\x00" in data[:8192]:
        raise IngestError("binary", "is binary data, not text", source)
    candidates: list[tuple[str | None, str]] = [(declared, "http")]
    if markup:
        in_markup, where = declared_in_markup(data)
        candidates.append((in_markup, where or "meta"))
    for label, method in candidates:
        codec = normalise_label(label)
        if codec is None:
            continue
        if codec.startswith(("utf-16", "utf-32")):
            codec = "utf-8"  # an ASCII-readable declaration cannot be in UTF-16 (WHATWG)
        text, replaced = count_replaced(data, codec)
        if replaced and not (codec == "utf-8" and mostly_utf8(data, replaced)):
            # the bytes disagree with the label (a page that says UTF-8 but is cp1252, cp1252's
            # undefined 0x81...): detection decides when it decodes with fewer replacements;
            # a UTF-8 page with a few broken bytes keeps its label and counts them
            fallback = _undeclared(data, label)
            if fallback.replaced < replaced:
                return fallback
        return Decoded(text, codec, method, replaced, label)
    return _undeclared(data, None)


def _undeclared(data: bytes, declared: str | None) -> Decoded:
    try:
        return Decoded(data.decode("utf-8"), "utf-8", "utf-8", 0, declared)
    except UnicodeDecodeError:
        pass
    text, invalid = count_replaced(data, "utf-8")
    if mostly_utf8(data, invalid):
        return Decoded(text, "utf-8", "utf-8", invalid, declared)
    codec = detect(data)
    if codec is not None:
        text, replaced = count_replaced(data, codec)
        if replaced <= invalid:
            return Decoded(text, codec, "detected", replaced, declared)
    return Decoded(text, "utf-8", "utf-8", invalid, declared)
