"""Cleaners: small pure detectors that find noise in the decoded source text, and `clean_text`,
which applies them in a stated order and returns edits (removed spans with a kind, repairs).

The source is seen as blocks (runs of non-blank lines; blank lines and form feeds separate them).
A detector labels whole blocks (a banner, a caption, an embed) or returns inline edits (markup,
escapes, hyphenation). Nothing is deleted blindly: every change is an `Edit` on source offsets,
so `offsets.apply_edits` can build the clean text and its map back to the source."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest import patterns as P
from ingest.offsets import Edit


@dataclass(frozen=True)
class Block:
    """A run of non-blank lines: `text == source[start:end]`, on page `page` (0-based)."""

    start: int
    end: int
    text: str
    page: int = 0

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


@dataclass
class Cleaned:
    """What the cleaners decided: edits on the source, and blocks by role for metadata."""

    edits: list[Edit]
    labels: dict[int, str]
    blocks: list[Block]
    roles: dict[str, list[int]] = field(default_factory=dict)


# ------------------------------------------------------------------ block helpers


def split_blocks(text: str) -> list[Block]:
    """Split text into blocks with their source offsets and page numbers (form feeds).

    "a\\nb\\n\\nc" -> [Block(0, 3, "a\\nb"), Block(5, 6, "c")]
    """
    blocks = []
    page = 0
    last = 0
    for m in P.BLOCK.finditer(text):
        page += text.count("\f", last, m.start())
        last = m.start()
        raw = m.group()
        start = m.start() + len(raw) - len(raw.lstrip())
        end = m.start() + len(raw.rstrip())
        blocks.append(Block(start, end, text[start:end], page))
    return blocks


def ends_sentence(text: str) -> bool:
    """Text whose last character (before closing quotes/brackets) ends a sentence.

    'He left."' -> True; "A Heading" -> False
    """
    t = text.rstrip().rstrip("\"'”’)]")
    return bool(t) and t[-1] in ".!?…"


def count_words(text: str) -> int:
    """'Xi meets Putin.' -> 3"""
    return len(P.WORD.findall(text))


def is_heading_like(text: str) -> bool:
    """A single short line that does not end a sentence: a title, a section or nav line.

    "A Symbolic Meeting" -> True; "He left." -> False
    """
    t = text.strip()
    if "\n" in t or not t or len(t) > 200 or count_words(t) > 25:
        return False
    if P.LIST_ITEM.match(t):
        return False
    return not re.search(r"[.;,]\s*$", t)


def is_narrative(text: str) -> bool:
    """A block of running prose: long enough and ending a sentence, or long anyway.

    "Xi met Putin in Samarkand on Thursday for talks." -> True; "Facts" -> False
    """
    t = text.strip()
    words = count_words(t)
    # a question on one line is usually a heading ("What did Putin achieve?"), not prose
    ends = bool(ends_sentence(t)) and not ("\n" not in t and t.rstrip("\"'”’ ").endswith("?"))
    return (words >= 8 and ends) or words >= 30


def ends_open(text: str) -> bool:
    """Text that stops mid-sentence: its last character is a letter, digit, comma or hyphen.

    "the summit did not" -> True; "It ended." -> False
    """
    t = text.rstrip()
    return bool(t) and (t[-1].isalnum() or t[-1] in ",-–")


def normalise_line(text: str) -> str:
    """Key for comparing repeated lines: case-folded, digits as #, spaces collapsed.

    "Page 3  of 6" -> "page # of #"
    """
    return re.sub(r"\s+", " ", re.sub(r"\d+", "#", text.strip().casefold()))


def title_similarity(a: str, b: str) -> float:
    """Word-set overlap of two titles (1.0 = the same words).

    ("Putin meets Xi", "Putin meets Xi again") -> 0.75
    """
    wa = {w.casefold() for w in P.WORD.findall(a)}
    wb = {w.casefold() for w in P.WORD.findall(b)}
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


# ------------------------------------------------------------------ single-block detectors


def is_toolbar(text: str) -> bool:
    """A share/cite/print bar: every word is a social or tool word.

    "Share  Facebook  Twitter  Email" -> True; "Share prices fell." -> False
    """
    t = text.strip()
    if len(t) > 120 or ends_sentence(t):
        return False
    tokens = [w.casefold() for w in re.findall(r"[^\W\d_][\w-]*", t)]
    if len(tokens) >= 2 and all(w in P.SOCIAL_TOKENS for w in tokens):
        return True
    return bool(P.TOOLBAR_START.match(t))


def is_navigation(text: str) -> bool:
    """A menu, breadcrumb or skip link: short items between separators, no sentence.

    "News | Opinion | Sport" -> True; "Home > World > Asia" -> True; "A – B said." -> False
    """
    t = text.strip()
    if P.SKIP_LINK.match(t):
        return True
    if len(t) > 200 or ends_sentence(t):
        return False
    items = [i for i in P.NAV_SEPARATORS.split(t) if i.strip()]
    return len(items) >= 3 and all(count_words(i) <= 4 for i in items)


def is_cookie_banner(text: str) -> bool:
    """'We use cookies to improve ... Accept all' -> True"""
    return len(text) <= 600 and bool(P.COOKIE.search(text))


def is_donation_appeal(text: str) -> bool:
    """'Donate now to support our journalism!' -> True; 'He donated $5m to the fund.' -> False"""
    t = text.strip()
    if len(t) > 200 or not P.DONATION.search(t):
        return False
    imperative = re.match(r"^(?:\W*\w+\W+){0,3}(?:make|donate|give|support|become|help)\b", t, re.I)
    return t.endswith("!") or bool(imperative)


def is_source_line(text: str) -> bool:
    """'Source: https://example.org/a' or 'Source: AP' -> True; a sentence -> False"""
    m = P.SOURCE_LINE.match(text.strip())
    if not m:
        return False
    value = m.group("value").strip()
    if not value or P.URL_START.match(value):
        return True
    return len(value) <= 60 and "\n" not in value and not ends_sentence(value)


def is_page_of_line(text: str) -> bool:
    """'Page N of M' with a short running title on the same line.

    "Example Review | Page 3 of 9" -> True; "Turn to page 3 of the report for details." -> False
    """
    t = text.strip()
    if len(t) > 140 or ends_sentence(t):
        return False
    m = P.PAGE_OF_LINE.match(t)
    if not m:
        return False
    rest = m.group("pre") or m.group("post") or ""
    return count_words(rest) <= 10 and not P.STARTS_LOWER.match(rest)


def is_series_line(text: str) -> bool:
    """A working-paper series line: 'Working Paper No. 12/2022', 'ISSN 1234-5678'.

    "CSAG Working Paper Series No. 4" -> True
    "The working paper series began in 1990 and now has 200 titles." -> False
    """
    t = text.strip()
    if len(t) > 140 or ends_sentence(t) or not re.search(r"\d|series", t, re.I):
        return False  # "Background Notes" alone is a section heading, not a series line
    return bool(P.SERIES_LINE.match(t))


def is_related_line(text: str) -> bool:
    """'RELATED: Putin meets Xi in Samarkand' -> True; 'Related: he said it was.' -> False"""
    t = text.strip()
    if not P.RELATED_INLINE.match(t):
        return False
    rest = t.split(":", 1)[1].strip()
    # a headline: not a finished sentence of prose (a link title may end in "?" or "!")
    return count_words(rest) <= 25 and not (t.endswith(".") and count_words(rest) > 8)


def _has(low: str, *words: str) -> bool:
    """A cheap gate before the costlier searches: any of `words` in the case-folded text."""
    return any(w in low for w in words)


# the tests of `classify_block`, most specific first; each gets the stripped block, whether it
# is one line, and its case-folded text (built once per module, not once per block)
BLOCK_TESTS: tuple[tuple[str, Callable[[str, bool, str], bool]], ...] = (
    ("placeholder", lambda s, one_line, low: one_line and bool(P.PLACEHOLDER.match(s))),
    ("page_number", lambda s, one_line, low: one_line and bool(P.PAGE_NUMBER.match(s))),
    ("advertisement", lambda s, one_line, low: one_line and bool(P.ADVERTISEMENT.match(s))),
    ("ad_slot", lambda s, one_line, low: one_line and bool(P.AD_SLOT.match(s))),
    ("embed", lambda s, one_line, low: one_line and bool(P.SOCIAL_ATTRIBUTION.match(s))),
    ("navigation", lambda s, one_line, low: one_line and is_navigation(s)),
    ("page_header", lambda s, one_line, low: one_line and bool(P.PAGE_HEADER_WITH_NUMBER.match(s))),
    ("page_header", lambda s, one_line, low: one_line and is_page_of_line(s)),
    ("php_error", lambda s, one_line, low: ".php" in low and bool(P.PHP_ERROR.match(s))),
    ("series_line", lambda s, one_line, low: one_line and is_series_line(s)),
    ("related_links", lambda s, one_line, low: one_line and is_related_line(s)),
    ("table_of_contents", lambda s, one_line, low: one_line and bool(P.TOC_HEADING.match(s))),
    (
        "read_more",
        lambda s, one_line, low: one_line and len(s) <= 200 and bool(P.READ_MORE.match(s)),
    ),
    (
        "share_bar",
        lambda s, one_line, low: one_line and len(s) <= 100 and bool(P.FOLLOW_US.match(s)),
    ),
    ("comments_bar", lambda s, one_line, low: one_line and bool(P.COMMENTS_BAR.match(s))),
    ("newsletter", lambda s, one_line, low: len(s) <= 200 and bool(P.NEWSLETTER.search(s))),
    ("cookie_banner", lambda s, one_line, low: _has(low, "cookie") and is_cookie_banner(s)),
    ("share_bar", lambda s, one_line, low: is_toolbar(s)),
    ("tags", lambda s, one_line, low: len(s) <= 300 and bool(P.TAGS.match(s))),
    (
        "rights",
        lambda s, one_line, low: (
            len(s) <= 500
            and _has(
                low,
                "copyright",
                "©",
                "(c)",
                "rights reserved",
                "reprinted",
                "not be re",
                "prawa zastrzeżone",
                "rechte vorbehalten",
                "droits réservés",
                "derechos reservados",
                "rättigheter förbehållna",
            )
            and bool(P.RIGHTS.search(s))
        ),
    ),
    (
        "disclaimer",
        lambda s, one_line, low: (
            len(s) <= 700
            and _has(low, "necessarily", "views expressed", "of the author")
            and bool(P.DISCLAIMER.search(s))
        ),
    ),
    ("source", lambda s, one_line, low: is_source_line(s)),
    (
        "published_chrome",
        lambda s, one_line, low: one_line and len(s) <= 100 and bool(P.PUBLISHED_CHROME.match(s)),
    ),
    (
        "banner",
        lambda s, one_line, low: (
            _has(low, "donat", "support", "gift", "contribution", "become a")
            and is_donation_appeal(s)
        ),
    ),
)


def classify_block(text: str) -> str | None:
    """The noise kind of a block judged on its own, or None. Order: most specific first.

    "[ site banner ]" -> "placeholder"; "Page 3 of 6" -> "page_number"; "Xi met Putin." -> None
    """
    t = text.strip()
    one_line = "\n" not in t
    low = t.casefold()

    for kind, test in BLOCK_TESTS:
        if test(t, one_line, low):
            return kind
    return None


def is_caption(text: str) -> bool:
    """A photo caption: starts with a viewer word, or ends with a photo credit.

    "full screen Putin and Xi. Photo: A. Name/AP" -> True; "Xi met Putin." -> False
    """
    t = text.strip()
    if "\n" in t or len(t) > 700:
        return False
    if P.CAPTION_UI.match(t):
        return True
    m = P.CAPTION_CREDIT.search(t[-240:])  # a credit is at the end; do not scan the whole text
    if not m:
        return False
    if m.group().startswith("**"):
        return bool(P.CREDIT_WORDS.search(m.group()))
    return True


# ------------------------------------------------------------------ multi-block detectors


def label_single_blocks(blocks: list[Block]) -> dict[int, str]:
    """Label every block that is noise on its own shape (see `classify_block`)."""
    labels = {}
    for i, b in enumerate(blocks):
        kind = classify_block(b.text)
        if kind is None and is_caption(b.text):
            kind = "caption"
        if kind is not None:
            labels[i] = kind
    return labels


def label_embeds(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """An embed marker, the post after it, and the `— Name (@handle) date` line; a post with a
    social link right before an attribution line even without a marker."""
    out: dict[int, str] = {}
    for i, b in enumerate(blocks):
        t = b.text.strip()
        if P.EMBED_MARKER.match(t):
            out[i] = "embed"
            end = next(
                (
                    j
                    for j in range(i + 1, min(i + 5, len(blocks)))
                    if P.SOCIAL_ATTRIBUTION.match(blocks[j].text.strip())
                ),
                None,
            )
            if end is not None:
                out.update({j: "embed" for j in range(i + 1, end + 1)})
            elif i + 1 < len(blocks) and (
                P.SOCIAL_LINK.search(blocks[i + 1].text)
                or P.HANDLE_OR_TAG.search(blocks[i + 1].text)
            ):
                out[i + 1] = "embed"
        elif P.SOCIAL_ATTRIBUTION.match(t):
            out[i] = "embed"
            if i > 0 and i - 1 not in labels and P.SOCIAL_LINK.search(blocks[i - 1].text):
                out[i - 1] = "embed"
        elif P.SOCIAL_LINK.fullmatch(t):
            out[i] = "embed"
    return out


def label_source_continuations(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """A `Source:` / `Original url:` line with its URL on the next line(s)."""
    out: dict[int, str] = {}
    for i, b in enumerate(blocks):
        if labels.get(i) != "source":
            continue
        m = P.SOURCE_LINE.match(b.text.strip())
        if m and not m.group("value").strip():
            j = i + 1
            if j < len(blocks) and P.URL_START.match(blocks[j].text.strip()):
                out[j] = "source"
    return out


def label_related_lists(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """A 'Related' / 'Most read' heading and the run of short link titles under it."""
    out: dict[int, str] = {}
    for i, b in enumerate(blocks):
        lines = [line.strip() for line in b.lines]
        if i in labels or not P.RELATED_HEADING.match(P.MD_HEADING.sub("", lines[0])):
            continue
        if any(len(line) > 160 or is_narrative(line) for line in lines[1:]):
            continue
        out[i] = "related_links"
        for j in range(i + 1, len(blocks)):
            t = blocks[j].text.strip()
            if j in labels:
                continue
            if (is_narrative(t) and "\n" not in t) or is_contact_block(t):
                break
            if all(len(line) <= 160 for line in t.split("\n")):
                out[j] = "related_links"
            else:
                break
    return out


def find_header(blocks: list[Block], labels: dict[int, str]) -> tuple[dict[int, str], dict]:
    """Title, navigation lines above it, a repeated title, byline and dateline in the opening
    blocks (up to the first paragraph of prose). The title stays in the text; the others go."""
    out: dict[int, str] = {}
    roles: dict[str, list[int]] = {}
    zone: list[int] = []
    for i, b in enumerate(blocks[:40]):
        if i in labels:
            continue
        if is_narrative(b.text) and not P.BYLINE.match(b.text.strip()):
            break
        zone.append(i)
    byline_at = None
    # date lines all through the text are a listing's fields (events by date), not a dateline
    listing = sum(1 for b in blocks if P.DATE_LINE.match(b.text.strip())) >= 3
    for i in zone:
        t = blocks[i].text.strip()
        if parse_byline(t) is not None:
            out[i] = "byline"
            byline_at = i if byline_at is None else byline_at
        elif P.DATE_LINE.match(t) and not listing:
            out[i] = "dateline"
            byline_at = i if byline_at is None else byline_at
    heads = [i for i in zone if i not in out and is_heading_like(blocks[i].text)]
    heads = [i for i in heads if not blocks[i].text.strip().endswith(":")] or heads
    # "Jane Smith in Brussels" under a heading: a byline with a place
    for i in heads[1:]:
        if byline_at is None or i < byline_at:
            if P.BYLINE_IN_PLACE.match(blocks[i].text.strip()):
                out[i] = "byline"
                byline_at = i if byline_at is None else min(i, byline_at)
    heads = [i for i in heads if i not in out]
    title = None
    if byline_at is not None:
        before = [i for i in heads if i < byline_at]
        title = before[-1] if before else None
        # title then a longer standfirst, right next to each other: the first is the title
        if title is not None and len(before) >= 2 and before[-2] == title - 1:
            if count_words(blocks[title].text) >= 1.25 * count_words(blocks[title - 1].text):
                title = before[-2]
    if title is None and heads:
        title = heads[0]
    # the same title given twice in slightly different forms: the first one is the title
    while title is not None and heads.index(title) > 0:
        earlier = heads[heads.index(title) - 1]
        if title_similarity(blocks[earlier].text, blocks[title].text) < 0.7:
            break
        title = earlier
    if title is None:
        return out, roles
    roles["title"] = [title]
    title_text = blocks[title].text
    for i in zone:
        if i in out or i == title:
            continue
        t = blocks[i].text.strip()
        if i < title and is_heading_like(t) and is_chrome_line(t):
            out[i] = "navigation"
        elif i > title and is_heading_like(t) and title_similarity(t, title_text) >= 0.7:
            out[i] = "duplicate_title"
    # an author line without "By" right under the title
    after = [i for i in zone if i > title and i not in out]
    if (
        after
        and "byline" not in out.values()
        and parse_name_line(blocks[after[0]].text, title_text)
    ):
        out[after[0]] = "byline"
    roles["byline"] = [i for i, k in out.items() if k == "byline"]
    roles["dateline"] = [i for i, k in out.items() if k == "dateline"]
    return out, roles


def is_chrome_line(text: str) -> bool:
    """A line above the title that is site chrome: a few words, a kicker ending in a colon,
    all capitals, or a menu. Longer lines there may be content and stay.

    "Weapons of Mass Destruction (WMD)" -> True
    "Talks end without agreement as the dispute deepens" -> False
    """
    t = text.strip()
    return count_words(t) <= 5 or t.endswith(":") or t.isupper() or is_navigation(t)


def parse_byline(text: str) -> list[str] | None:
    """Authors of a 'By ...' line, or None when the line is not a byline.

    "By Reid Standish September 15, 2022" -> ["Reid Standish"]; "By the end, he left." -> None
    """
    t = text.strip()
    if "\n" in t or len(t) > 160:
        return None
    for shape in (P.BYLINE, P.BYLINE_LABEL, P.BYLINE_WORDS_BY, P.BYLINE_NAME_DATE):
        m = shape.match(t)
        if not m:
            continue
        names = names_of(m.group("names"))
        if shape is P.BYLINE_NAME_DATE and names and any(count_words(n) < 2 for n in names):
            continue  # "Markets | March 3, 2023": a section and a date
        if names:
            return names
    return parse_name_role(t)


def names_of(text: str) -> list[str] | None:
    """Person names in a byline's names part, each with a trailing role or place dropped:
    'Ann Lee, Senior Fellow, and Bo Chen' -> ['Ann Lee', 'Bo Chen']; 'the end' -> None"""
    text = re.sub(r"\s*[|•·–—]\s*.*$", "", text.strip())
    names: list[str] = []
    for part in P.NAME_SPLIT.split(text):
        n = part.strip(" .,")
        if not n:
            continue
        if P.ROLE_WORDS.search(n) and names:
            continue  # "Ann Lee, Senior Fellow": the role after a name
        if not P.PERSON_NAME.match(n) or count_words(n) > 5:
            return None
        names.append(n)
    return names or None


def parse_name_role(text: str) -> list[str] | None:
    """'Name, Role' bylines: 'Ann Lee, Senior Fellow at PISM' -> ['Ann Lee'].

    "Paris, France" -> None (no role word); "Ann Lee, who leads the team, said" -> None
    """
    m = re.match(r"^(?P<name>[^,]{3,60}),\s*(?P<role>[^,]{2,100}(?:,[^,]{2,60})?)$", text)
    if not m or ends_sentence(text) or not P.ROLE_WORDS.search(m.group("role")):
        return None
    name = m.group("name").strip()
    words = name.split()
    person = 2 <= len(words) <= 4 and all(
        re.fullmatch(r"[A-ZÀ-Þ][a-zà-ÿ'’]+(?:-[A-ZÀ-Þ][a-zà-ÿ'’]+)?|[A-Z]\.", w) for w in words
    )
    return [name] if person and not P.ROLE_WORDS.search(name) else None


def parse_name_line(text: str, title: str = "") -> list[str] | None:
    """Authors of a bare author line ('Ann Lee, Bo Chen' or 'Ann Lee, LTC, Army'), else None.

    "Agnieszka Legucka, Marcin Przychodniak" -> ["Agnieszka Legucka", "Marcin Przychodniak"]
    """
    t = text.strip()
    if "\n" in t or len(t) > 120 or ends_sentence(t):
        return None
    title_words = {w.casefold() for w in P.WORD.findall(title)}
    parts = [p.strip() for p in P.NAME_SPLIT.split(t) if p.strip()]
    names: list[str] = []
    for k, part in enumerate(parts):
        words = part.split()
        person = 2 <= len(words) <= 4 and all(
            re.fullmatch(r"[A-ZÀ-Þ][a-zà-ÿ'’]+(?:-[A-ZÀ-Þ][a-zà-ÿ'’]+)?|[A-Z]\.", w) for w in words
        )
        if person and k > 0 and P.ROLE_WORDS.search(part):
            continue  # "Ann Lee, Senior Fellow": a role, not a second author
        if person and not {w.casefold() for w in words} & title_words:
            names.append(part)
        elif k == 0 or count_words(part) > 4:
            return None
    return names or None


def label_page_edges(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """Running headers and footers: short lines at the top or bottom of pages that recur on at
    least half of the pages (digits ignored, so 'Report 2 of 9' matches 'Report 3 of 9')."""
    pages = sorted({b.page for b in blocks})
    if len(pages) < 2:
        return {}
    first: dict[int, list[int]] = {}
    last: dict[int, list[int]] = {}
    for i, b in enumerate(blocks):
        if i in labels:
            continue
        first.setdefault(b.page, [])
        if len(first[b.page]) < 2:
            first[b.page].append(i)
        last.setdefault(b.page, []).append(i)
    edges = {p: (first.get(p, []), last.get(p, [])[-2:]) for p in pages}
    seen: Counter[str] = Counter()
    for top, bottom in edges.values():
        keys = {normalise_line(blocks[i].text) for i in top + bottom if len(blocks[i].text) <= 120}
        seen.update(keys)
    need = max(2, (len(pages) + 1) // 2)
    by_key: dict[str, list[str]] = {}
    for top, bottom in edges.values():
        for i in top + bottom:
            by_key.setdefault(normalise_line(blocks[i].text), []).append(blocks[i].text)
    out: dict[int, str] = {}
    for top, bottom in edges.values():
        for i in top + bottom:
            t = blocks[i].text
            if (
                len(t) <= 120
                and "\n" not in t
                and not is_narrative(t)
                and seen[normalise_line(t)] >= need
                and not is_listing_field(by_key[normalise_line(t)])
            ):
                out[i] = "running_header" if i in top else "running_footer"
    return out


def is_listing_field(texts: list[str]) -> bool:
    """Repeated lines that are content: a field of each entry of a listing (an event's date,
    a price), told apart from boilerplate by a date, time or value that changes between them.

    ["Saturday, 3 June 2023", "Saturday, 10 June 2023"] -> True; ["Page 2", "Page 3"] -> False
    """
    distinct = {t.strip() for t in texts}
    if len(distinct) < 2 or any(P.PAGE_NUMBER.match(t.strip()) for t in texts):
        return False
    valued = [
        t for t in texts if P.DATE.search(t) or P.WEEKDAY_OR_TIME.search(t) or P.PRICE.search(t)
    ]
    return len(valued) == len(texts)


def label_repeated_lines(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """Short lines (not prose) that occur three times or more, digits ignored: boilerplate
    repeated in the body, such as running headers of a text without page breaks. A line that
    is a field of a listing (each entry's date) stays: see `is_listing_field`."""
    candidates = {
        i: normalise_line(b.text)
        for i, b in enumerate(blocks)
        if i not in labels and len(b.text) <= 80 and "\n" not in b.text and not is_narrative(b.text)
    }
    groups: dict[str, list[int]] = {}
    for i, key in candidates.items():
        groups.setdefault(key, []).append(i)
    out: dict[int, str] = {}
    for members in groups.values():
        if len(members) >= 3 and not is_listing_field([blocks[i].text for i in members]):
            out.update({i: "repeated_boilerplate" for i in members})
    return out


def label_running_titles(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """A report's title repeated as a running header on every page: a heading-like line of
    three words or more that comes back on two pages or more (or, in a text without page
    breaks, three times). Every occurrence goes; when the first block of the text is one, it
    is the document's title in the metadata (see `clean_text`)."""
    pages = len({b.page for b in blocks})
    groups: dict[str, list[int]] = {}
    for i, b in enumerate(blocks):
        t = b.text.strip()
        if i in labels or "\n" in t or len(t) > 150 or count_words(t) < 3 or is_narrative(t):
            continue
        groups.setdefault(normalise_line(P.NUMBERED_TITLE.sub(title_of_numbered, t)), []).append(i)
    out: dict[int, str] = {}
    for members in groups.values():
        on_pages = {blocks[i].page for i in members}
        enough = len(on_pages) >= max(2, (pages + 1) // 2) if pages >= 2 else len(members) >= 3
        if not enough or is_listing_field([blocks[i].text for i in members]):
            continue
        out.update({i: "running_title" for i in members})
    return out


def title_of_numbered(m: re.Match[str]) -> str:
    """'3 | Example Review' -> 'Example Review' (for comparing running titles)"""
    return (m.group("a") or m.group("b") or "").strip(" |•·–—-")


def label_table_of_contents(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """The entries under a contents heading: lines that end in a page number or a dot leader,
    up to the first block that is not one (the heading itself is labelled on its shape)."""
    out: dict[int, str] = {}
    for i in [i for i, k in labels.items() if k == "table_of_contents"]:
        for j in range(i + 1, min(len(blocks), i + 80)):
            if j in labels and labels[j] not in {"page_number", "table_of_contents"}:
                break
            lines = [line.strip() for line in blocks[j].text.split("\n") if line.strip()]
            if lines and all(P.TOC_ENTRY.match(line) and len(line) <= 160 for line in lines):
                out[j] = "table_of_contents"
            else:
                break
    return out


def is_contact_block(text: str) -> bool:
    """A block of contact details: an e-mail address or phone number on short lines, or a
    'Contact us:' line.

    "Contact us: info@example.org | Tel 555 1234" -> True
    "Write to the editor at letters@example.org if you disagree with this article." -> False
    """
    t = text.strip()
    lines = [line.strip() for line in t.split("\n") if line.strip()]
    if len(t) > 400 or len(lines) > 8 or any(len(line) > 100 for line in lines):
        return False
    if P.CONTACT_START.match(t) and len(lines) <= 3 and not is_narrative(t):
        return True
    contact = [line for line in lines if P.EMAIL.search(line) or P.PHONE.search(line)]
    return bool(contact) and not any(is_narrative(line) for line in lines)


def label_signatures(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """An e-mail signature or contact footer at the end: from a '-- ' separator, a closing
    ('Best regards,') followed only by short lines, or 'Sent from my phone', to the end; and
    contact blocks (an address, phone, e-mail) among the last blocks."""
    kept = [i for i in range(len(blocks)) if i not in labels]
    if len(kept) < 2:
        return {}
    tail = kept[-8:]
    out: dict[int, str] = {}

    def short(i: int) -> bool:
        lines = [line for line in blocks[i].text.split("\n") if line.strip()]
        return (
            len(lines) <= 8
            and all(len(line) <= 100 for line in lines)
            and not any(is_narrative(line) for line in lines)
        )

    for pos, i in enumerate(tail):
        if i == kept[0]:
            continue
        first_line = blocks[i].text.strip().split("\n")[0].strip()
        rest = tail[pos:]
        starts = (
            P.SIGNATURE_SEPARATOR.match(first_line)
            or P.SENT_FROM.match(first_line)
            or (P.CLOSING.match(first_line) and all(short(j) for j in rest))
        )
        if starts and all(short(j) for j in rest[1:]):
            out.update({j: "signature" for j in rest})
            break
    last = kept[-max(3, len(kept) // 4) :]
    for i in last:
        if i not in out and i != kept[0] and is_contact_block(blocks[i].text):
            out[i] = "contact"
    return out


def kept_neighbours(n: int, labels: dict[int, str], i: int) -> tuple[int | None, int | None]:
    """Index of the nearest kept block before and after block `i`."""
    prev = next((j for j in range(i - 1, -1, -1) if j not in labels), None)
    nxt = next((j for j in range(i + 1, n) if j not in labels), None)
    return prev, nxt


def label_interrupting_headers(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """A short line dropped into the middle of a sentence (a running header at a page break):
    the text before it stops mid-sentence and the text after it goes on in lower case."""
    out: dict[int, str] = {}
    for i, b in enumerate(blocks):
        t = b.text.strip()
        if i in labels or "\n" in t or len(t) > 80 or count_words(t) > 10:
            continue
        if ends_sentence(t) or P.STARTS_LOWER.match(t):
            continue
        prev, nxt = kept_neighbours(len(blocks), {**labels, **out, i: "?"}, i)
        if prev is None or nxt is None:
            continue
        before, after = blocks[prev].text, blocks[nxt].text
        if count_words(before) >= 8 and ends_open(before) and P.STARTS_LOWER.match(after.strip()):
            out[i] = "running_header"
    return out


def joined_blocks(
    source: str,
    blocks: list[Block],
    next_kept: dict[int, int],
    protected: set[int] | frozenset[int] = frozenset(),
    continues: set[int] | frozenset[int] = frozenset(),
) -> set[int]:
    """The kept blocks that re-join the next kept one. Each pair is judged on the whole
    paragraphs the joins around it make (not on the lone blocks), repeated until nothing more
    joins, so that cleaning the clean text joins nothing further.

    ["... the summit did not", "Although ... did not", "At a time ... ties."]: the second
    joins the third, and then the first joins the paragraph they make."""
    joined: set[int] = set()
    prev_kept = {b: a for a, b in next_kept.items()}

    def paragraph(i: int) -> tuple[str, str]:
        # the text before the break at i's end and the text after it, as the whole paragraphs
        # the joins so far make (joined with a space, as the paragraph_join repair does)
        first = [i]
        while first[-1] in prev_kept and prev_kept[first[-1]] in joined:
            first.append(prev_kept[first[-1]])
        second = [next_kept[i]]
        while second[-1] in joined:
            second.append(next_kept[second[-1]])
        before = " ".join(blocks[k].text.strip() for k in reversed(first))
        return before, " ".join(blocks[k].text.strip() for k in second)

    changed = True
    while changed:
        changed = False
        for i, j in next_kept.items():
            if i in joined or i in protected or j in protected:
                continue
            b, after = blocks[i], blocks[j]
            before_text, after_text = paragraph(i)
            layout_join = (
                b.end in continues and ends_open(b.text) and bool(re.match(r"\W?\w", after.text))
            )
            if layout_join or should_join(
                before_text, after_text, "\f" in source[b.end : after.start]
            ):
                joined.add(i)
                changed = True
    return joined


def should_join(before: str, after: str, page_break: bool = False) -> bool:
    """Two blocks that are one paragraph split by a page or column break: the first stops
    mid-sentence and the second goes on in lower case, or (see `continues_sentence`) with a
    capital where the sentence plainly goes on.

    ("the summit did not", "conclude with ...") -> True; ("A Heading", "Text.") -> False
    """
    b, a = before.strip(), after.strip()
    if count_words(b) < 8 or not ends_open(b) or P.LIST_ITEM.match(a):
        return False
    return bool(P.STARTS_LOWER.match(a)) or continues_sentence(b, a, page_break)


def continues_sentence(before: str, after: str, page_break: bool = False) -> bool:
    """A paragraph whose second part starts with a capital (a name, "I") after a page break:
    the first part ends on a word that cannot end a sentence (an article, preposition,
    conjunction) or a comma, or, across a page break, on a lower-case word; the second part
    is prose, not a heading.

    ("... talks were held in", "Samarkand, the capital ...") -> True (page break)
    ("... the final section", "Background") -> False
    """
    prose = is_narrative(after) or (ends_sentence(after) and count_words(after) >= 4)
    if not re.match(r"^[\"'“‘(]?[A-ZÀ-Þ]", after) or not prose:
        return False
    if is_heading_like(after) or P.BYLINE.match(after):
        return False
    last = P.WORD.findall(before)
    if not last:
        return False
    word = last[-1]
    if before.endswith(",") or word.casefold() in P.CONTINUING_WORDS:
        return True
    return page_break and word.islower() and not word.isdigit()


# ------------------------------------------------------------------ inline edits


def drop_inline_markup(text: str, base: int, markdown: bool = False) -> list[Edit]:
    """Leftover HTML tags, markdown emphasis/links (and headings in .md) as removals.

    "the <u>deal</u>" -> removes "<u>", "</u>"; "**Subject:** x" -> removes both "**"
    """
    edits = [Edit(base + m.start(), base + m.end(), "markup") for m in P.INLINE_TAG.finditer(text)]
    for m in P.MD_EMPHASIS.finditer(text):
        k = len(m.group(1))
        edits.append(Edit(base + m.start(), base + m.start() + k, "markup"))
        edits.append(Edit(base + m.end() - k, base + m.end(), "markup"))
    for m in P.MD_LINK.finditer(text):
        edits.append(Edit(base + m.start(), base + m.start() + 1, "markup"))
        edits.append(Edit(base + m.start(1) + len(m.group(1)), base + m.end(), "markup"))
    if markdown:
        edits += [
            Edit(base + m.start(), base + m.end(), "markup") for m in P.MD_HEADING.finditer(text)
        ]
    return edits


def unescape_characters(text: str, base: int) -> list[Edit]:
    """Backslash escapes and HTML entities become the character they stand for.

    "\\\\$35 billion" -> repair "\\\\$" -> "$"; "AT&amp;T" -> repair "&amp;" -> "&"
    """
    edits = [
        Edit(base + m.start(), base + m.end(), "unescape", m.group(1))
        for m in P.BACKSLASH_ESCAPE.finditer(text)
    ]
    for m in P.HTML_ENTITY.finditer(text):
        char = html.unescape(m.group())
        if char != m.group():
            edits.append(Edit(base + m.start(), base + m.end(), "unescape", char))
    return edits


def drop_doubled_markers(text: str, base: int) -> list[Edit]:
    """A dialogue dash typed twice: '– – For China' -> '– For China'."""
    edits = []
    offset = 0
    for line in text.split("\n"):
        m = P.DOUBLED_DASH.match(line)
        if m:
            edits.append(Edit(base + offset, base + offset + m.end(1), "doubled_marker"))
        offset += len(line) + 1
    return edits


def drop_social_links(text: str, base: int) -> list[Edit]:
    """Embedded-image links left in prose: 'roads. pic.twitter.com/x1' -> 'roads.'"""
    if "pic.twitter.com" not in text:
        return []
    return [
        Edit(base + m.start(), base + m.end(), "embed")
        for m in re.finditer(r"[ \t]*(?:https?://)?pic\.twitter\.com/\w+", text)
    ]


def drop_inline_page_numbers(text: str, base: int) -> list[Edit]:
    """Page numbers that landed inside a sentence: 'did not Page 3 of 9 conclude' and a line
    holding only a number between two lines of one sentence.

    "did not – 12 – conclude" -> "did not conclude"; "did not\\n12\\nconclude" -> removes "12\\n"
    """
    edits = []
    if P.INLINE_PAGE_GATE.search(text):  # the lookbehind scan is slow; most text has none
        edits = [
            Edit(base + m.start(), base + m.end(), "page_number")
            for m in P.INLINE_PAGE_NUMBER.finditer(text)
        ]
    if text.count("\n") < 2:
        return edits
    lines = text.split("\n")
    offset = len(lines[0]) + 1
    for k in range(1, len(lines) - 1):
        line = lines[k]
        if (
            P.LONE_NUMBER_LINE.match(line)
            and count_words(lines[k - 1]) >= 3
            and not P.LONE_NUMBER_LINE.match(lines[k + 1])
            and ends_open(lines[k - 1])
            and not ends_sentence(lines[k - 1])
            and lines[k + 1].strip()
            and not P.LIST_ITEM.match(lines[k + 1])
        ):
            edits.append(Edit(base + offset, base + offset + len(line) + 1, "page_number"))
        offset += len(line) + 1
    return edits


def rejoin_hyphen(head: str, after: str, vocabulary: set[str] | frozenset[str]) -> str:
    """What replaces a hyphen at a line or page end: '-' when the hyphenated form is a word of
    the text and the joined form is not ("Western-" + "dominated"), else nothing.

    ("Wes", "tern powers", {"western"}) -> ""; ("self", "interest", {"self-interest"}) -> "-"
    """
    first = re.match(r"[^\W\d_]+", after.lstrip())
    if not first:
        return ""
    joined = (head + first.group()).casefold()
    hyphenated = f"{head}-{first.group()}".casefold()
    return "-" if hyphenated in vocabulary and joined not in vocabulary else ""


def join_wrapped_lines(text: str, base: int, vocabulary: set[str]) -> list[Edit]:
    """Hard-wrapped lines of one paragraph become one line; a word hyphenated across the break
    is re-joined (keeping the hyphen when the hyphenated form is used elsewhere).

    "the Western-\\ndominated order" -> "the Westerndominated order"; list items stay apart.
    """
    lines = text.split("\n")
    if len(lines) < 2:
        return []
    longest = max(len(line.rstrip()) for line in lines)
    edits = []
    offset = 0
    for k in range(len(lines) - 1):
        cur, nxt = lines[k], lines[k + 1]
        cut = offset + len(cur.rstrip())
        offset += len(cur) + 1
        stripped = cur.rstrip()
        if P.LIST_ITEM.match(nxt) or stripped.endswith(":") or not nxt.strip():
            continue
        if ends_sentence(stripped) and len(stripped) < 0.6 * longest:
            continue
        resume = offset + len(nxt) - len(nxt.lstrip())
        hy = re.search(r"([^\W\d_]+)-$", stripped)
        first = re.match(r"[^\W\d_]+", nxt.lstrip())
        if hy and first and nxt.lstrip()[:1].islower():
            keep = rejoin_hyphen(hy.group(1), nxt, vocabulary)
            edits.append(Edit(base + cut - 1, base + resume, "dehyphenate", keep))
        else:
            edits.append(Edit(base + cut, base + resume, "line_join", " "))
    return edits


# ------------------------------------------------------------------ the order


RUNNING_KINDS = frozenset({"running_title", "running_header", "repeated_boilerplate"})


def covering(blocks: list[Block], spans: Sequence[tuple[int, int]]) -> set[int]:
    """Indices of the blocks that overlap any of `spans` (source offsets)."""
    out: set[int] = set()
    for start, end in spans:
        out.update(i for i, b in enumerate(blocks) if b.start < end and start < b.end)
    return out


def clean_text(
    source: str,
    *,
    markdown: bool = False,
    keep: Sequence[tuple[int, int]] = (),
    noise: Sequence[tuple[int, int, str]] = (),
    continues: Sequence[int] = (),
    conservative: bool = False,
) -> Cleaned:
    """Find all noise in `source` and return the edits that remove or repair it.

    Order: (0) spans the loader found to be noise (`noise`: a navigation table, a header by its
    place on the page); (1) blocks noise on their own shape (placeholders, page numbers, ads,
    embeds' attribution lines, read-more, newsletter, cookie, share bars, tags, rights,
    disclaimers, source lines, published chrome, banners, captions, and the kinds in
    `ingest.detectors`); (2) embeds as a whole; (3) source URLs on the following line;
    (4) related-link lists and blocks; (5) running headers/footers repeated at page edges, then
    short lines repeated three times unless they are a listing's field; (6) the header:
    navigation, repeated title, byline, dateline; (7) headers that interrupt a sentence, then
    e-mail signatures at the end; then block spacing, paragraphs re-joined across breaks, and
    inline fixes (markup, escapes, doubled dashes, page numbers in a sentence, hyphenation).
    Blocks overlapping `keep` (tables in an article) are never removed nor edited inside;
    a block ending at one of `continues` (the layout says its paragraph goes on after the page
    break) is joined to the next kept block when it stops mid-sentence.
    `conservative` keeps every block: only spacing and inline repairs (used when full cleaning
    would empty an article a main-content extractor found)."""
    blocks = split_blocks(source)
    protected = covering(blocks, keep)
    pre = {i: kind for start, end, kind in noise for i in covering(blocks, [(start, end)])}
    if conservative:
        labels: dict[int, str] = {}
        roles: dict[str, list[int]] = {}
    else:
        labels = {**label_single_blocks(blocks), **pre}
        for step in (label_embeds, label_source_continuations, label_related_lists):
            labels = {**step(blocks, labels), **labels}
        labels.update(
            {i: k for i, k in label_page_edges(blocks, labels).items() if i not in labels}
        )
        labels.update(label_repeated_lines(blocks, labels))
        labels.update(label_running_titles(blocks, labels))
        labels.update(label_table_of_contents(blocks, labels))
        labels = {i: k for i, k in labels.items() if i not in protected}
        header, roles = find_header(blocks, labels)
        labels.update({i: k for i, k in header.items() if i not in protected})
        labels.update(label_interrupting_headers(blocks, labels))
        labels.update(label_signatures(blocks, labels))
        labels = {i: k for i, k in labels.items() if i not in protected}
    # only needed to decide how to re-join a word hyphenated at a line end
    vocabulary = {w.casefold() for w in P.WORD.findall(source)} if "-\n" in source else set()
    edits = edits_for_blocks(source, blocks, labels, protected, set(continues), vocabulary)
    for i, b in enumerate(blocks):
        if i in labels or i in protected:
            continue
        edits += drop_inline_markup(b.text, b.start, markdown)
        edits += unescape_characters(b.text, b.start)
        edits += drop_doubled_markers(b.text, b.start)
        edits += drop_social_links(b.text, b.start)
        edits += drop_inline_page_numbers(b.text, b.start)
        edits += join_wrapped_lines(b.text, b.start, vocabulary)
    first = next((i for i in range(len(blocks)) if labels.get(i) not in {"whitespace"}), None)
    if "title" not in roles and first is not None and labels.get(first) in RUNNING_KINDS:
        roles["title"] = [first]  # a running title repeated from the first page on
    for kind in ("source", "rights", "disclaimer", "published_chrome", "caption"):
        roles[kind] = [i for i, k in labels.items() if k == kind]
    return Cleaned(edits, labels, blocks, roles)


def edits_for_blocks(
    source: str,
    blocks: list[Block],
    labels: dict[int, str],
    protected: set[int] | frozenset[int] = frozenset(),
    continues: set[int] | frozenset[int] = frozenset(),
    vocabulary: set[str] | frozenset[str] = frozenset(),
) -> list[Edit]:
    """Removals for labelled blocks (each with the whitespace after it), the spacing between
    kept blocks normalised to one blank line, and paragraphs re-joined across breaks."""
    edits: list[Edit] = []
    kept = [i for i in range(len(blocks)) if i not in labels]
    if not blocks:
        return [Edit(0, len(source), "whitespace")] if source else []
    if blocks[0].start > 0:
        edits.append(Edit(0, blocks[0].start, "whitespace"))
    next_kept = {a: b for a, b in zip(kept, kept[1:], strict=False)}
    joined = joined_blocks(source, blocks, next_kept, protected, continues)
    for i, b in enumerate(blocks):
        gap_end = blocks[i + 1].start if i + 1 < len(blocks) else len(source)
        if i in labels:
            edits.append(Edit(b.start, gap_end, labels[i]))
            continue
        if i not in next_kept:
            if gap_end > b.end:
                edits.append(Edit(b.end, gap_end, "whitespace"))
            continue
        after = blocks[next_kept[i]]
        gap = source[b.end : gap_end]
        if i in joined:
            hy = re.search(r"([^\W\d_]+)-$", b.text)
            if hy:
                edits.append(
                    Edit(
                        b.end - 1,
                        gap_end,
                        "dehyphenate",
                        rejoin_hyphen(hy.group(1), after.text, vocabulary),
                    )
                )
            else:
                edits.append(Edit(b.end, gap_end, "paragraph_join", " "))
        elif gap == "\n\n":
            pass
        elif gap.startswith("\n\n") and "\f" not in gap:
            edits.append(Edit(b.end + 2, gap_end, "whitespace"))
        else:
            kind = "page_break" if "\f" in gap else "whitespace"
            edits.append(Edit(b.end, gap_end, kind, "\n\n"))
    return edits
