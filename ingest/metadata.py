"""Document metadata from the blocks the cleaners set aside: title, authors, published date
(ISO when parseable), source URL (repaired when broken by spaces or line breaks), rights."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from dateutil import parser as dateparser

from ingest import patterns as P
from ingest.cleaners import Cleaned, parse_byline, parse_name_line
from schemas.records import DocumentMetadata


def strip_markup(text: str) -> str:
    """'**Deal** <u>done</u>\\n now' -> 'Deal done now'"""
    text = P.MD_HEADING.sub("", text.strip())
    text = P.MD_LINK.sub(r"\1", text)
    text = P.INLINE_TAG.sub("", text)
    text = P.MD_EMPHASIS.sub(r"\2", text)
    text = P.BACKSLASH_ESCAPE.sub(r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def normalise_date(text: str) -> str | None:
    """The first date in `text` as an ISO date, or None.

    "By A. Name September 15, 2022" -> "2022-09-15"; "Just now" -> None
    """
    m = P.DATE.search(text)
    if not m:
        return None
    raw = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", m.group())
    try:
        dayfirst = bool(re.match(r"\d{1,2}[./]", raw))
        parsed = dateparser.parse(raw, dayfirst=dayfirst, default=datetime(2000, 1, 1))
    except (ValueError, OverflowError):
        return None
    return parsed.date().isoformat()


def repair_url(text: str) -> str | None:
    """A URL broken by stray spaces or line breaks, put back together; None if not a URL.

    "https://ex.org/a-b- c/1.html" -> "https://ex.org/a-b-c/1.html"
    """
    t = text.strip().strip("<>()[]")
    if not P.URL_START.match(t):
        return None
    pieces = t.split()
    url = pieces[0]
    for piece in pieces[1:]:
        # a stray space inside a URL splits it into pieces that still look like URL parts
        looks_like_part = bool(re.search(r"[-/_=&.]", piece.rstrip(".")))
        if url.endswith(".") or not looks_like_part or not P.URL_FRAGMENT.match(piece):
            break
        url += piece
    return url.rstrip(".,;")


def extract_metadata(cleaned: Cleaned, hints: dict[str, Any] | None = None) -> DocumentMetadata:
    """Metadata from the roles found by `clean_text`, falling back to the loader's hints
    (HTML meta tags, e-mail headers, document properties)."""
    hints = dict(hints or {})
    hint_title = hints.pop("title", None)
    hint_authors = list(hints.pop("authors", None) or [])
    hint_date = hints.pop("published", None)
    hint_url = hints.pop("source_url", None)
    hint_rights = hints.pop("rights", None)
    blocks = cleaned.blocks

    def texts(role: str) -> list[str]:
        return [blocks[i].text.strip() for i in sorted(cleaned.roles.get(role, []))]

    extra: dict[str, Any] = {}
    title = next((strip_markup(t) for t in texts("title")), None) or hint_title
    authors: list[str] = []
    published = None
    for t in texts("byline"):
        in_place = P.BYLINE_IN_PLACE.match(t)
        if in_place:
            authors += [n for n in P.NAME_SPLIT.split(in_place.group("names")) if n]
            continue
        authors += parse_byline(t) or parse_name_line(t) or []
        published = published or normalise_date(t)
    for t in texts("dateline"):
        published = published or normalise_date(t)
    for t in texts("published_chrome"):
        m = P.PUBLISHED_CHROME.match(t)
        value = m.group("value").strip() if m else t
        published = published or normalise_date(value)
        if not normalise_date(value):
            extra["published_raw"] = value
    source_url = None
    source_text = " ".join(texts("source"))
    m = P.SOURCE_LINE.match(source_text)
    value = m.group("value").strip() if m else source_text
    if value:
        source_url = repair_url(value)
        if source_url is None:
            extra["source_name"] = strip_markup(value)
    rights = " ".join(texts("rights")) or None
    if texts("disclaimer"):
        extra["disclaimer"] = " ".join(texts("disclaimer"))
    authors = authors or hint_authors
    published = published or (normalise_date(hint_date) if hint_date else None)
    source_url = source_url or hint_url
    rights = rights or hint_rights
    extra.update({k: v for k, v in hints.items() if v not in (None, "", [])})
    return DocumentMetadata(
        title=title,
        authors=list(dict.fromkeys(authors)),
        published=published,
        source_url=source_url,
        rights=rights,
        **extra,
    )
