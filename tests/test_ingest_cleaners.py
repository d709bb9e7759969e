"""Parametrized tables for the cleaners: what each removes or repairs, and what must survive."""

from __future__ import annotations

import pytest

from ingest.cleaners import (
    classify_block,
    clean_text,
    is_caption,
    parse_byline,
    parse_name_line,
    split_blocks,
)
from ingest.metadata import normalise_date, repair_url
from ingest.offsets import Edit, apply_edits, check_accounting, resolve_overlaps

LEAD = "Summit Ends Without Deal\n\n"
PARA = "The leaders met on Thursday in the old city for talks that lasted two hours."
PARA2 = "Officials said afterwards that no agreement had been reached on the main issues."


def clean(source: str) -> str:
    applied = apply_edits(source, clean_text(source).edits)
    assert (
        check_accounting(source, applied.text, applied.removed, applied.repairs, applied.offset_map)
        == []
    )
    return applied.text


def kinds(source: str) -> set[str]:
    applied = apply_edits(source, clean_text(source).edits)
    return {r.kind for r in applied.removed} | {r.kind for r in applied.repairs}


@pytest.mark.parametrize(
    ("block", "kind"),
    [
        ("[ site banner ]", "placeholder"),
        ("[advertisement]", "placeholder"),
        ("Page 3 of 6", "page_number"),
        ("- 12 -", "page_number"),
        ("7", "page_number"),
        ("Advertisement", "advertisement"),
        ("Story continues below advertisement", "advertisement"),
        ("div-gpt-ad-1234", "ad_slot"),
        ("xyz-top-02", "ad_slot"),
        ("Read more", "read_more"),
        ("Read more: Why the summit matters", "read_more"),
        ("Sign up for our weekly newsletter", "newsletter"),
        ("Subscribe to the mailing list to get updates", "newsletter"),
        ("We use cookies to give you the best experience. Accept all", "cookie_banner"),
        ("Share  Facebook  Twitter  Email", "share_bar"),
        ("Cite this article", "share_bar"),
        ("Download PDF | Print", "share_bar"),
        ("Tags: China, Russia, SCO", "tags"),
        ("Copyright (c) 2023. Example Media, Inc.", "rights"),
        ("© 2021 Example Corp. All rights reserved.", "rights"),
        ("Reprinted with permission of the publisher.", "rights"),
        (
            "The views expressed herein do not necessarily reflect the views of the ministry.",
            "disclaimer",
        ),
        ("Source: https://example.org/a/b.html", "source"),
        ("Source: AP", "source"),
        ("Published: 2 hours ago", "published_chrome"),
        ("Updated: 15 September 2022", "published_chrome"),
        ("SPECIAL - Donate now to support independent reporting!", "banner"),
        ("— Jane Doe (@jdoe) March 3, 2021", "embed"),
    ],
)
def test_cleaners_classify_block_noise(block: str, kind: str) -> None:
    assert classify_block(block) == kind


@pytest.mark.parametrize(
    "block",
    [
        PARA,
        "A Symbolic Meeting",
        "What did the members of the SCO agree upon?",
        "- a. Putin to assure Xi of support.",
        "– They are probably as surprised as anyone, says an analyst.",
        "The report is at https://example.org/report and was published on Monday.",
        "Copyright law in the EU was changed in 2019 after a long debate.",
        "He donated $5m to the fund last year, according to filings.",
        "Sources said the talks would continue next week.",
        "2022 was a difficult year for the economy of the region and beyond.",
        "Facts",
        "SCO",
        "The cookie industry grew by 5% last year.",
        "Read the room, the diplomat advised, before making any promise.",
        "Published reports suggested the two men would meet again in the autumn.",
        "Officials will get a briefing on the results in their inbox on Monday.",
        "The results may not be reproduced in other laboratories, the authors warned.",
        "The EU agreed new rules on cookie consent and privacy on Monday.",
        "Share prices",
        "Print media",
        "Donations to charity rose sharply",
        "Kazakhstan – Uzbekistan – Kyrgyzstan",
        "Growth slowed to 2% in 2022 (Source: IMF)",
    ],
)
def test_cleaners_classify_block_keeps_content(block: str) -> None:
    assert classify_block(block) is None
    assert not is_caption(block)


@pytest.mark.parametrize(
    "caption",
    [
        "full screen The two presidents in February. Photo: A. Name/Agency",
        "Leaders at the summit. **John Smith, Pool Photo via AP**",
        "The old city of Samarkand. Archive image.",
        "Delegates arrive. Photo by Jane Doe",
        "Image source, Getty Images",
        "Image caption, Delegates at the opening session",
    ],
)
def test_cleaners_caption_detected(caption: str) -> None:
    assert is_caption(caption)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # inline markup, escapes, doubled dialogue dash
        (
            LEAD + "The <u>deal</u> was **signed** on Monday by both sides present.",
            "The deal was signed on Monday by both sides present.",
        ),
        (
            LEAD + "Purchases reached \\$35 billion, up from \\$20 billion a year before.",
            "Purchases reached $35 billion, up from $20 billion a year before.",
        ),
        (
            LEAD + "AT&amp;T and others said they would &quot;wait and see&quot; for now.",
            'AT&T and others said they would "wait and see" for now.',
        ),
        (
            LEAD + "– – For China, it is about stability in the region, he said.",
            "– For China, it is about stability in the region, he said.",
        ),
        # a paragraph split by a page break, with a running header dropped in between
        (
            LEAD + "The leaders met on Thursday but the talks did not\n\nREVIEW DIGEST\n\n"
            "conclude with any agreement.",
            "The leaders met on Thursday but the talks did not conclude with any agreement.",
        ),
        (
            LEAD + "The latest negotiations are expected to focus on gas exports and trade\n\n"
            "relations with the region.",
            "The latest negotiations are expected to focus on gas exports and trade relations "
            "with the region.",
        ),
        # word hyphenated across a line break inside a paragraph
        (
            LEAD + "The talks were held in the tradi-\ntional way, officials said on Monday.",
            "The talks were held in the traditional way, officials said on Monday.",
        ),
        # social embed with marker, post and attribution
        (
            LEAD + PARA + "\n\nEmbed:\n\nBig crowds today! #summit pic.twitter.com/abc123\n\n"
            "— Some Reporter (@someone) September 15, 2022\n\n" + PARA2,
            PARA + "\n\n" + PARA2,
        ),
        # embed without marker
        (
            LEAD + PARA + "\n\nEmpty streets in the city today. pic.twitter.com/Zx12\n\n"
            "— A Person (@aperson) May 1, 2023\n\n" + PARA2,
            PARA + "\n\n" + PARA2,
        ),
        # related list
        (
            LEAD
            + PARA
            + "\n\nMost read\n\nTen things to know\n\nMarkets react to the news\n\n"
            + PARA2,
            PARA + "\n\n" + PARA2,
        ),
        # extra blank lines collapse to one
        (LEAD + PARA + "\n\n\n\n\n" + PARA2, PARA + "\n\n" + PARA2),
    ],
)
def test_cleaners_clean_text_table(source: str, expected: str) -> None:
    assert clean(source) == LEAD + expected


@pytest.mark.parametrize(
    "body",
    [
        PARA + "\n\n" + PARA2,
        PARA + "\n\nA Symbolic Meeting\n\n" + PARA2,
        PARA + "\n\n- a. First point of the plan.\n- b. Second point of the plan.",
        PARA + "\n\n1. First item\n2. Second item",
        PARA + "\n\n– They are probably surprised, says an analyst.",
        PARA + "\n\nThe report is online at https://example.org/a and was read widely.",
        PARA + '\n\n"We are ready," Xi said, according to a readout of the talks.',
        PARA + "\n\nAmid the war, Central Asian countries -- Kazakhstan, in particular -- worry.",
        PARA + "\n\nFacts\n\nSCO\n\nThe SCO is a regional security organisation in Asia.",
        PARA + "\n\nWhat will be the consequences of the summit?\n\n" + PARA2,
        PARA + "\n\nXi-Putin talks were held in a long-term, well-known format.",
    ],
)
def test_cleaners_clean_text_leaves_content_unchanged(body: str) -> None:
    assert clean(LEAD + body) == LEAD + body


def test_cleaners_repeated_title_and_header_chrome() -> None:
    source = (
        "Site Name - Support our journalism!\n\nWorld News\n\nLeaders Meet – Talks Begin\n\n"
        "Leaders Meet Talks Begin\n\nBy Ann Lee and Bo Chen | March 3, 2023\n\n" + PARA
    )
    c = clean_text(source)
    applied = apply_edits(source, c.edits)
    assert applied.text == "Leaders Meet – Talks Begin\n\n" + PARA
    got = {source[r.start : r.end].strip(): r.kind for r in applied.removed}
    assert got["World News"] == "navigation"
    assert got["Leaders Meet Talks Begin"] == "duplicate_title"
    assert got["By Ann Lee and Bo Chen | March 3, 2023"] == "byline"


def test_cleaners_running_headers_repeat_across_pages() -> None:
    pages = [
        f"Annual Review 2023\n\nParagraph {n} says something complete about the topic here."
        f"\n\nPage {n} of 3"
        for n in (1, 2, 3)
    ]
    source = "\n\n\f".join(pages)
    text = clean(source)
    assert "Annual Review" not in text and "Page" not in text
    assert text.count("says something complete") == 3
    assert {"running_header", "page_number"} <= kinds(source)


@pytest.mark.parametrize(
    ("line", "authors"),
    [
        ("By Reid Standish September 15, 2022", ["Reid Standish"]),
        ("By Ann Lee and Bo Chen", ["Ann Lee", "Bo Chen"]),
        ("by Jean-Luc Picard, Data & Worf", ["Jean-Luc Picard", "Data", "Worf"]),
        ("By the end of the war, he had left.", None),
        ("By contrast, the talks went well", None),
    ],
)
def test_cleaners_parse_byline(line: str, authors: list[str] | None) -> None:
    assert parse_byline(line) == authors


@pytest.mark.parametrize(
    ("line", "authors"),
    [
        ("Agnieszka Legucka, Marcin Przychodniak", ["Agnieszka Legucka", "Marcin Przychodniak"]),
        ("Jussi Puustinen, LTC, FIN Army, CSAG/CCJ5", ["Jussi Puustinen"]),
        ("The leaders met again.", None),
        ("Russia, China and the West in a new era of rivalry between powers", None),
    ],
)
def test_cleaners_parse_name_line(line: str, authors: list[str] | None) -> None:
    assert parse_name_line(line) == authors


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("September 15, 2022", "2022-09-15"),
        ("15 September 2022", "2022-09-15"),
        ("Sept. 15, 2022", "2022-09-15"),
        ("2022-09-15T10:00:00Z", "2022-09-15"),
        ("15.09.2022", "2022-09-15"),
        ("Just now", None),
    ],
)
def test_cleaners_normalise_date(text: str, iso: str | None) -> None:
    assert normalise_date(text) == iso


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("https://ex.org/what-we-know- about/1.html", "https://ex.org/what-we-know-about/1.html"),
        ("https://ex.org/a-put in- and-b-a7", "https://ex.org/a-putin-and-b-a7"),
        ("https://ex.org/a\nb/c", "https://ex.org/ab/c"),
        ("https://ex.org/a. Then more text follows here.", "https://ex.org/a"),
        ("AP", None),
    ],
)
def test_cleaners_repair_url(text: str, url: str | None) -> None:
    assert repair_url(text) == url


def test_cleaners_split_blocks_offsets_and_pages() -> None:
    text = "a\nb\n\n  c\n\n\fd"
    blocks = split_blocks(text)
    assert [(b.text, b.page) for b in blocks] == [("a\nb", 0), ("c", 0), ("d", 1)]
    assert all(text[b.start : b.end] == b.text for b in blocks)


def test_cleaners_resolve_overlaps_keeps_first() -> None:
    edits = [Edit(3, 8, "b"), Edit(0, 5, "a"), Edit(9, 10, "c", "x")]
    assert resolve_overlaps(edits) == [Edit(0, 5, "a"), Edit(9, 10, "c", "x")]


@pytest.mark.parametrize(
    ("block", "kind"),
    [
        ("News | Opinion | Sport | Culture | Lifestyle", "navigation"),
        ("Home > Politics > Asia", "navigation"),
        ("World › Europe › EU", "navigation"),
        ("Skip to main content", "navigation"),
        ("ANNUAL SECURITY REPORT 2023        3", "page_header"),
        ("Follow us on Twitter @example", "share_bar"),
        ("Comments (12)", "comments_bar"),
        ("Listen to this article 5 min", "share_bar"),
        ("4 min read", "share_bar"),
        ("A post shared by Some One (@some.one) on May 1, 2023", "embed"),
    ],
)
def test_cleaners_classify_block_chrome(block: str, kind: str) -> None:
    assert classify_block(block) == kind


UNSEEN_PAGE = """Skip to main content

Support us →

News | Opinion | Sport | Culture | Lifestyle

World › Europe › EU

Leaders clash over trade at summit

Talks end without agreement as tariffs dispute deepens

Jane Smith in Brussels

Tue 14 Mar 2023 18.02 GMT

Share on Facebook

Share on Twitter

European leaders failed to agree on a response to new tariffs on Tuesday, with diplomats \
describing the talks as tense.

The dispute, which began last year, has already cost exporters billions of euros.

Photograph: John Thys/AFP/Getty Images

"We are not there yet," said one official, who asked not to be named.

Most viewed

Man arrested after incident in city centre

Weather warning issued for weekend
"""


def test_cleaners_unseen_layout_keeps_title_standfirst_and_prose() -> None:
    from ingest.metadata import extract_metadata

    c = clean_text(UNSEEN_PAGE)
    text = apply_edits(UNSEEN_PAGE, c.edits).text
    assert text == (
        "Leaders clash over trade at summit\n\n"
        "Talks end without agreement as tariffs dispute deepens\n\n"
        "European leaders failed to agree on a response to new tariffs on Tuesday, with "
        "diplomats describing the talks as tense.\n\n"
        "The dispute, which began last year, has already cost exporters billions of euros.\n\n"
        '"We are not there yet," said one official, who asked not to be named.'
    )
    meta = extract_metadata(c)
    assert meta.title == "Leaders clash over trade at summit"
    assert meta.authors == ["Jane Smith"]
    assert meta.published == "2023-03-14"


def test_cleaners_unseen_blog_byline_before_title() -> None:
    from ingest.metadata import extract_metadata

    source = (
        "Home > Politics > Asia\n\nPosted by Alex Brown on March 3, 2023 at 10:15 am\n\n"
        "Japan and Korea agree to restore ties\n\n"
        "TOKYO (Reuters) - Japan and South Korea agreed on Thursday to restore full ties.\n\n"
        "Click here to subscribe to our newsletter.\n\nAdvertisement\n\n"
        "The agreement was signed by the two foreign ministers in Tokyo.\n\n"
        "Related Articles:\n- Korea protests new textbook\n- Japan elections: what to know\n\n"
        "Follow us on Twitter @example\n\nComments (12)\n"
    )
    c = clean_text(source)
    assert apply_edits(source, c.edits).text == (
        "Japan and Korea agree to restore ties\n\n"
        "TOKYO (Reuters) - Japan and South Korea agreed on Thursday to restore full ties.\n\n"
        "The agreement was signed by the two foreign ministers in Tokyo."
    )
    meta = extract_metadata(c)
    assert (meta.title, meta.authors, meta.published) == (
        "Japan and Korea agree to restore ties",
        ["Alex Brown"],
        "2023-03-03",
    )


def test_cleaners_running_header_without_page_breaks() -> None:
    body = [
        f"Paragraph {n} of the report says something complete about the topic here."
        for n in range(4)
    ]
    source = LEAD + "\n\n".join(
        f"{para}\n\nDefence Review 2023 | Issue {n}" for n, para in enumerate(body)
    )
    text = clean(source)
    assert "Defence Review" not in text
    assert all(para in text for para in body)
