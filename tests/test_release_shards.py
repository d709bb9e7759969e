"""Releases as content-addressed shards that versions share: a small change keeps every base
shard and writes the changed documents as an update part with a new live index (merge on
read), compaction rewrites the affected ranges once the overlay grows, shard ranges stay put
across versions, and a publish that crashed before its manifest leaves no version behind."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.pull import load, pull
from corpus.release import (
    KEY_SPACE,
    LATEST_KEY,
    OBJECTS,
    list_versions,
    read_manifest,
    shard_key,
    shard_starts,
)
from corpus.store import NotFound, Store
from tests.test_release import CountingStore, do_publish, make_records
from tests.test_release import store as store  # noqa: F401 - the local/S3 fixture


def many_records(n: int) -> list[dict[str, Any]]:
    """n documents made from the test records, each with its own id and text."""
    base = make_records()
    out = []
    for i in range(n):
        r = copy.deepcopy(base[i % len(base)])
        r["doc_id"] = f"doc-{i:05d}"
        r["text"] = r["text"] + f" ({i})"
        out.append(r)
    return out


def objects(store: Store) -> dict[str, int]:
    return {key: len(store.get_bytes(key)) for key in store.list(f"{OBJECTS}/")}


def test_release_shards_one_changed_document_writes_one_update(store: Store) -> None:
    records = many_records(160)
    first = do_publish(store, records, shard_docs=8)
    shards = [s for s in first.manifest.shards if s.documents]
    assert len(first.manifest.shards) == 20 and sum(s.documents for s in shards) == 160
    before = objects(store)
    full = sum(f.size for f in first.manifest.files)

    changed = copy.deepcopy(records)
    changed[37]["review_status"] = "reviewed"
    changed[37]["entities"] = changed[37]["entities"][:1]  # so that every format changes
    counting = CountingStore(store)
    second = do_publish(counting, changed, shard_docs=8)
    assert second.created and second.manifest.previous == first.manifest.version
    new = {k: n for k, n in objects(store).items() if k not in before}
    # the update's four formats, the live index, and this version's datasheet and notes
    assert len(new) == 7, sorted(new)
    assert sum(1 for k in new if k.endswith((".jsonl", ".conll", ".spacy"))) == 3
    assert sum(new.values()) < 0.15 * full
    # every base shard is the previous version's; the changed document is in one update
    assert second.manifest.shards == first.manifest.shards
    [update] = second.manifest.updates
    assert update.documents == 1 and second.manifest.dead_rows == 1
    index = {f.path: f for f in second.manifest.files}["live.parquet"]
    live = pq.read_table(pa.BufferReader(store.get_bytes(index.object or ""))).to_pylist()
    assert len(live) == 160 and len({r["doc_id"] for r in live}) == 160
    [row] = [r for r in live if r["doc_id"] == "doc-00037"]
    assert (row["part"], row["position"], row["row_id"]) == (
        update.name,
        0,
        f"{update.name}/doc-00037",
    )
    # only the new objects were written (labels and agreement are found there already)
    written = [k for k in counting.puts if k.startswith(f"{OBJECTS}/")]
    assert set(written) - set(new) == {
        f.object for f in second.manifest.files if f.path in ("labels.json", "agreement.json")
    }
    notes = b"".join(
        store.get_bytes(f.object or "") for f in second.manifest.files if f.path == "NOTES.md"
    ).decode()
    assert "0 added, 1 changed, 0 removed, 159 unchanged" in notes and "`doc-00037`" in notes
    assert {r["doc_id"]: r["review_status"] for r in load(store)}["doc-00037"] == "reviewed"


def test_release_shards_added_and_removed_documents_keep_every_base_shard(store: Store) -> None:
    records = many_records(64)
    first = do_publish(store, records, shard_docs=8)
    grown = [*records[1:], *many_records(66)[64:]]  # doc-00000 gone, two added
    second = do_publish(store, grown, shard_docs=8)
    assert second.manifest.shards == first.manifest.shards
    [update] = second.manifest.updates
    assert update.documents == 2 and second.manifest.dead_rows == 1
    assert sorted(r["doc_id"] for r in load(store)) == sorted(r["doc_id"] for r in grown)
    # in release order: the base shards' live rows by key, then the update's
    order = [r["doc_id"] for r in load(store)]
    assert order == sorted(order[:-2], key=shard_key) + sorted(order[-2:], key=shard_key)
    assert set(order[-2:]) == {"doc-00064", "doc-00065"}


@pytest.mark.parametrize(
    ("n_keys", "shard_docs", "previous", "expected"),
    [
        (0, 8, None, [0]),
        (8, 8, None, [0]),
        (9, 8, None, [0, KEY_SPACE // 2]),
        (24, 8, None, [0, KEY_SPACE // 3, 2 * KEY_SPACE // 3]),
        # the previous ranges stay, however few documents they hold now
        (3, 8, [0, 1 << 60, 1 << 62], [0, 1 << 60, 1 << 62]),
        # a range past twice shard_docs is split in equal parts; the others stay as they are
        (40, 8, [0, KEY_SPACE // 2], "split-second-half"),
    ],
)
def test_release_shards_starts_follow_the_previous_version(
    n_keys: int, shard_docs: int, previous: list[int] | None, expected: Any
) -> None:
    from schemas.release import ReleaseManifest, ReleaseShard

    if expected == "split-second-half":
        keys = sorted([1] * 4 + [KEY_SPACE // 2 + i for i in range(36)])
        expected = [0, *(KEY_SPACE // 2 + j * (KEY_SPACE // 2) // 5 for j in range(5))]
    else:
        keys = [i * KEY_SPACE // n_keys for i in range(n_keys)]  # evenly spread, as hashes are
    manifest = None
    if previous is not None:
        manifest = ReleaseManifest(
            version="v0001",
            created_at="now",
            content_hash="0" * 64,
            code_version="test",
            files=[],
            shards=[ReleaseShard(start=f"{s:016x}", documents=1) for s in previous],
        )
    assert shard_starts(keys, shard_docs, manifest) == expected


def test_release_shards_crash_before_manifest_leaves_no_version(
    store: Store, tmp_path: Path
) -> None:
    records = many_records(40)

    class CrashAtManifest(CountingStore):
        def _count_put(self, key: str) -> None:
            super()._count_put(key)
            if key.endswith("/manifest.json"):
                raise RuntimeError("simulated crash before the manifest")

    crashing = CrashAtManifest(store)
    with pytest.raises(RuntimeError, match="simulated crash"):
        do_publish(crashing, records, shard_docs=8)
    written = [k for k in crashing.puts if k.startswith(f"{OBJECTS}/")]
    assert len(written) == 5 * 4 + 1 + 4 and all(store.exists(k) for k in written)
    # no version is visible: no manifest, no latest, nothing to pull
    assert list(list_versions(store)) == []
    with pytest.raises(NotFound):
        store.get_bytes(LATEST_KEY)
    with pytest.raises(NotFound):
        pull(store, dest=tmp_path / "none")

    retry = do_publish(store, records, shard_docs=8)
    assert (retry.created, retry.version) == (True, "v0001")  # the claim is resumed
    assert {f.object for f in retry.manifest.files} == set(written)
    assert sorted(r["doc_id"] for r in load(pull(store, dest=tmp_path / "ok"))) == sorted(
        r["doc_id"] for r in records
    )


def test_release_shards_records_may_be_a_generator(store: Store) -> None:
    result = do_publish(store, iter(many_records(30)), shard_docs=4)  # type: ignore[arg-type]
    assert result.manifest.counts["documents"] == 30
    assert read_manifest(store, "v0001").shards == result.manifest.shards


def test_release_shards_empty_release_pulls_and_loads(store: Store, tmp_path: Path) -> None:
    result = do_publish(store, [])
    assert result.manifest.counts["documents"] == 0
    assert [s.documents for s in result.manifest.shards] == [0]
    folder = pull(store, dest=tmp_path)
    assert list(load(store)) == [] and list(load(folder)) == []
    assert "0 documents" in (folder / "README.md").read_text()
