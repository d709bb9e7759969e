"""The ledger: the fate of every input (processed, skipped with why, quarantined with the
reason), kept in the store so that a re-run knows what it already did, and quarantine copies
of the inputs that could not be processed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from corpus.store import Store
from schemas import LedgerEntry

LEDGER_WRITERS = 8  # concurrent writes of one batch's entries


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def source_key_id(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:24]


class Ledger:
    """`ledger/inputs/<id>.json` holds the latest entry per input;
    `quarantine/<id>/` the input's bytes and the reason."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def _key(self, source: str) -> str:
        return f"ledger/inputs/{source_key_id(source)}.json"

    def last(self, source: str) -> LedgerEntry | None:
        key = self._key(source)
        if self.store.head(key) is None:
            return None
        return LedgerEntry.model_validate(self.store.get_json(key))

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
        entry = self.entry(source, status, stage, **fields)
        self.store.put_json(self._key(source), entry.model_dump())
        return entry

    def record_many(self, entries: Sequence[LedgerEntry]) -> None:
        """Store entries (made by `entry`) a few at a time: each is its own object
        (`ledger/inputs/<id>.json`, what readers of the ledger list), so a batch is as many
        PUTs, and on S3 (or with a local store's fsync) their latency, not their bytes, is
        what costs: they overlap."""
        if len(entries) <= 1:
            for e in entries:
                self.store.put_json(self._key(e.source), e.model_dump())
            return
        with ThreadPoolExecutor(max_workers=LEDGER_WRITERS) as pool:
            # list(): an error in any write is raised here
            list(
                pool.map(
                    lambda e: self.store.put_json(self._key(e.source), e.model_dump()), entries
                )
            )

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
