"""Publishing against a real, authenticated SeaweedFS from separate processes, and what a
read-only identity can do."""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path
from typing import Any

import pytest

from corpus.pull import load_docs, pull
from corpus.release import LATEST_KEY, list_versions, read_manifest
from corpus.store import AccessDenied
from services.seaweedfs import SeaweedService
from tests.s3_fixtures import make_s3_store
from tests.test_release import CountingStore, do_publish, make_records, object_of

pytestmark = pytest.mark.integration


def _publish_in_child(
    service: SeaweedService, prefix: str, barrier: Any, out: Any, variant: int | None
) -> None:
    store = make_s3_store(service, prefix)  # its own client and connections
    records = make_records()
    if variant is not None:
        records[2]["text"] = f"Variant {variant}."
    barrier.wait(timeout=240)
    try:
        result = do_publish(store, records)
        out.put((result.created, result.version))
    except BaseException as e:  # reported to the parent, which fails the test
        out.put(("error", repr(e)))


def _race(service: SeaweedService, prefix: str, variants: list[int | None]) -> list[Any]:
    # spawn, not fork: by the time this runs the test session has threads (Prefect's
    # harness, HTTP servers) whose locks a forked child would inherit mid-use
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(len(variants)), ctx.Queue()
    procs = [
        ctx.Process(target=_publish_in_child, args=(service, prefix, barrier, out, v))
        for v in variants
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def test_release_s3_two_processes_same_content_one_version(seaweed: SeaweedService) -> None:
    prefix = f"race-{uuid.uuid4().hex[:8]}"
    results = _race(seaweed, prefix, [None, None])
    assert sorted(results) == [(False, "v0001"), (True, "v0001")]
    store = make_s3_store(seaweed, prefix)
    assert list(list_versions(store)) == ["v0001"]
    latest = store.get_json(LATEST_KEY)
    assert (
        read_manifest(store, "v0001", latest["manifest_sha256"]).content_hash
        == (latest["content_hash"])
    )


def test_release_s3_two_processes_different_content_both_land_linearly(
    seaweed: SeaweedService,
) -> None:
    prefix = f"race-{uuid.uuid4().hex[:8]}"
    results = _race(seaweed, prefix, [1, 2])
    assert all(created for created, _ in results)
    first, second = sorted(v for _, v in results)
    # a publisher that lost the race for a number leaves an orphan claim and takes the next
    # free one, so numbers may skip; history stays linear all the same
    store = make_s3_store(seaweed, prefix)
    assert first == "v0001" and store.get_json(LATEST_KEY)["version"] == second
    assert read_manifest(store, second).previous == first


def test_release_s3_unchanged_input_writes_nothing(seaweed: SeaweedService) -> None:
    store = make_s3_store(seaweed, f"same-{uuid.uuid4().hex[:8]}")
    do_publish(store)
    before = list(store.list(""))
    counting = CountingStore(store)
    again = do_publish(counting, list(reversed(make_records())))
    assert (again.created, again.version) == (False, "v0001")
    assert counting.puts == [] and list(store.list("")) == before


def test_release_s3_readonly_identity_loads_docs_and_cannot_move_latest(
    seaweed: SeaweedService, tmp_path: Path
) -> None:
    prefix = f"ro-{uuid.uuid4().hex[:8]}"
    result = do_publish(make_s3_store(seaweed, prefix))
    reader = make_s3_store(seaweed, prefix, readonly=True)
    assert [d.user_data["doc_id"] for d in load_docs(reader, layer="gold")] == ["doc-a"]
    folder = pull(reader, dest=tmp_path)
    pull(reader, dest=tmp_path)  # a second pull finds everything in place
    assert len(list((folder / "spacy").glob("*.spacy"))) == 1
    with pytest.raises(AccessDenied):
        reader.put_json(LATEST_KEY, {"version": "v9999"})
    with pytest.raises(AccessDenied):
        reader.delete(object_of(result, "corpus.jsonl"))
    with pytest.raises(AccessDenied):
        reader.put_bytes(object_of(result, "corpus.jsonl"), b"{}\n")
    assert reader.get_json(LATEST_KEY)["version"] == "v0001"
    assert reader.exists(object_of(result, "corpus.jsonl"))
