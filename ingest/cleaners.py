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
from collections.abc import Callable
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


def classify_block(text: str) -> str | None:
    """The noise kind of a block judged on its own, or None. Order: most specific first.

    "[ site banner ]" -> "placeholder"; "Page 3 of 6" -> "page_number"; "Xi met Putin." -> None
    """
    t = text.strip()
    one_line = "\n" not in t
    low = t.casefold()

    def has(*words: str) -> bool:  # cheap gate before the costlier searches
        return any(w in low for w in words)

    tests: list[tuple[str, Callable[[str], bool]]] = [
        ("placeholder", lambda s: one_line and bool(P.PLACEHOLDER.match(s))),
        ("page_number", lambda s: one_line and bool(P.PAGE_NUMBER.match(s))),
        ("advertisement", lambda s: one_line and bool(P.ADVERTISEMENT.match(s))),
        ("ad_slot", lambda s: one_line and bool(P.AD_SLOT.match(s))),
        ("embed", lambda s: one_line and bool(P.SOCIAL_ATTRIBUTION.match(s))),
        ("navigation", lambda s: one_line and is_navigation(s)),
        ("page_header", lambda s: one_line and bool(P.PAGE_HEADER_WITH_NUMBER.match(s))),
        ("read_more", lambda s: one_line and len(s) <= 200 and bool(P.READ_MORE.match(s))),
        ("share_bar", lambda s: one_line and len(s) <= 100 and bool(P.FOLLOW_US.match(s))),
        ("comments_bar", lambda s: one_line and bool(P.COMMENTS_BAR.match(s))),
        ("newsletter", lambda s: len(s) <= 200 and bool(P.NEWSLETTER.search(s))),
        ("cookie_banner", lambda s: has("cookie") and is_cookie_banner(s)),
        ("share_bar", is_toolbar),
        ("tags", lambda s: len(s) <= 300 and bool(P.TAGS.match(s))),
        (
            "rights",
            lambda s: (
                len(s) <= 500
                and has("copyright", "©", "(c)", "rights reserved", "reprinted", "not be re")
                and bool(P.RIGHTS.search(s))
            ),
        ),
        (
            "disclaimer",
            lambda s: (
                len(s) <= 700
                and has("necessarily", "views expressed", "of the author")
                and bool(P.DISCLAIMER.search(s))
            ),
        ),
        ("source", is_source_line),
        (
            "published_chrome",
            lambda s: one_line and len(s) <= 100 and bool(P.PUBLISHED_CHROME.match(s)),
        ),
        (
            "banner",
            lambda s: (
                has("donat", "support", "gift", "contribution", "become a")
                and is_donation_appeal(s)
            ),
        ),
    ]
    for kind, test in tests:
        if test(t):
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
            if is_narrative(t) and "\n" not in t:
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
    for i in zone:
        t = blocks[i].text.strip()
        if parse_byline(t) is not None:
            out[i] = "byline"
            byline_at = i if byline_at is None else byline_at
        elif P.DATE_LINE.match(t):
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
    m = P.BYLINE.match(t)
    if not m:
        return None
    names = [n.strip(" .,") for n in P.NAME_SPLIT.split(m.group("names")) if n.strip(" .,")]
    if not names or not all(P.PERSON_NAME.match(n) and count_words(n) <= 5 for n in names):
        return None
    return names


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
    out: dict[int, str] = {}
    for top, bottom in edges.values():
        for i in top + bottom:
            t = blocks[i].text
            if (
                len(t) <= 120
                and "\n" not in t
                and not is_narrative(t)
                and seen[normalise_line(t)] >= need
            ):
                out[i] = "running_header" if i in top else "running_footer"
    return out


def label_repeated_lines(blocks: list[Block], labels: dict[int, str]) -> dict[int, str]:
    """Short lines (not prose) that occur three times or more, digits ignored: boilerplate
    repeated in the body, such as running headers of a text without page breaks."""
    candidates = {
        i: normalise_line(b.text)
        for i, b in enumerate(blocks)
        if i not in labels and len(b.text) <= 80 and "\n" not in b.text and not is_narrative(b.text)
    }
    counts = Counter(candidates.values())
    return {i: "repeated_boilerplate" for i, key in candidates.items() if counts[key] >= 3}


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


def should_join(before: str, after: str) -> bool:
    """Two blocks that are one paragraph split by a page or column break.

    ("the summit did not", "conclude with ...") -> True; ("A Heading", "Text.") -> False
    """
    return (
        count_words(before) >= 8
        and ends_open(before)
        and bool(P.STARTS_LOWER.match(after.strip()))
        and not P.LIST_ITEM.match(after.strip())
    )


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
            joined = (hy.group(1) + first.group()).casefold()
            hyphenated = f"{hy.group(1)}-{first.group()}".casefold()
            keep = hyphenated in vocabulary and joined not in vocabulary
            edits.append(Edit(base + cut - 1, base + resume, "dehyphenate", "-" if keep else ""))
        else:
            edits.append(Edit(base + cut, base + resume, "line_join", " "))
    return edits


# ------------------------------------------------------------------ the order


def clean_text(source: str, *, markdown: bool = False) -> Cleaned:
    """Find all noise in `source` and return the edits that remove or repair it.

    Order: (1) blocks noise on their own shape (placeholders, page numbers, ads, embeds'
    attribution lines, read-more, newsletter, cookie, share bars, tags, rights, disclaimers,
    source lines, published chrome, banners, captions); (2) embeds as a whole; (3) source URLs
    on the following line; (4) related-link lists; (5) running headers/footers repeated at page
    edges, then short lines repeated three times; (6) the header: navigation, repeated title,
    byline, dateline; (7) headers that interrupt a sentence; then block spacing, paragraphs
    re-joined across breaks, and inline fixes (markup, escapes, doubled dashes, hyphenation).
    """
    blocks = split_blocks(source)
    labels = label_single_blocks(blocks)
    for step in (label_embeds, label_source_continuations, label_related_lists):
        labels = {**step(blocks, labels), **labels}
    labels.update({i: k for i, k in label_page_edges(blocks, labels).items() if i not in labels})
    labels.update({i: k for i, k in label_repeated_lines(blocks, labels).items()})
    header, roles = find_header(blocks, labels)
    labels.update(header)
    labels.update(label_interrupting_headers(blocks, labels))
    edits = edits_for_blocks(source, blocks, labels)
    # only needed to decide how to re-join a word hyphenated at a line end
    vocabulary = {w.casefold() for w in P.WORD.findall(source)} if "-\n" in source else set()
    for i, b in enumerate(blocks):
        if i in labels:
            continue
        edits += drop_inline_markup(b.text, b.start, markdown)
        edits += unescape_characters(b.text, b.start)
        edits += drop_doubled_markers(b.text, b.start)
        edits += drop_social_links(b.text, b.start)
        edits += join_wrapped_lines(b.text, b.start, vocabulary)
    for kind in ("source", "rights", "disclaimer", "published_chrome", "caption"):
        roles[kind] = [i for i, k in labels.items() if k == kind]
    return Cleaned(edits, labels, blocks, roles)


def edits_for_blocks(source: str, blocks: list[Block], labels: dict[int, str]) -> list[Edit]:
    """Removals for labelled blocks (each with the whitespace after it), the spacing between
    kept blocks normalised to one blank line, and paragraphs re-joined across breaks."""
    edits: list[Edit] = []
    kept = [i for i in range(len(blocks)) if i not in labels]
    if not blocks:
        return [Edit(0, len(source), "whitespace")] if source else []
    if blocks[0].start > 0:
        edits.append(Edit(0, blocks[0].start, "whitespace"))
    next_kept = {a: b for a, b in zip(kept, kept[1:], strict=False)}
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
        if should_join(b.text, after.text):
            hy = re.search(r"[^\W\d_]-$", b.text)
            if hy:
                edits.append(Edit(b.end - 1, gap_end, "dehyphenate", ""))
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
