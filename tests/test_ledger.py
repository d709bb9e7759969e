"""The ledger keeps every input's fate; quarantine keeps the input and the reason."""

from __future__ import annotations

from pathlib import Path

from corpus.ledger import Ledger, source_key_id
from corpus.store import LocalStore


def test_ledger_records_latest_fate_per_input(tmp_path: Path) -> None:
    ledger = Ledger(LocalStore(tmp_path), run_id="r1")
    assert ledger.last("a.txt") is None
    ledger.record(
        "a.txt", "processed", "ingest", doc_id="d1", source_sha256="x", cleaner_version="1"
    )
    ledger.record("a.txt", "skipped", "ingest", reason="unchanged")
    last = ledger.last("a.txt")
    assert last is not None and (last.status, last.reason, last.run_id) == (
        "skipped",
        "unchanged",
        "r1",
    )
    assert ledger.last("b.txt") is None


def test_ledger_quarantine_keeps_input_and_reason(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    entry = Ledger(store, run_id="r2").quarantine(
        "bad.pdf", b"\x00\x01", stage="ingest", kind="binary", message="bad.pdf: binary content"
    )
    assert (entry.status, entry.error_kind) == ("quarantined", "binary")
    base = f"quarantine/{source_key_id('bad.pdf')}"
    assert store.get_bytes(f"{base}/input") == b"\x00\x01"
    assert store.get_json(f"{base}/reason.json")["message"] == "bad.pdf: binary content"


def test_ledger_record_many_writes_one_readable_entry_per_input(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ledger = Ledger(store, run_id="r3")
    sources = [f"s/{i}.txt" for i in range(20)]
    ledger.record_many(
        [ledger.entry(s, "processed", "ingest", doc_id=f"d{i}") for i, s in enumerate(sources)]
    )
    assert len(list(store.list("ledger/inputs/"))) == 20  # the layout readers list
    for i, s in enumerate(sources):
        last = ledger.last(s)
        assert last is not None and (last.status, last.doc_id, last.run_id) == (
            "processed",
            f"d{i}",
            "r3",
        )
