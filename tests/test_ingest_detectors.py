"""The noise the first cleaners missed, a table per detector: noise that goes (with its kind) and
prose that looks like it but stays."""

from __future__ import annotations

import pytest

from ingest import clean_bytes
from ingest.cleaners import (
    clean_text,
    is_contact_block,
    is_listing_field,
    is_page_of_line,
    is_related_line,
    is_series_line,
    parse_byline,
    should_join,
)
from ingest.offsets import apply_edits, check_accounting

INTRO = (
    "The regional summit in Samarkand brought together leaders from eight member states for "
    "two days of talks on trade and security."
)
OUTRO = (
    "Officials said the final declaration would be published on Friday after the last session "
    "of the meeting had ended."
)


def cleaned(source: str) -> tuple[str, set[str]]:
    c = clean_text(source)
    applied = apply_edits(source, c.edits)
    assert (
        check_accounting(source, applied.text, applied.removed, applied.repairs, applied.offset_map)
        == []
    )
    return applied.text, {r.kind for r in applied.removed}


def between(block: str) -> str:
    return f"{INTRO}\n\n{block}\n\n{OUTRO}\n"


# ------------------------------------------------------------------ whole-line detectors


@pytest.mark.parametrize(
    ("line", "noise"),
    [
        ("Example Policy Review | Page 3 of 9", True),
        ("Page 3 of 9 – Example Policy Review", True),
        ("PISM Spotlight Page 2/7", True),
        ("Turn to page 3 of the report for the details of the plan.", False),
        ("The page 3 of 9 problem", False),
    ],
)
def test_ingest_detectors_page_of_line(line: str, noise: bool) -> None:
    assert is_page_of_line(line) is noise


@pytest.mark.parametrize(
    ("line", "noise"),
    [
        ("CSAG Working Paper Series No. 4", True),
        ("Working Paper No. 12/2022", True),
        ("NBER Working Paper 30412", True),
        ("Discussion Paper 45, March 2021", True),
        ("Policy Brief No. 7 | September 2022", True),
        ("ISSN 2299-0259", True),
        ("Occasional Papers Series", True),
        ("The working paper series began in 1990 and now has 200 titles.", False),
        ("A working paper by the institute argued the opposite.", False),
        ("Working with partners", False),
        ("Background Notes", False),
        ("Policy Brief", False),
    ],
)
def test_ingest_detectors_series_line(line: str, noise: bool) -> None:
    assert is_series_line(line) is noise


@pytest.mark.parametrize(
    ("line", "noise"),
    [
        ("RELATED: Putin and Xi meet in Samarkand", True),
        ("Related: What the summit means for Central Asia?", True),
        ("RELATED COVERAGE: Markets react to the summit", True),
        ("SEE ALSO: Ten things to know about the SCO", True),
        ("Related: the two events were connected, the minister said in a statement later.", False),
        ("Related talks are planned for next year.", False),
    ],
)
def test_ingest_detectors_related_line(line: str, noise: bool) -> None:
    assert is_related_line(line) is noise


@pytest.mark.parametrize(
    ("block", "kind"),
    [
        ("Example Policy Review | Page 3 of 9", "page_header"),
        ("CSAG Working Paper Series No. 4", "series_line"),
        ("RELATED: Putin and Xi meet in Samarkand", "related_links"),
        ("Table of Contents", "table_of_contents"),
        ("CONTENTS", "table_of_contents"),
        (
            "Warning: include(/var/www/html/wp-content/plugins/x.php): failed to open stream: "
            "No such file or directory in /var/www/html/wp-includes/load.php on line 12",
            "php_error",
        ),
        (
            "Deprecated: Function create_function() is deprecated in "
            "/home/site/public_html/wp-content/themes/a/functions.php on line 5",
            "php_error",
        ),
        ("Notice: Undefined index: id in /srv/www/index.php on line 33", "php_error"),
        # look-alikes that stay
        ("Warning: the bridge is closed on line 5 of the metro until Monday morning.", None),
        ("The contents of the report were leaked to the press before the summit began.", None),
        ("Table of results from the first round", None),
    ],
)
def test_ingest_detectors_block_kinds(block: str, kind: str | None) -> None:
    text, kinds = cleaned(between(block))
    assert INTRO in text and OUTRO in text
    if kind is None:
        assert block in text
    else:
        assert block not in text and kind in kinds


# ------------------------------------------------------------------ table of contents


def test_ingest_detectors_table_of_contents_heading_and_entries() -> None:
    toc = (
        "Table of Contents\n\n1. Introduction .......... 3\n2. The summit .......... 5\n"
        "3. Outlook 9\n\nIntroduction"
    )
    text, kinds = cleaned(f"Summit Report\n\n{toc}\n\n{INTRO}\n\n{OUTRO}\n")
    assert "Table of Contents" not in text and ".........." not in text and "Outlook 9" not in text
    assert "Introduction\n\n" + INTRO in text
    assert "table_of_contents" in kinds


def test_ingest_detectors_contents_heading_before_prose_keeps_prose() -> None:
    text, _ = cleaned(f"Summit Report\n\nContents\n\n{INTRO}\n\n{OUTRO}\n")
    assert INTRO in text and "Contents" not in text


# ------------------------------------------------------------------ running titles


def test_ingest_detectors_running_title_on_every_page() -> None:
    title = "Russia and China in Central Asia: A Changing Balance"
    pages = [
        f"{title}\n\n{INTRO}",
        f"{title}\n\n{OUTRO}",
        f"{title}\n\nAnalysts expect the balance between the two powers to shift further in "
        "the coming years, the report concludes.",
    ]
    source = "\n\n\f".join(pages)
    c = clean_text(source)
    text = apply_edits(source, c.edits).text
    assert title not in text and INTRO in text and OUTRO in text
    assert (
        sorted(c.labels.values()).count("running_title")
        + sorted(c.labels.values()).count("running_header")
        == 3
    )
    assert c.roles["title"] == [0]  # the first occurrence names the document


def test_ingest_detectors_running_title_in_text_without_page_breaks() -> None:
    title = "CSAG Information Paper on Central Asia"
    source = f"{title}\n\n{INTRO}\n\n{title}\n\n{OUTRO}\n\n{title}\n\n{INTRO}\n"
    text, kinds = cleaned(source)
    assert title not in text and kinds & {"running_title", "repeated_boilerplate"}


# ------------------------------------------------------------------ repeated lines that are content


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        (["Saturday, 3 June 2023", "Saturday, 10 June 2023", "Sunday, 11 June 2023"], True),
        (["June 3, 2023, 7:30 pm", "June 10, 2023, 8 pm"], True),
        (["Tickets: $25", "Tickets: $30", "Tickets: $15"], True),
        (["Page 2", "Page 3", "Page 4"], False),
        (["Example Review", "Example Review", "Example Review"], False),
        (["Monday, 3 June 2023", "Monday, 3 June 2023"], False),
    ],
)
def test_ingest_detectors_listing_field(lines: list[str], field: bool) -> None:
    assert is_listing_field(lines) is field


def test_ingest_detectors_event_listing_dates_stay() -> None:
    events = [
        ("Open-air concert in the park", "Saturday, 3 June 2023"),
        ("Guided walk through the old town", "Saturday, 10 June 2023"),
        ("Poetry evening at the library", "Sunday, 11 June 2023"),
        ("Children's theatre", "Saturday, 17 June 2023"),
    ]
    body = "\n\n".join(
        f"{name}\n\n{date}\n\nThe event is free and open to everyone; please arrive ten minutes "
        "before it starts."
        for name, date in events
    )
    text, _ = cleaned(f"What's on in June\n\n{body}\n")
    for _, date in events:
        assert date in text


def test_ingest_detectors_repeated_boilerplate_still_goes() -> None:
    line = "Example News Service"
    source = f"{INTRO}\n\n{line}\n\n{OUTRO}\n\n{line}\n\n{INTRO}\n\n{line}\n"
    text, kinds = cleaned(source)
    assert "Example News Service" not in text and kinds & {"repeated_boilerplate", "running_title"}


# ------------------------------------------------------------------ page numbers inside a sentence


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "Observers expected a show of unity, but the leaders did not Page 3 of 9 conclude "
            "with specific decisions.",
            "Observers expected a show of unity, but the leaders did not conclude with specific "
            "decisions.",
        ),
        (
            "Observers expected a show of unity, but the leaders did not – 12 – conclude with "
            "specific decisions.",
            "Observers expected a show of unity, but the leaders did not conclude with specific "
            "decisions.",
        ),
        (
            "Observers expected a show of unity, but the leaders did not\n12\nconclude with "
            "specific decisions.",
            "Observers expected a show of unity, but the leaders did not conclude with specific "
            "decisions.",
        ),
        # numbers that are content stay
        (
            "The figures are shown on Page 12 below, next to the results of the first round.",
            "The figures are shown on Page 12 below, next to the results of the first round.",
        ),
        (
            "The two leaders met for 12 hours and signed 3 agreements on trade and energy.",
            "The two leaders met for 12 hours and signed 3 agreements on trade and energy.",
        ),
        (
            "Members voted 12 – 3 in favour of the plan after a long debate on Thursday.",
            "Members voted 12 – 3 in favour of the plan after a long debate on Thursday.",
        ),
        (
            "The list of members grew over the years:\n1\n2\nand more joined later, he said.",
            # (hard-wrapped lines are joined as before; the numbers are not page numbers)
            "The list of members grew over the years:\n1 2 and more joined later, he said.",
        ),
    ],
)
def test_ingest_detectors_page_number_inside_sentence(source: str, expected: str) -> None:
    text, _ = cleaned(source)
    assert text.strip() == expected


# ------------------------------------------------------------------ paragraphs across a page break


@pytest.mark.parametrize(
    ("before", "after", "page_break", "join"),
    [
        (
            "The summit was attended by the leaders of eight states, including",
            "Vladimir Putin and Xi Jinping, who met on Thursday.",
            True,
            True,
        ),
        (
            "The summit was attended by the leaders of eight states, among them",
            "Xi Jinping, who arrived on Wednesday evening.",
            True,
            True,
        ),
        (
            "The talks were held over two days in the historic city of",
            "Samarkand, the second city of Uzbekistan.",
            False,
            True,
        ),
        (
            "Observers expected the talks to be held in the old city centre near",
            "Registan Square, under heavy security.",
            True,
            True,
        ),
        (
            "Observers expected the talks to be difficult and long for both sides",
            "Samarkand hosted the meeting in its old town.",
            True,
            True,
        ),
        (
            "Observers expected the talks to be difficult and long for both sides",
            "Samarkand hosted the meeting in its old town.",
            False,
            False,
        ),
        (
            "The summit of regional leaders ended with a joint declaration on trade",
            "Background",
            True,
            False,
        ),
        (
            "The summit of regional leaders ended with a joint declaration on trade.",
            "Vladimir Putin left early.",
            True,
            False,
        ),
        (
            "Key points of the declaration adopted by the eight member states",
            "- Trade will be expanded.",
            True,
            False,
        ),
    ],
)
def test_ingest_detectors_paragraph_across_page_break(
    before: str, after: str, page_break: bool, join: bool
) -> None:
    assert should_join(before, after, page_break) is join


def test_ingest_detectors_capitalised_continuation_joined_in_document() -> None:
    source = (
        f"{INTRO}\n\nThe summit was attended by the leaders of eight states, including\n\n\f"
        "Vladimir Putin and Xi Jinping, who met on Thursday for the first time since the war.\n"
    )
    text, _ = cleaned(source)
    assert "eight states, including Vladimir Putin and Xi Jinping" in text


# ------------------------------------------------------------------ signatures, contact footers


@pytest.mark.parametrize(
    ("tail", "gone"),
    [
        (
            "-- \nJane Doe\nSenior Analyst | Example Institute\nTel: +44 20 7946 0958",
            ["Jane Doe", "Tel:"],
        ),
        (
            "Best regards,\nJane Doe\nSenior Analyst, Example Institute\njane.doe@example.org",
            ["Best regards", "jane.doe@"],
        ),
        (
            "Kind regards,\n\nJane\n\nExample Institute | www.example.org",
            ["Kind regards", "Example Institute"],
        ),
        ("Sent from my iPhone", ["Sent from my iPhone"]),
        ("Contact us: info@example.org | Tel 555 1234", ["Contact us"]),
        (
            "Example Institute\n12 High Street, London\ninfo@example.org\n+44 20 7946 0958",
            ["High Street"],
        ),
    ],
)
def test_ingest_detectors_signature_goes(tail: str, gone: list[str]) -> None:
    text, kinds = cleaned(f"{INTRO}\n\n{OUTRO}\n\n{tail}\n")
    assert INTRO in text and OUTRO in text
    for g in gone:
        assert g not in text
    assert kinds & {"signature", "contact"}


@pytest.mark.parametrize(
    "tail",
    [
        "Best regards to your family, she wrote in the letter that was later published in full.",
        "Write to the editor at letters@example.org if you disagree with the argument of this "
        "article.",
        "Thanks to the support of many readers, the project will continue for another two years.",
    ],
)
def test_ingest_detectors_signature_look_alike_stays(tail: str) -> None:
    text, _ = cleaned(f"{INTRO}\n\n{OUTRO}\n\n{tail}\n")
    assert tail in text


@pytest.mark.parametrize(
    ("block", "contact"),
    [
        ("Contact us: info@example.org | Tel 555 1234", True),
        ("Press contact\npress@example.org\n+1 202 555 0143", True),
        ("Write to the editor at letters@example.org if you disagree with this article.", False),
        ("The vote was 55 to 45 in favour.", False),
        ("Updated 2022-09-15", False),
        ("Published 15.09.2022 10:30", False),
        ("Helpline 0800 123 4567", True),
    ],
)
def test_ingest_detectors_contact_block(block: str, contact: bool) -> None:
    assert is_contact_block(block) is contact


def test_ingest_detectors_email_signature_in_eml() -> None:
    eml = (
        b"From: Ann Lee <ann@example.org>\nSubject: Summit notes\n"
        b"Date: Thu, 15 Sep 2022 10:00:00 +0000\n"
        b"Content-Type: text/plain; charset=utf-8\n\n"
        b"The two leaders met on Thursday at a regional summit in Uzbekistan, officials said.\n\n"
        b"They discussed trade, energy and security during a two-hour meeting.\n\n"
        b"Best regards,\nAnn Lee\nSenior Analyst, Example Institute\n+44 20 7946 0958\n"
    )
    doc = clean_bytes(eml, source="m.eml", filename="m.eml")
    assert "two-hour meeting." in doc.text
    assert "Best regards" not in doc.text and "7946" not in doc.text


# ------------------------------------------------------------------ bylines


@pytest.mark.parametrize(
    ("line", "authors"),
    [
        ("By Reid Standish September 15, 2022", ["Reid Standish"]),
        ("Jane Doe | March 3, 2023", ["Jane Doe"]),
        ("Jane Doe · 15 September 2022", ["Jane Doe"]),
        ("Jane Doe and John Roe | Updated: 2023-03-03", ["Jane Doe", "John Roe"]),
        ("Jane Doe, Senior Fellow", ["Jane Doe"]),
        ("Jane Doe, Central Asia Correspondent", ["Jane Doe"]),
        ("Words by Jane Doe", ["Jane Doe"]),
        ("Words and photos by Jane Doe", ["Jane Doe"]),
        ("Text: Jane Doe", ["Jane Doe"]),
        ("Author: Jane Doe", ["Jane Doe"]),
        # look-alikes that are not bylines
        ("By the end of the day, he had left.", None),
        ("Paris, France", None),
        ("Markets | March 3, 2023", None),
        ("Ann Lee, who leads the team, said the talks went well.", None),
    ],
)
def test_ingest_detectors_byline_shapes(line: str, authors: list[str] | None) -> None:
    assert parse_byline(line) == authors


@pytest.mark.parametrize(
    ("byline", "authors"),
    [
        ("Jane Doe | March 3, 2023", ["Jane Doe"]),
        ("Jane Doe, Senior Fellow", ["Jane Doe"]),
        ("Words by Jane Doe", ["Jane Doe"]),
        ("Jane Doe", ["Jane Doe"]),
        ("Agnieszka Legucka, Marcin Przychodniak", ["Agnieszka Legucka", "Marcin Przychodniak"]),
    ],
)
def test_ingest_detectors_byline_goes_to_authors(byline: str, authors: list[str]) -> None:
    source = f"Xi Meets Putin in Samarkand\n\n{byline}\n\n{INTRO}\n\n{OUTRO}\n"
    doc = clean_bytes(source.encode(), source="a.txt", filename="a.txt")
    assert doc.metadata.authors == authors
    assert byline not in doc.text and doc.metadata.title == "Xi Meets Putin in Samarkand"
