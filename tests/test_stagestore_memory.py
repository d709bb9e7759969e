"""Reading a whole stage for a publish (StageStore.read_all): the same documents in the same
order as `read` over every doc_id, with a bit a document instead of a list of all of them;
superseded lines, documents of the old one-file layout and a damaged index are handled."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.keys import keys
from corpus.stagestore import machine_store
from corpus.store import LocalStore, NotFound, StoreError
from tests.test_stage_store import fill, machine_doc


def test_stagestore_read_all_equals_read_of_every_doc(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    machine = fill(store, 47, batch=10)
    index = machine.load()
    # some documents written again into a newer shard: their old lines are dead
    again = [machine_doc(i, model="m2") for i in (3, 4, 25, 46)]
    machine.commit(index, machine.write_shard(again))
    # and two of the old layout, one file each, that no shard holds
    for i in (60, 61):
        store.put_json(keys.machine(f"d{i:04d}"), machine_doc(i))
    index = machine.load()
    assert index.legacy_ids() == ["d0060", "d0061"]
    want = list(machine.read(index, index.docs))
    got = list(machine.read_all(index))
    assert got == want and len(got) == 49
    assert {d["doc_id"]: d["model_version"] for d in got}["d0025"] == "m2"


def test_stagestore_read_all_catches_an_index_that_misplaces_a_document(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    machine = fill(store, 12, batch=6)
    index = machine.load()
    entry = index.docs["d0002"]
    index.docs["d0002"] = type(entry)(entry.shard, entry.line + 1, "", "")  # d0003's line
    with pytest.raises(StoreError, match="another document on line 3"):
        list(machine.read_all(index))
    other = index.docs["d0008"]  # d0002 placed on d0008's line, and d0008 on d0002's
    index.docs["d0002"], index.docs["d0008"] = other, entry
    with pytest.raises(StoreError, match="does not place there"):
        list(machine.read_all(index))
    index.docs["d0002"], index.docs["d0008"] = type(entry)(entry.shard, 99, "", ""), other
    with pytest.raises(StoreError, match="names line 99"):
        list(machine.read_all(index))


def test_stagestore_read_all_of_an_empty_stage(tmp_path: Path) -> None:
    machine = machine_store(LocalStore(tmp_path))
    assert list(machine.read_all(machine.load())) == []


def test_stagestore_read_of_some_checks_each_line_holds_one_of_them(tmp_path: Path) -> None:
    """`read` walks the same lines as `read_all`: a doc_id named twice comes once; a requested
    line that holds a document nobody asked for, or past the shard's end, is refused."""
    store = LocalStore(tmp_path)
    machine = fill(store, 12, batch=6)
    index = machine.load()
    assert [d["doc_id"] for d in machine.read(index, ["d0004", "d0001", "d0004"])] == [
        "d0001",
        "d0004",
    ]
    with pytest.raises(NotFound):
        list(machine.read(index, ["d0001", "nope"]))
    entry = index.docs["d0002"]
    index.docs["d0002"] = index.docs["d0003"]  # both placed on d0003's line; d0002 asked for
    with pytest.raises(StoreError, match="holds 'd0003', which the index of machine does not"):
        list(machine.read(index, ["d0002"]))
    index.docs["d0002"] = type(entry)(entry.shard, 99, "", "")
    with pytest.raises(StoreError, match="names line 99"):
        list(machine.read(index, ["d0002"]))


@pytest.mark.parametrize("n", [0, 1, 7, 4096, 9001])
def test_stagestore_index_is_streamed_to_the_bytes_of_one_json_dumps(n: int) -> None:
    """The stored index is written row by row, compressed a chunk at a time, and is byte for
    byte what gzip.compress of one json.dumps wrote (so its etag and readers stay the same)."""
    import gzip
    import json

    from corpus.stagestore import _index_bytes

    head = {"format": "f/1", "stage": "machine", "shards": ["a", "b"], "versions": ["é", "m2"]}
    rows = [[f"d{i:05d}\u00e9", i % 2, i, f"{i:064x}", i % 2, "", "s"] for i in range(n)]
    want = gzip.compress(
        json.dumps({**head, "docs": rows}, separators=(",", ":")).encode("utf-8"),
        compresslevel=6,
        mtime=0,
    )
    assert _index_bytes(head, iter(rows), chunk=1000) == want
    assert json.loads(gzip.decompress(want)) == {**head, "docs": rows}
