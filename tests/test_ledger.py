"""The ledger keeps every input's fate; quarantine keeps the input and the reason."""

from __future__ import annotations

from pathlib import Path

from corpus.ledger import ENTRIES, Ledger, read_ledger, source_key_id
from corpus.store import LocalStore
from schemas import LedgerEntry


def test_ledger_records_latest_fate_per_input(tmp_path: Path) -> None:
    ledger = Ledger(LocalStore(tmp_path), run_id="r1")
    assert ledger.last("a.txt") is None
    ledger.record(
        "a.txt", "processed", "ingest", doc_id="d1", source_sha256="x", cleaner_version="1"
    )
    ledger.flush()
    ledger.record("a.txt", "skipped", "ingest", reason="unchanged")
    last = ledger.last("a.txt")
    assert last is not None and last.status == "processed"  # not stored before the flush
    ledger.flush()
    last = ledger.last("a.txt")
    assert last is not None and (last.status, last.reason, last.run_id) == (
        "skipped",
        "unchanged",
        "r1",
    )
    assert ledger.last("b.txt") is None


def test_ledger_quarantine_keeps_input_and_reason(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ledger = Ledger(store, run_id="r2")
    entry = ledger.quarantine(
        "bad.pdf", b"\x00\x01", stage="ingest", kind="binary", message="bad.pdf: binary content"
    )
    assert (entry.status, entry.error_kind) == ("quarantined", "binary")
    ledger.flush()
    assert read_ledger(store)["bad.pdf"] == entry
    base = f"quarantine/{source_key_id('bad.pdf')}"
    assert store.get_bytes(f"{base}/input") == b"\x00\x01"
    assert store.get_json(f"{base}/reason.json")["message"] == "bad.pdf: binary content"


def test_ledger_flush_writes_a_batch_as_one_object_with_an_entry_per_input(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ledger = Ledger(store, run_id="r3")
    sources = [f"s/{i}.txt" for i in range(20)]
    ledger.record_many(
        [ledger.entry(s, "processed", "ingest", doc_id=f"d{i}") for i, s in enumerate(sources)]
    )
    key = ledger.flush()
    assert key is not None and key.startswith(ENTRIES)
    assert list(store.list("ledger/")) == [key]  # one PUT for the batch, not one per input
    assert ledger.pending == [] and ledger.flush() is None  # nothing twice, nothing empty
    for i, s in enumerate(sources):
        last = ledger.last(s)
        assert last is not None and (last.status, last.doc_id, last.run_id) == (
            "processed",
            f"d{i}",
            "r3",
        )


def test_ledger_reads_the_old_one_object_per_input_layout_under_newer_entries(
    tmp_path: Path,
) -> None:
    """A store written before `ledger/entries/` keeps `ledger/inputs/<id>.json`: read as they
    are, each overridden by any later entry for its input; later flushes win over earlier."""
    store = LocalStore(tmp_path)
    old = Ledger(store, "r0")
    for source, status in (("a.txt", "processed"), ("b.txt", "skipped")):
        entry = old.entry(source, status, "ingest", reason=None if status == "processed" else "x")
        store.put_json(f"ledger/inputs/{source_key_id(source)}.json", entry.model_dump())
    first = Ledger(store, "r1")
    first.record("b.txt", "quarantined", "ingest", reason="empty", error_kind="empty")
    first.record("c.txt", "processed", "ingest", doc_id="c")
    first.flush()
    second = Ledger(store, "r2")
    second.record("c.txt", "skipped", "ingest", reason="unsupported")
    second.flush()
    fates = {s: (e.status, e.run_id) for s, e in read_ledger(store).items()}
    assert fates == {
        "a.txt": ("processed", "r0"),
        "b.txt": ("quarantined", "r1"),
        "c.txt": ("skipped", "r2"),
    }
    assert all(isinstance(e, LedgerEntry) for e in read_ledger(store).values())
