"""Re-runs that cost what changed: ingest does not read a source whose size and mtime (an S3
object: its ETag) are those recorded when it was cleaned, unless asked to rehash; a source
touched without a change is hashed once and recorded again; every input keeps its fate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prefect import flow

from corpus.stagestore import clean_store
from corpus.store import LocalStore, S3Store
from flows.tasks import IngestOutcome, commit_stage, discover, ingest_batch, ingest_todo
from schemas.settings import Settings
from services.seaweedfs import SeaweedService

TEXT = "Delegates met in Geneva on Monday. Talks resume next week, officials said.\n"


@flow(name="test-ingest")
def _ingest_flow(sources: str, settings: Settings, run_id: str) -> IngestOutcome:
    return ingest_batch(discover(sources, settings), settings, run_id)


def ingest(sources: str, settings: Settings, run: str) -> IngestOutcome:
    """One ingest of every source, committed to the clean index as the flow does."""
    out = _ingest_flow(sources, settings, run)
    commit_stage(settings, "clean", out.entries)
    return out


def same_size_edit(path: Path, text: str) -> None:
    """New content of the same size with the old mtime put back (what `cp -p` of another
    file, or a clock set back, can do): the case the signature cannot see."""
    st = path.stat()
    assert len(text.encode()) == st.st_size
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_rerun_unchanged_local_source_is_not_read_unless_rehash(
    tmp_path: Path, prefect_harness: None
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / f"{name}.txt").write_text(f"{name.upper()}. {TEXT}", encoding="utf-8")
    (src / "notes.bin").write_bytes(b"\x00")
    settings = Settings(store=f"file://{tmp_path / 'store'}")

    first = ingest(str(src), settings, "r1")
    assert len(first.processed) == 3 and [s for s, _ in first.skipped] == ["notes.bin"]

    # an edit the signature cannot see: not read, so still "unchanged" (this is the shortcut)
    same_size_edit(src / "a.txt", f"Z. {TEXT}")
    again = ingest(str(src), settings, "r2")
    assert (again.processed, len(again.unchanged)) == ([], 3)
    assert again.entries == []  # nothing to commit: the index is not rewritten
    assert [s for s, _ in again.skipped] == ["notes.bin"]  # every input still has a fate

    # the flow maps no ingest task for them: only the skipped input goes to a batch
    todo, unchanged = ingest_todo(settings, discover(str(src), settings))
    assert [r.key for r in todo] == ["notes.bin"] and len(unchanged) == 3
    forced = ingest_todo(settings.model_copy(update={"rehash": True}), discover(str(src), settings))
    assert len(forced[0]) == 4 and forced[1] == []

    # --rehash reads every source: the edit is found
    rehashed = ingest(str(src), settings.model_copy(update={"rehash": True}), "r3")
    assert len(rehashed.processed) == 1 and len(rehashed.unchanged) == 2

    # touched, same bytes: read and hashed once, found unchanged, its new signature recorded
    b = src / "b.txt"
    os.utime(b, ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns + 10**9))
    touched = ingest(str(src), settings, "r4")
    assert touched.processed == [] and len(touched.unchanged) == 3
    assert len(touched.entries) == 1  # the new signature, same shard and line
    index = clean_store(LocalStore(tmp_path / "store")).load()
    entry = index.docs[touched.entries[0][0]]
    assert entry.source_sig == f"{b.stat().st_size}:{b.stat().st_mtime_ns}"
    assert ingest(str(src), settings, "r5").entries == []

    # a real edit moves the mtime: read, cleaned again
    (src / "c.txt").write_text(f"C. {TEXT} Corrected.\n", encoding="utf-8")
    edited = ingest(str(src), settings, "r6")
    assert len(edited.processed) == 1 and len(edited.unchanged) == 2


def test_rerun_index_without_signatures_hashes_once_then_trusts_them(
    tmp_path: Path, prefect_harness: None
) -> None:
    """An index written before signatures (rows of 6 fields) reads as signatures unknown:
    every source is hashed once, found unchanged, and its signature recorded."""
    import gzip
    import json

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text(TEXT, encoding="utf-8")
    settings = Settings(store=f"file://{tmp_path / 'store'}")
    ingest(str(src), settings, "r1")
    store = LocalStore(tmp_path / "store")
    key = clean_store(store).index_key
    raw = json.loads(gzip.decompress(store.get_bytes(key)))
    raw["docs"] = [row[:6] for row in raw["docs"]]
    store.put_bytes(key, gzip.compress(json.dumps(raw).encode()))

    old = ingest(str(src), settings, "r2")
    assert old.processed == [] and len(old.unchanged) == 1 and len(old.entries) == 1
    assert ingest(str(src), settings, "r3").entries == []


@pytest.mark.integration
def test_rerun_s3_source_signature_is_its_etag(
    tmp_path: Path, seaweed: SeaweedService, s3_store: S3Store, prefect_harness: None
) -> None:
    """Sources under an s3:// prefix: the listing's size and ETag decide, with no GET or HEAD
    of an unchanged object; an overwrite of the same size changes the ETag and is read."""
    src_prefix = f"{s3_store.prefix}/sources"
    for name in ("a", "b"):
        s3_store.put_bytes(f"sources/{name}.txt", f"{name.upper()}. {TEXT}".encode())
    settings = Settings(
        store=f"file://{tmp_path / 'store'}",
        aws_endpoint_url=seaweed.endpoint_url,
        aws_access_key_id=seaweed.access_key,
        aws_secret_access_key=seaweed.secret_key,
    )
    url = f"s3://{s3_store.bucket}/{src_prefix}"
    assert len(ingest(url, settings, "r1").processed) == 2

    calls: list[str] = []

    def seen(model: object, **_: object) -> None:
        calls.append(model.name)  # type: ignore[attr-defined]

    events = s3_store.client.meta.events  # the process's one client (corpus.store.s3_client)
    events.register("before-call.s3", seen, unique_id="test-rerun")
    try:
        again = ingest(url, settings, "r2")
    finally:
        events.unregister("before-call.s3", unique_id="test-rerun")
    assert again.processed == [] and len(again.unchanged) == 2
    assert set(calls) == {"ListObjectsV2"}, calls  # nothing read

    s3_store.put_bytes("sources/a.txt", f"Z. {TEXT}".encode())  # same size, new ETag
    assert len(ingest(url, settings, "r3").processed) == 1
