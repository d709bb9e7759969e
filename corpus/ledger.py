"""The ledger: the fate of every input (processed, skipped with why, quarantined with the
reason), kept in the store so that a re-run knows what it already did, and quarantine copies
of the inputs that could not be processed.

Layout: `ledger/entries/<time>-<token>.json`, one object per ingest batch that decided
anything (a JSON list of entries; an unchanged input gets no new entry, its last one stands).
An input's fate is its latest entry: the objects are read in key order, which is the order
of the writers' clocks, later entries overriding earlier ones (runs hold the store's lease one
at a time, so only a clock skew longer than the gap between two runs could misorder them).
Stores written before this layout hold one object per input, `ledger/inputs/<id>.json`;
`read_ledger` reads those first, so an old store needs no migration (its next entries for an
input override the old one)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

from corpus.store import Store
from schemas import LedgerEntry

ENTRIES = "ledger/entries/"
OLD_INPUTS = "ledger/inputs/"  # one object per input: stores written before ENTRIES


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def source_key_id(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:24]


class Ledger:
    """The entries of one task (an ingest batch), kept until `flush` writes them as one object
    `ledger/entries/<time>-<token>.json`; `quarantine/<id>/` the input's bytes and the reason,
    written at once."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.pending: list[LedgerEntry] = []

    def last(self, source: str) -> LedgerEntry | None:
        """The input's latest stored entry (reads the whole ledger: for tests and one-offs)."""
        return read_ledger(self.store).get(source)

    def entry(
        self,
        source: str,
        status: str,
        stage: str,
        *,
        doc_id: str | None = None,
        source_sha256: str | None = None,
        reason: str | None = None,
        error_kind: str | None = None,
        cleaner_version: str | None = None,
    ) -> LedgerEntry:
        return LedgerEntry.model_validate(
            {
                "source": source,
                "doc_id": doc_id,
                "source_sha256": source_sha256,
                "status": status,
                "stage": stage,
                "reason": reason,
                "error_kind": error_kind,
                "cleaner_version": cleaner_version,
                "run_id": self.run_id,
                "at": now_iso(),
            }
        )

    def record(self, source: str, status: str, stage: str, **fields: str | None) -> LedgerEntry:
        """An entry for `source`, stored at the next `flush`."""
        entry = self.entry(source, status, stage, **fields)
        self.pending.append(entry)
        return entry

    def record_many(self, entries: Sequence[LedgerEntry]) -> None:
        """Entries (made by `entry`), stored at the next `flush`."""
        self.pending.extend(entries)

    def flush(self) -> str | None:
        """Store the pending entries as one object (one PUT however many inputs the batch had);
        its key, or None when there was nothing to store."""
        if not self.pending:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        key = f"{ENTRIES}{stamp}-{secrets.token_hex(4)}.json"
        self.store.put_json(key, [e.model_dump() for e in self.pending])
        self.pending = []
        return key

    def quarantine(
        self, source: str, data: bytes, *, stage: str, kind: str, message: str
    ) -> LedgerEntry:
        base = f"quarantine/{source_key_id(source)}"
        self.store.put_bytes(f"{base}/input", data)
        self.store.put_json(
            f"{base}/reason.json",
            {"source": source, "stage": stage, "kind": kind, "message": message, "at": now_iso()},
        )
        return self.record(
            source,
            "quarantined",
            stage,
            source_sha256=hashlib.sha256(data).hexdigest(),
            reason=message,
            error_kind=kind,
        )

    def quarantine_parts(
        self, source: str, chunks: Iterable[bytes], *, stage: str, kind: str, message: str
    ) -> LedgerEntry:
        """`quarantine` for an input too large to hold in memory: its bytes are copied as they
        are read, one object per chunk (`input.part-00000`, ...; `cat` them to rebuild it)."""
        base = f"quarantine/{source_key_id(source)}"
        digest, size, parts = hashlib.sha256(), 0, 0
        for chunk in chunks:
            self.store.put_bytes(f"{base}/input.part-{parts:05d}", chunk)
            digest.update(chunk)
            size, parts = size + len(chunk), parts + 1
        self.store.put_json(
            f"{base}/reason.json",
            {
                "source": source,
                "stage": stage,
                "kind": kind,
                "message": message,
                "at": now_iso(),
                "size": size,
                "parts": parts,
            },
        )
        return self.record(
            source,
            "quarantined",
            stage,
            source_sha256=digest.hexdigest(),
            reason=message,
            error_kind=kind,
        )


def _ledger_keys(store: Store) -> list[str]:
    """The ledger's objects, oldest first: the old layout's one per input, then the entry
    objects in key (= write) order."""
    return sorted(store.list(OLD_INPUTS)) + sorted(store.list(ENTRIES))


def stored_entries(store: Store, keys: Sequence[str] | None = None) -> Iterator[LedgerEntry]:
    """Every entry of the ledger's objects (`keys`, default all of them), oldest first."""
    for key in _ledger_keys(store) if keys is None else keys:
        if key.startswith(OLD_INPUTS):
            yield LedgerEntry.model_validate(store.get_json(key))
            continue
        for raw in store.get_json(key):
            yield LedgerEntry.model_validate(raw)


def read_ledger(store: Store, keys: Sequence[str] | None = None) -> dict[str, LedgerEntry]:
    """The fate of every input: its latest entry, by source key."""
    return {entry.source: entry for entry in stored_entries(store, keys)}


def compact_ledger(store: Store, *, dry_run: bool = False) -> tuple[int, int]:
    """Rewrite the ledger as one object holding each input's latest entry, then delete the
    objects it replaces (the old layout's per-input ones too): what keeps `ledger/entries/`
    from growing by an object per batch and run that re-records skipped or quarantined inputs.
    The caller holds the store's run lease, so no ingest batch writes meanwhile; the new object
    is named by the time now, after every object it replaces and before any later run's. A
    crash between its write and the deletes leaves entries twice, which read the same.
    Returns (objects replaced, inputs in the compacted object); nothing to do with one object
    or none."""
    keys = _ledger_keys(store)
    if len(keys) <= 1:
        return 0, 0
    latest = read_ledger(store, keys)  # what is read is what is deleted: one listing
    if dry_run:
        return len(keys), len(latest)
    compacted = Ledger(store, run_id="compact")
    compacted.record_many(list(latest.values()))
    written = compacted.flush()
    for key in keys:
        if key != written:
            store.delete(key)
    return len(keys), len(latest)
