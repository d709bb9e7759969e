"""trafilatura's extracted tree -> the decoded source text of an HTML page, with its tables.

trafilatura renders its own tree to text (`xmltotxt`); we let it, so the text holds exactly what
trafilatura alone would keep, except that each table is rendered by us: one block, a row per
line, cells separated by " | ", its source span recorded so the cleaners keep it whole, and its
cells returned so a downstream user can get the table back."""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

# a placeholder trafilatura's text sanitising leaves alone (it strips invisible characters)
MARKER = "zqcorpusflowtable{}qz"
MARKER_ANY = re.compile(r"zqcorpusflowtable(\d+)qz")
MARKER_LINE = re.compile(r"^zqcorpusflowtable(\d+)qz$")
CELL_SEPARATOR = " | "


@dataclass
class Table:
    """The cells of one table, row by row; `header` when its first row is a head row."""

    rows: list[list[str]]
    header: bool = False
    navigation: bool = False
    start: int = 0
    end: int = 0

    def as_record(self) -> dict[str, Any]:
        return {"rows": self.rows, "header": self.header, "start": self.start, "end": self.end}


@dataclass
class PageText:
    text: str
    tables: list[Table] = field(default_factory=list)


def cell_text(cell: Any) -> str:
    """Whitespace-collapsed text of a cell; ' | ' inside it would split the row, so it is kept
    as '/'."""
    return " ".join("".join(cell.itertext()).split()).replace(CELL_SEPARATOR, " / ")


def is_navigation_table(rows: list[list[str]]) -> bool:
    """A menu laid out as a table: one row or one column of short link-like items, no digits.

    [["News", "Sport", "Weather"]] -> True; [["Alpha", "120"], ["Beta", "98"]] -> False
    """
    cells = [c for row in rows for c in row if c]
    if len(cells) < 3:
        return False
    one_line = len(rows) == 1 or all(len([c for c in row if c]) <= 1 for row in rows)
    short = all(len(c.split()) <= 3 and not re.search(r"\d", c) for c in cells)
    return one_line and short


def table_rows(table: Any) -> tuple[list[list[str]], bool]:
    rows = []
    header = False
    for k, row in enumerate(table.iter("row")):
        cells = [cell_text(c) for c in row.findall("cell")]
        if k == 0 and any(c.get("role") == "head" for c in row.findall("cell")):
            header = True
        if any(cells):
            rows.append(cells)
    return rows, header


def render_body(body: Any) -> PageText:
    """trafilatura's body element -> blocks joined by a blank line, tables rendered by us.

    Every line of trafilatura's text becomes a block (a paragraph, a heading, a list item), as
    `paragraphs_text` would make it; a table is one block of rows."""
    from trafilatura.xml import xmltotxt

    tree = deepcopy(body)
    tables: list[Table] = []
    for table in list(tree.iter("table")):
        if any(a.tag == "table" for a in table.iterancestors()):
            continue  # nested: its rows are rendered with the outer table
        rows, header = table_rows(table)
        placeholder = table.makeelement("p", {})
        placeholder.text = MARKER.format(len(tables))
        placeholder.tail = table.tail
        tables.append(Table(rows, header, is_navigation_table(rows)))
        parent = table.getparent()
        if parent is None:
            continue
        parent.replace(table, placeholder)
    raw = xmltotxt(tree, False)
    items: list[str | Table] = []
    for line in raw.split("\n"):
        line = line.strip()
        m = MARKER_LINE.match(line)
        if m:
            items.append(tables[int(m.group(1))])
            continue
        if "zqcorpusflowtable" in line:
            # a table inside a paragraph: its rows go in the line as text
            line = MARKER_ANY.sub(
                lambda m: " ".join(" ".join(r) for r in tables[int(m.group(1))].rows), line
            )
        items.append(line)
    return render_blocks(items)


def table_from_html(markup: str) -> Table | None:
    """A table given as HTML (unstructured's `text_as_html`) -> Table, or None if unparsable.

    "<table><tr><td>a</td><td>1</td></tr></table>" -> Table(rows=[["a", "1"]])
    """
    from lxml import etree, html

    try:
        root = html.fromstring(markup)
    except (etree.ParserError, ValueError):
        return None
    rows = []
    header = False
    for k, tr in enumerate(root.iter("tr")):
        cells = [cell_text(c) for c in tr if c.tag in ("td", "th")]
        header = header or (k == 0 and any(c.tag == "th" for c in tr))
        if any(cells):
            rows.append(cells)
    return Table(rows, header, is_navigation_table(rows))


def render_blocks(items: list[str | Table]) -> PageText:
    """Texts and tables -> blocks joined by a blank line (empty texts dropped), each table one
    block of rows with its source span recorded."""
    parts: list[str] = []
    tables: list[Table] = []
    pos = 0
    for item in items:
        if isinstance(item, Table):
            text = "\n".join(CELL_SEPARATOR.join(row) for row in item.rows)
        else:
            text = (item or "").strip()
        if not text.strip():
            continue
        if isinstance(item, Table):
            item.start, item.end = pos, pos + len(text)
            tables.append(item)
        parts.append(text)
        pos += len(text) + 2
    return PageText("\n\n".join(parts), tables)
