"""Limits per input: each is checked cheaply before parsing, and a refusal names the limit and
the variable that sets it; the parse worker stops an input that outlives its time limit."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bench.hostile import (
    ARTICLE,
    deep_html,
    docx_bytes,
    pdf_bytes,
    write_bomb_docx,
    write_members_docx,
)
from ingest.errors import IngestError
from ingest.guard import clean_guarded, worker
from ingest.limits import Limits, check_input, html_shape
from ingest.pipeline import clean_bytes
from schemas.settings import Settings


def refusal(data: bytes, name: str, limits: Limits) -> IngestError:
    with pytest.raises(IngestError) as info:
        check_input(data, Path(name).suffix, limits, name)
    return info.value


def test_ingest_limits_defaults_are_the_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CORPUSFLOW_MAX_HTML_DEPTH", "CORPUSFLOW_PARSE_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    assert Limits() == Limits.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    monkeypatch.setenv("CORPUSFLOW_MAX_HTML_DEPTH", "77")
    monkeypatch.setenv("CORPUSFLOW_PARSE_TIMEOUT", "0")
    from_env = Limits.from_settings(Settings())
    assert (from_env.max_html_depth, from_env.parse_timeout) == (77, 0)


@pytest.mark.parametrize(
    ("html", "shape"),
    [
        ("<html><body><p>a</p></body></html>", (3, 3)),
        ("<p>a<p>b<p>c", (3, 5)),  # implied end tags: paragraphs are siblings
        ("<div>" * 300 + "x" + "</div>" * 300, (302, 302)),  # deeper than lxml's default tree
        ("", (0, 0)),
    ],
)
def test_ingest_limits_html_shape(html: str, shape: tuple[int, int]) -> None:
    assert html_shape(html.encode()) == shape


def test_ingest_limits_zip_bomb_refused_from_the_directory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    write_bomb_docx(bomb, 64 << 20)
    err = refusal(bomb.read_bytes(), "bomb.docx", Limits(max_unzipped_bytes=32 << 20))
    assert err.kind == "limit_exceeded"
    assert "word/document.xml" in err.message
    assert "(max_unzipped_bytes, CORPUSFLOW_MAX_UNZIPPED_BYTES)" in err.message


def test_ingest_limits_zip_member_count(tmp_path: Path) -> None:
    path = tmp_path / "members.docx"
    write_members_docx(path, 50)
    err = refusal(path.read_bytes(), "members.docx", Limits(max_zip_members=40))
    assert "(max_zip_members, CORPUSFLOW_MAX_ZIP_MEMBERS)" in err.message


def test_ingest_limits_docx_paragraphs_counted_before_partition() -> None:
    data = docx_bytes([f"paragraph {i}" for i in range(30)])
    err = refusal(data, "many.docx", Limits(max_docx_paragraphs=20))
    assert err.message.endswith(
        "has 30 paragraphs, over the limit of 20 (max_docx_paragraphs, "
        "CORPUSFLOW_MAX_DOCX_PARAGRAPHS)"
    )
    check_input(data, ".docx", Limits(max_docx_paragraphs=30), "many.docx")  # at the limit: fine


def test_ingest_limits_html_depth_and_elements() -> None:
    deep = deep_html(600)
    assert (
        "(max_html_depth, CORPUSFLOW_MAX_HTML_DEPTH)"
        in refusal(deep, "deep.html", Limits(max_html_depth=500)).message
    )
    wide = b"<html><body>" + b"<p>x</p>" * 100 + b"</body></html>"
    assert (
        "(max_html_elements, CORPUSFLOW_MAX_HTML_ELEMENTS)"
        in refusal(wide, "wide.html", Limits(max_html_elements=50)).message
    )


def test_ingest_limits_html_deeper_than_lxml_default_is_parsed() -> None:
    """Nested 300 levels (libxml2 drops what is below 255 by default): the text is kept."""
    doc = clean_bytes(deep_html(300), source="deep.html", filename="deep.html")
    assert "Brussels" in doc.text


def test_ingest_limits_encrypted_pdf_has_a_reason() -> None:
    err = refusal(pdf_bytes(1, password="secret"), "locked.pdf", Limits())
    assert err.kind == "encrypted" and "password" in err.message


def test_ingest_limits_pdf_pages() -> None:
    data = pdf_bytes(4)
    err = refusal(data, "long.pdf", Limits(max_pdf_pages=3))
    assert err.message.endswith(
        "has 4 pages, over the limit of 3 (max_pdf_pages, CORPUSFLOW_MAX_PDF_PAGES)"
    )
    doc = clean_bytes(data, source="long.pdf", filename="long.pdf", limits=Limits(max_pdf_pages=4))
    assert "Brussels" in doc.text


def test_ingest_limits_size_before_anything_else() -> None:
    err = refusal(b"x" * 101, "big.txt", Limits(max_source_bytes=100))
    assert err.kind == "too_large"
    assert (
        err.message
        == "big.txt: is 101 bytes, over the limit of 100 (max_source_bytes, CORPUSFLOW_MAX_BYTES)"
    )


# ---------------------------------------------------------------- the parse worker


def test_ingest_guard_same_document_as_in_process() -> None:
    data = docx_bytes([ARTICLE, "Second paragraph about the accord."])
    guarded = clean_guarded(data, source="a.docx", filename="a.docx", limits=Limits())
    bare = clean_guarded(data, source="a.docx", filename="a.docx", limits=Limits(parse_timeout=0))
    assert guarded == bare


def test_ingest_guard_timeout_stops_the_parser_and_the_next_input_is_parsed() -> None:
    # 4,000 paragraphs take unstructured tens of seconds; the limit is one second
    slow = docx_bytes([f"{i} {ARTICLE[:40]}" for i in range(4_000)])
    limits = Limits(parse_timeout=1, max_docx_paragraphs=10_000)
    clean_guarded(b"warm up", source="w.txt", filename="w.txt", limits=limits)
    started = worker().started
    with pytest.raises(IngestError) as info:
        clean_guarded(slow, source="slow.docx", filename="slow.docx", limits=limits)
    assert info.value.kind == "timeout"
    assert "(parse_timeout, CORPUSFLOW_PARSE_TIMEOUT)" in info.value.message
    doc = clean_guarded(ARTICLE.encode(), source="next.txt", filename="next.txt", limits=limits)
    assert "Brussels" in doc.text
    assert worker().started == started + 1  # the stuck worker was replaced


def test_ingest_guard_worker_killed_mid_parse_is_a_crash_not_a_hang() -> None:
    slow = docx_bytes([f"{i} {ARTICLE[:40]}" for i in range(4_000)])
    limits = Limits(parse_timeout=300, max_docx_paragraphs=10_000)
    clean_guarded(b"warm up", source="w.txt", filename="w.txt", limits=limits)
    proc = worker()._proc
    assert proc is not None
    errors: list[IngestError] = []

    def parse() -> None:
        try:
            clean_guarded(slow, source="slow.docx", filename="slow.docx", limits=limits)
        except IngestError as exc:
            errors.append(exc)

    thread = threading.Thread(target=parse)
    thread.start()
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)  # as the kernel's OOM killer would
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert [e.kind for e in errors] == ["parser_crashed"]
    assert "SIGKILL" in errors[0].message


def test_ingest_guard_memory_limit_is_a_named_reason(tmp_path: Path) -> None:
    """A bomb let past the zip check (its limit raised) meets the worker's memory limit."""
    bomb = tmp_path / "bomb.docx"
    write_bomb_docx(bomb, 1 << 30)
    limits = Limits(max_unzipped_bytes=2 << 30, parse_memory_mb=1_024, parse_timeout=300)
    with pytest.raises(IngestError) as info:
        clean_guarded(bomb.read_bytes(), source="bomb.docx", filename="bomb.docx", limits=limits)
    assert info.value.kind == "limit_exceeded", info.value.message
    assert "(parse_memory_mb, CORPUSFLOW_PARSE_MEMORY_MB)" in info.value.message
