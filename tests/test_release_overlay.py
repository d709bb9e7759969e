"""Merge on read (layout 3): a version keeps the previous version's parts, writes what was added
or changed as update parts and lists its live rows in `live.parquet`; every reader applies that
index, so each version reads exactly like the same records published afresh. Compaction
rewrites the affected ranges when the overlay grows, deterministically."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import corpus.release as release
from corpus.pull import ChecksumMismatch, load, load_docs, pull, read_release_file
from corpus.release import (
    COMPACT_DEAD_SHARE,
    PublishResult,
    conll_blocks,
    read_manifest,
    shard_key,
)
from corpus.store import LocalStore, Store
from tests.test_release import CountingStore, do_publish
from tests.test_release import store as store  # noqa: F401 - the local/S3 fixture
from tests.test_release_shards import many_records

N, SHARD_DOCS = 120, 8


def history() -> list[list[dict[str, Any]]]:
    """The input of five versions: changes, a removal, an addition, a document changed twice,
    one changed back to what its base shard holds, a removed one back again."""
    v1 = many_records(N)
    v2 = copy.deepcopy(v1)
    v2[3]["review_status"] = "reviewed"
    v2[52]["entities"] = v2[52]["entities"][:1]
    del v2[7]
    v2.append(many_records(N + 1)[N])
    v3 = copy.deepcopy(v2)
    v3[3]["review_status"] = "adjudicated"  # doc-00003 changed again
    v3[51] = copy.deepcopy(v1[52])  # doc-00052 back as it was (v2[51] is doc-00052)
    v3 = [r for r in v3 if r["doc_id"] != f"doc-{N:05d}"]  # the added one gone again
    v4 = [*copy.deepcopy(v3), copy.deepcopy(v1[7])]  # doc-00007 back
    v5 = copy.deepcopy(v4)
    v5[0]["text"] += " Edited."
    return [v1, v2, v3, v4, v5]


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["doc_id"]: r for r in records}


def fresh(records: list[dict[str, Any]], tmp: Path) -> tuple[PublishResult, Store]:
    """The same records published on their own: base shards only, nothing overlaid."""
    other = LocalStore(tmp)
    return do_publish(other, records, shard_docs=SHARD_DOCS), other


def test_release_overlay_every_version_reads_like_a_fresh_publish(
    store: Store, tmp_path: Path
) -> None:
    for n, records in enumerate(history(), start=1):
        result = do_publish(store, records, shard_docs=SHARD_DOCS)
        version = f"v{n:04d}"
        assert (result.created, result.version, result.manifest.layout) == (True, version, 3)
        if n > 1:  # small changes: every version after the first is overlaid
            assert result.manifest.updates and result.manifest.dead_rows > 0
        alone, alone_store = fresh(records, tmp_path / f"fresh-{n}")
        assert not alone.manifest.updates and alone.manifest.dead_rows == 0
        # the content hash is the live content's, whatever the layout
        assert result.manifest.content_hash == alone.manifest.content_hash
        assert result.manifest.counts == alone.manifest.counts

        got = list(load(store, version))
        assert by_id(got) == by_id(list(load(alone_store))) and len(got) == len(records)
        docs = list(load_docs(store, version))
        assert [d.user_data["doc_id"] for d in docs] == [r["doc_id"] for r in got]
        assert [d.user_data["review_status"] for d in docs] == [r["review_status"] for r in got]
        gold = [r["doc_id"] for r in load(store, version, "gold")]
        assert gold == [r["doc_id"] for r in got if r["layer"] == "gold"]

        folder = pull(store, version, dest=tmp_path / "pulled")
        jsonl = (folder / "corpus.jsonl").read_bytes()
        assert jsonl == read_release_file(store, version, "corpus.jsonl")
        assert [json.loads(line) for line in jsonl.splitlines()] == got
        conll = (folder / "corpus.conll").read_bytes()
        assert conll == read_release_file(store, version, "corpus.conll")
        assert conll == read_release_file(folder, version, "corpus.conll")
        assert sorted(conll_blocks(conll)) == sorted(
            conll_blocks(read_release_file(alone_store, "latest", "corpus.conll"))
        )
        assert [r["doc_id"] for r in load(folder)] == [r["doc_id"] for r in got]
        assert [d.user_data["doc_id"] for d in load_docs(folder)] == [r["doc_id"] for r in got]

    notes = read_release_file(store, "v0003", "NOTES.md").decode()
    assert "0 added, 2 changed, 1 removed" in notes
    assert "`doc-00003`" in notes and "`doc-00052`" in notes and f"`doc-{N:05d}`" in notes


def test_release_overlay_same_history_gives_the_same_bytes(tmp_path: Path) -> None:
    manifests = []
    for name in ("a", "b"):
        store = LocalStore(tmp_path / name)
        manifests.append([do_publish(store, r, shard_docs=SHARD_DOCS).manifest for r in history()])
    for one, other in zip(*manifests, strict=True):
        assert one.files == other.files
        assert (one.shards, one.updates, one.dead_rows) == (
            other.shards,
            other.updates,
            other.dead_rows,
        )


def test_release_overlay_compaction_rewrites_the_affected_ranges(
    store: Store, tmp_path: Path
) -> None:
    n = 160
    records = many_records(n)
    first = do_publish(store, records, shard_docs=SHARD_DOCS)
    changed: set[str] = set()
    results = []
    # 5% of the documents changed per version: the overlay passes 15% at the fourth change
    for step in range(4):
        records = copy.deepcopy(records)
        for r in records[step * 8 : step * 8 + 8]:
            r["review_status"] = "reviewed" if r["review_status"] != "reviewed" else "machine"
            changed.add(r["doc_id"])
        results.append(do_publish(store, records, shard_docs=SHARD_DOCS))
    dead = [r.manifest.dead_rows for r in results]
    assert dead[:3] == [8, 16, 24] and 24 <= COMPACT_DEAD_SHARE * n
    assert [len(r.manifest.updates) for r in results[:3]] == [1, 2, 3]
    compacted = results[3].manifest
    assert (compacted.updates, compacted.dead_rows) == ([], 0)
    # the ranges holding no changed document keep the very objects of the first version
    starts = [int(s.start, 16) for s in first.manifest.shards]

    def range_of(doc_id: str) -> int:
        return sum(1 for s in starts if s <= shard_key(doc_id)) - 1

    touched = {range_of(d) for d in changed}
    assert [s.start for s in compacted.shards] == [s.start for s in first.manifest.shards]
    for i, (a, b) in enumerate(zip(first.manifest.shards, compacted.shards, strict=True)):
        assert (a.formats == b.formats) == (i not in touched), i
    assert len(touched) < len(starts)  # some ranges were left alone
    # and it reads as the records are
    assert by_id(list(load(store))) == by_id(list(load(fresh(records, tmp_path / "f")[1])))
    folder = pull(store, dest=tmp_path / "pulled")
    assert sorted(r["doc_id"] for r in load(folder)) == sorted(r["doc_id"] for r in records)


def test_release_overlay_compacts_past_max_updates(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(release, "MAX_UPDATES", 2)
    records = many_records(64)
    do_publish(store, records, shard_docs=SHARD_DOCS)
    updates = []
    for i in range(3):  # one document each time: few dead rows, one more update each
        records = copy.deepcopy(records)
        records[i]["review_status"] = "reviewed"
        updates.append(len(do_publish(store, records, shard_docs=SHARD_DOCS).manifest.updates))
    assert updates == [1, 2, 0]
    assert {r["doc_id"]: r["review_status"] for r in load(store)}["doc-00002"] == "reviewed"


def test_release_overlay_pull_resumes_and_catches_damage(store: Store, tmp_path: Path) -> None:
    v1, v2 = history()[:2]
    do_publish(store, v1, shard_docs=SHARD_DOCS)
    second = do_publish(store, v2, shard_docs=SHARD_DOCS)
    folder = pull(store, dest=tmp_path)
    (folder / "corpus.conll").unlink()
    jsonl = folder / "corpus.jsonl"
    jsonl.write_bytes(jsonl.read_bytes().replace(b"Berlin", b"Lyon!!"))
    with pytest.raises(ChecksumMismatch, match="corpus.jsonl"):
        read_release_file(folder, "latest", "corpus.jsonl")

    counting = CountingStore(store)
    again = pull(counting, dest=tmp_path)
    # the two files made from the live rows are made again, from their own parts only
    fetched = {f.path for f in second.manifest.files if f.object in counting.gets}
    assert fetched == {"corpus.jsonl", "corpus.conll"}
    assert read_release_file(again, "latest", "corpus.jsonl") == read_release_file(
        store, "latest", "corpus.jsonl"
    )

    [update] = second.manifest.updates
    key = next(f.object for f in second.manifest.files if f.sha256 == update.formats["jsonl"])
    assert key is not None
    store.put_bytes(key, store.get_bytes(key).replace(b"reviewed", b"machine!"))
    with pytest.raises(ChecksumMismatch, match="corpus.jsonl"):
        list(load(store))
    with pytest.raises(ChecksumMismatch, match="corpus.jsonl"):
        pull(store, dest=tmp_path / "again")


def test_release_overlay_manifest_round_trips() -> None:
    _ = read_manifest  # the manifest model itself: layout 3 fields validate
    from schemas.release import ReleaseManifest

    data = {
        "layout": 3,
        "version": "v0002",
        "created_at": "now",
        "content_hash": "0" * 64,
        "code_version": "test",
        "files": [],
        "updates": [{"name": "update-" + "a" * 16, "documents": 2, "formats": {}}],
        "dead_rows": 2,
    }
    manifest = ReleaseManifest.model_validate(data)
    assert ReleaseManifest.model_validate_json(manifest.model_dump_json()) == manifest
    with pytest.raises(ValueError):
        ReleaseManifest.model_validate({**data, "updates": [{"name": "x", "documents": 1}]})


D = b"-DOCSTART- -X- -X- O\n"


@pytest.mark.parametrize(
    ("data", "blocks"),
    [
        (b"", []),
        (D + b"\nA _ _ B-PER\n\n", [D + b"\nA _ _ B-PER\n\n"]),
        (D + b"\nA _ _ O\n\n" + D + b"\nB _ _ O\n\n", [D + b"\nA _ _ O\n\n", D + b"\nB _ _ O\n\n"]),
        # a token that reads -DOCSTART- is not a document's start
        (D + b"\n-DOCSTART- _ _ O\n\n", [D + b"\n-DOCSTART- _ _ O\n\n"]),
    ],
)
def test_release_overlay_conll_blocks_cut_at_each_document(
    data: bytes, blocks: list[bytes]
) -> None:
    assert conll_blocks(data) == blocks
    assert b"".join(blocks) == data


def test_release_overlay_conll_blocks_match_the_writer() -> None:
    records = release.canonical_records(many_records(5))
    _, blocks, _ = release._spacy_and_conll_blocks(records, "0000000000000000")
    assert conll_blocks(release.write_conll(records)) == blocks and len(blocks) == 5


def test_release_overlay_compaction_keeps_a_shard_whose_document_changed_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = many_records(64)
    first = do_publish(store, records, shard_docs=SHARD_DOCS)
    changed = copy.deepcopy(records)
    changed[1]["review_status"] = "reviewed"  # doc-00001, a doc-a: every format changes
    assert do_publish(store, changed, shard_docs=SHARD_DOCS).manifest.updates
    # doc-00001 back as its base shard has it, in a version that compacts: its range is
    # reused, and its row's CoNLL digest (the index had the changed one's) read from the shard
    monkeypatch.setattr(release, "COMPACT_DEAD_SHARE", 0.0)
    records[2]["review_status"] = "reviewed"
    third = do_publish(store, records, shard_docs=SHARD_DOCS)
    assert (third.manifest.updates, third.manifest.dead_rows) == ([], 0)
    starts = [int(s.start, 16) for s in first.manifest.shards]
    where = {d: sum(1 for s in starts if s <= shard_key(d)) - 1 for d in ("doc-00001", "doc-00002")}
    assert where["doc-00001"] != where["doc-00002"]
    assert third.manifest.shards[where["doc-00001"]] == first.manifest.shards[where["doc-00001"]]
    folder = pull(store, dest=tmp_path)  # checks every live row against the index
    assert read_release_file(folder, "latest", "corpus.conll") == read_release_file(
        fresh(records, tmp_path / "f")[1], "latest", "corpus.conll"
    )
