"""The store laid out for millions (corpus.stagestore, corpus.decisions, corpus.records): stage
documents in per-batch shards behind one index read once; an unchanged run that makes no
per-document request (counted on a real SeaweedFS); a crash between shard and index; the old
one-file-per-document layout read and migrated; adjudicate writing only what changed."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corpus.decisions import Decisions, adjudicate_store
from corpus.keys import keys
from corpus.records import publish_store
from corpus.stagestore import StageStore, cached_index, machine_store, to_annotate
from corpus.store import LocalStore, S3Store, Store, s3_client
from review.results import to_import_task, write_import_file
from schemas import AnnotatedDocument

SCHEMA = {"entity_labels": ["PERSON"]}


def machine_doc(i: int, *, model: str = "m1", text: str | None = None) -> dict[str, Any]:
    text = text or f"Angela Merkel met person {i} in Berlin."
    return AnnotatedDocument.model_validate(
        {
            "source": f"s/{i}.txt",
            "doc_id": f"d{i:04d}",
            "text": text,
            "content_hash": f"h{i}-{len(text)}",
            "cleaner_version": "c1",
            "source_sha256": f"src{i}",
            "entities": [
                {"start": 0, "end": 13, "label": "PERSON", "text": "Angela Merkel", "score": 0.9}
            ],
            "model_version": model,
        }
    ).model_dump(mode="json")


def fill(store: Store, n: int, batch: int = 10) -> StageStore:
    """n machine documents written as the annotate stage does: a shard per batch, one commit."""
    machine = machine_store(store)
    index = machine.load()
    entries = []
    for start in range(0, n, batch):
        entries += machine.write_shard(
            [machine_doc(i) for i in range(start, min(n, start + batch))]
        )
    machine.commit(index, entries)
    return machine


class Requests:
    """S3 requests of a client, by operation, with the key each named (botocore event hook)."""

    def __init__(self, store: S3Store) -> None:
        self.calls: list[tuple[str, str]] = []
        self.events = store.client.meta.events
        self.events.register("before-call.s3", self._seen, unique_id="count-requests")

    def _seen(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        key = str(params.get("url_path", ""))
        self.calls.append((model.name, key))

    def close(self) -> None:
        self.events.unregister("before-call.s3", unique_id="count-requests")


@pytest.fixture
def counted(s3_store: S3Store) -> Iterator[tuple[S3Store, Requests]]:
    seen = Requests(s3_store)
    try:
        yield s3_store, seen
    finally:
        seen.close()


# ---------------------------------------------------------------- the index, read once


def test_stagestore_roundtrip_reads_each_shard_once(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    machine = fill(store, 25)
    assert sorted(store.list("machine/")) == sorted(
        [machine.index_key, *(k for k in store.list("machine/shards/"))]
    )
    assert len(list(store.list("machine/shards/"))) == 3  # one object per batch, not per doc
    index = machine.load()
    assert len(index.docs) == 25 and not index.dirty and not index.recovered
    wanted = ["d0024", "d0003", "d0011"]
    docs = list(machine.read(index, wanted))
    assert sorted(d["doc_id"] for d in docs) == sorted(wanted)
    assert docs[0] == machine_doc(3)


@pytest.mark.integration
def test_stagestore_unchanged_run_makes_no_per_document_request_on_s3(
    counted: tuple[S3Store, Requests],
) -> None:
    """First the stages write; then what an unchanged run does after ingest (the annotate
    plan, adjudicate, publish) costs a constant number of requests, none per document."""
    store, seen = counted
    n = 120
    machine = fill(store, n)
    ids = sorted(machine.load().docs)
    for doc_id in ids[:2]:  # two documents with human work, the others machine only
        ann = {"annotator": "a@x.org", "role": "annotator", "entities": [], "stances": []}
        store.put_json(keys.human(doc_id), {"task_id": 1, "annotations": [ann]})
    first = adjudicate_store(store, ids, overlap=1)
    assert first.written == 2  # files only for decisions with something in them
    created = publish_store(store, label_schema=SCHEMA, code_version="t-1")
    assert created.created and created.version == "v0001"

    seen.calls.clear()
    index = machine.load()
    todo, kept = to_annotate(index, index, ids, "m1")  # the machine index stands in for clean
    assert (todo, kept) == ([], n)
    again = adjudicate_store(store, ids, overlap=1)
    assert again.written == 0 and again.counts == first.counts
    unchanged = publish_store(store, label_schema=SCHEMA, code_version="t-1")
    assert (unchanged.version, unchanged.created, unchanged.skipped) == ("v0001", False, True)

    ops = [op for op, _ in seen.calls]
    assert "PutObject" not in ops, seen.calls
    per_doc = [c for c in seen.calls if "/shards/" in c[1] or "/adjudicated/d" in c[1]]
    assert per_doc == [], "an unchanged run read a document"
    # human files are human-scale: 2 of them read by adjudicate and by publish
    others = [c for c in seen.calls if "/human/" not in c[1]]
    # a constant, whatever n: 3 indexes, 5 listings, latest, the publish state, a few HEADs
    assert len(others) <= 20, others
    assert len(seen.calls) < n / 4


@pytest.mark.integration
def test_stagestore_s3_shard_and_index_roundtrip(s3_store: S3Store) -> None:
    machine = fill(s3_store, 15, batch=4)
    index = machine.load()
    assert len(index.docs) == 15 and len(index.shards) == 4
    assert [d["doc_id"] for d in machine.read(index, ["d0014"])] == ["d0014"]


def test_store_s3_client_is_made_once_per_process() -> None:
    a = s3_client(endpoint_url="http://127.0.0.1:1", access_key="k", secret_key="s")
    b = s3_client(endpoint_url="http://127.0.0.1:1", access_key="k", secret_key="s")
    c = s3_client(endpoint_url="http://127.0.0.1:1", access_key="k2", secret_key="s")
    assert a is b and a is not c


def test_stagestore_cached_index_follows_the_stored_index(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    machine = fill(store, 3)
    first = cached_index(machine)
    assert cached_index(machine) is first  # one HEAD, no second GET
    machine.commit(machine.load(), machine.write_shard([machine_doc(7)]))
    assert "d0007" in cached_index(machine).docs
    assert cached_index(machine, "run-1") is cached_index(machine, "run-1")


# ---------------------------------------------------------------- a crash between the two writes


def test_stagestore_crash_between_shard_and_index_write_is_recovered(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    machine = fill(store, 10)
    # a batch wrote its shard (a document changed, one new), then the run died: no commit
    changed = machine_doc(3, model="m2")
    machine.write_shard([changed, machine_doc(10)])
    index = machine.load()
    assert index.dirty and len(index.recovered) == 1
    assert len(index.docs) == 11
    assert index.docs["d0003"].version == "m2"  # the newer shard wins
    assert next(machine.read(index, ["d0003"])) == changed
    assert machine.commit(index)  # the next run stores the rebuilt index ...
    again = machine.load()
    assert not again.dirty and not again.recovered  # ... and reads no shard twice
    assert again.docs == index.docs


def test_stagestore_index_lost_or_damaged_is_rebuilt_from_the_shards(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    machine = fill(store, 12, batch=5)
    before = machine.load().docs
    store.put_bytes(machine.index_key, b"not gzip")
    damaged = machine.load()
    assert damaged.docs == before and damaged.dirty
    store.delete(machine.index_key)
    assert machine.load().docs == before


@pytest.mark.parametrize(
    "damage",
    [
        lambda row: row.__setitem__(2, "7"),  # a line that is not a number
        lambda row: row.__setitem__(3, 12),  # a hash that is not a string
        lambda row: row.__setitem__(1, 99),  # a shard number past the table
        lambda row: row.__delitem__(slice(3, None)),  # a row cut short
        lambda row: row.__setitem__(2, 2**40),  # a line past 32 bits
    ],
    ids=["line-str", "hash-int", "shard-no", "short", "line-big"],
)
def test_stagestore_index_row_damaged_is_rebuilt_from_the_shards(
    tmp_path: Path, damage: Any
) -> None:
    store = LocalStore(tmp_path)
    machine = fill(store, 12, batch=5)
    before = dict(machine.load().docs.items())
    raw = json.loads(gzip.decompress(store.get_bytes(machine.index_key)))
    damage(raw["docs"][4])
    store.put_bytes(machine.index_key, gzip.compress(json.dumps(raw).encode()))
    damaged = machine.load()
    assert damaged.dirty and damaged.recovered and dict(damaged.docs.items()) == before


# ---------------------------------------------------------------- the layout before shards


def test_stagestore_old_layout_is_read_then_migrated(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for i in range(5):
        store.put_json(keys.machine(f"d{i:04d}"), machine_doc(i))
    machine = machine_store(store)
    index = machine.load()
    assert index.legacy_ids() == [f"d{i:04d}" for i in range(5)]
    assert list(machine.read(index, ["d0002"])) == [machine_doc(2)]  # read as they are

    adjudicate_store(store, sorted(index.docs), overlap=1)
    legacy = publish_store(store, label_schema=SCHEMA, code_version="t-1")
    assert legacy.created and not legacy.skipped
    assert machine.migrate(index) == 5
    assert list(store.list("machine/d")) == []  # the per-document files (d0000...) are gone
    migrated = machine.load()
    assert migrated.legacy_ids() == [] and len(migrated.docs) == 5
    assert sorted(d["doc_id"] for d in machine.read(migrated, migrated.docs)) == sorted(index.docs)
    # the same documents give the same release: nothing new is published
    after = publish_store(store, label_schema=SCHEMA, code_version="t-1")
    assert (after.version, after.created) == (legacy.version, False)


def test_stagestore_migrate_after_a_crash_deletes_files_a_shard_holds(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    machine = fill(store, 3)
    store.put_json(keys.machine("d0001"), machine_doc(1, model="old"))  # left by a crash
    index = machine.load()
    assert index.docs["d0001"].version == "m1" and index.old_files == [keys.machine("d0001")]
    machine.migrate(index)
    assert store.head(keys.machine("d0001")) is None


# ---------------------------------------------------------------- adjudicate writes what changed


def _human(store: Store, doc_id: str, *labels: str) -> None:
    anns = [
        {
            "annotator": f"a{i}@x.org",
            "role": "annotator",
            "entities": [],
            "stances": [{"target": "China", "label": label}],
        }
        for i, label in enumerate(labels)
    ]
    store.put_json(keys.human(doc_id), {"task_id": 1, "annotations": anns})


def _mtimes(root: Path, prefix: str) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (root / prefix).rglob("*") if p.is_file()}


def test_decisions_adjudicate_rewrites_nothing_when_nothing_changed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ids = [f"d{i:04d}" for i in range(6)]
    _human(store, ids[0], "FAVOR", "FAVOR")
    _human(store, ids[1], "FAVOR", "AGAINST")
    first = adjudicate_store(store, ids, overlap=2)
    assert first.counts == {"adjudicated": 1, "disputed": 1, "machine": 4}
    assert first.disputed == [ids[1]] and first.written == 2
    assert sorted(store.list("adjudicated/d")) == [
        keys.adjudicated(ids[0]),
        keys.adjudicated(ids[1]),
    ]
    before = {**_mtimes(tmp_path, "adjudicated"), **_mtimes(tmp_path, "review")}

    again = adjudicate_store(store, ids, overlap=2)
    assert again.written == 0 and again.counts == first.counts
    assert {**_mtimes(tmp_path, "adjudicated"), **_mtimes(tmp_path, "review")} == before

    _human(store, ids[1], "FAVOR", "AGAINST", "FAVOR")  # a third annotator settles it
    settled = adjudicate_store(store, ids, overlap=2)
    assert settled.written == 1 and settled.disputed == []
    assert store.get_json(keys.adjudicated(ids[1]))["status"] == "adjudicated"
    assert Decisions.load(store).get(ids[1]).status == "adjudicated"  # type: ignore[union-attr]
    assert Decisions.load(store).get(ids[5]).status == "machine"  # type: ignore[union-attr]


def test_decisions_old_store_files_are_the_decisions_until_an_index_exists(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    plain = {
        "doc_id": "d1",
        "status": "machine",
        "entities": [],
        "stances": [],
        "disputes": [],
        "agreement": {"entity_f1": None, "stance_kappa": None},
    }
    store.put_json(keys.adjudicated("d1"), plain)
    stamp = (tmp_path / keys.adjudicated("d1")).stat().st_mtime_ns
    run = adjudicate_store(store, ["d1"], overlap=1)
    assert run.written == 0 and (tmp_path / keys.adjudicated("d1")).stat().st_mtime_ns == stamp
    assert store.head(keys.adjudicated_index) is not None


# ---------------------------------------------------------------- the local store's head


def test_store_local_head_does_not_read_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    etag = store.put_bytes("big", os.urandom(1 << 20))
    (tmp_path / "by-hand").write_bytes(b"12345")  # not written by the store: read once
    assert store.head("by-hand").etag == "827ccb0eea8a706c4c34a16891f84e7b"  # type: ignore[union-attr]

    def no_read(self: Path) -> bytes:
        raise AssertionError(f"head read {self}")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    info = store.head("big")
    assert info is not None and info.etag == etag and info.size == 1 << 20
    assert store.head("by-hand").size == 5  # type: ignore[union-attr]
    assert store.head("missing") is None


def test_store_local_head_notices_a_file_changed_by_hand(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("k", b"one")
    path = tmp_path / "k"
    path.write_bytes(b"other bytes")
    assert store.head("k").etag == store.get_with_etag("k")[1]  # type: ignore[union-attr]


# ---------------------------------------------------------------- the embedded import file


def test_results_write_import_file_streams_a_json_array(tmp_path: Path) -> None:
    docs = [AnnotatedDocument.model_validate(machine_doc(i)) for i in range(3)]
    consumed: list[str] = []

    def lazily() -> Iterator[AnnotatedDocument]:
        for d in docs:
            consumed.append(d.doc_id)
            yield d

    path = tmp_path / "import.json"
    assert write_import_file(lazily(), path) == 3
    assert json.loads(path.read_text()) == [to_import_task(d) for d in docs]
    assert write_import_file(iter([]), path) == 0 and json.loads(path.read_text()) == []


def test_stagestore_shard_bytes_depend_only_on_documents() -> None:
    from corpus.stagestore import decode_shard, encode_shard

    a = encode_shard([machine_doc(1), machine_doc(2)])
    assert a == encode_shard([machine_doc(1), machine_doc(2)])
    assert [json.loads(x)["doc_id"] for x in decode_shard(a)] == ["d0001", "d0002"]
    assert gzip.decompress(a).count(b"\n") == 2


# ---------------------------------------------------------------- a whole run on an old store


def _to_old_layout(store: LocalStore) -> None:
    """The store as the code before shards left it: one file per document, no index."""
    for stage in (StageStore(store, "clean"), machine_store(store)):
        index = stage.load()
        for doc in stage.read(index, index.docs):
            store.put_json(f"{stage.stage}/{doc['doc_id']}.json", doc)
        for key in [stage.index_key, *store.list(stage.shard_prefix)]:
            store.delete(key)
    store.delete(keys.adjudicated_index)
    store.delete(keys.publish_state)


@pytest.mark.model
def test_stagestore_run_on_an_old_layout_store_migrates_and_publishes_nothing_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    import shutil

    from corpus.release import read_latest
    from flows.pipeline import corpus_pipeline

    sources = tmp_path / "sources"
    shutil.copytree(Path(__file__).resolve().parents[1] / "corpus" / "samples", sources)
    monkeypatch.chdir(tmp_path)
    store = LocalStore(tmp_path / "store")
    first = corpus_pipeline(sources=str(sources), store=store.url)
    before = read_latest(store)[0]
    _to_old_layout(store)
    assert len(list(store.list("machine/"))) == 5 and not list(store.list("machine/shards/"))

    again = corpus_pipeline(sources=str(sources), store=store.url)
    assert again["ingest"]["unchanged"] == 5 and again["annotate"]["annotated"] == 0
    assert again["release"] == {"version": first["release"]["version"], "created": False}
    assert read_latest(store)[0] == before  # same content hash, latest untouched
    for stage in ("clean", "machine"):  # migrated: only the index and shards are left
        left = [k for k in store.list(f"{stage}/") if not k.startswith(f"{stage}/shards/")]
        assert left == [f"{stage}/index.json.gz"]
    assert len(machine_store(store).load().docs) == 5


def _entry(i: int, **over: Any) -> Any:
    from corpus.stagestore import Entry

    fields: dict[str, Any] = {
        "shard": f"clean/shards/2026120{i % 3}T000000-{i % 3:012x}.jsonl.gz",
        "line": i,
        "content_hash": f"{i:064x}",
        "version": "c1" if i % 2 else "c2",
        "source_sha256": f"{i * 7:064x}",
        "source_sig": f"{100 + i}:{1764700000000000000 + i}",
    }
    return Entry(**{**fields, **over})


ODD_ENTRIES = [
    _entry(1),
    _entry(2, content_hash="", source_sha256=""),  # unknown yet
    _entry(3, content_hash="h3-41", source_sha256="src3"),  # not sha256 hex
    _entry(4, content_hash="A" * 64),  # upper-case hex: kept as written, not lowered
    _entry(5, source_sig='etag:"9b2cf535f27731c974343645a3985328"', version="ünïcode"),
    _entry(6, shard="clean/d0006.json", line=-1, content_hash="", version="", source_sha256=""),
]


@pytest.mark.parametrize("entry", ODD_ENTRIES, ids=lambda e: f"line{e.line}")
def test_stagestore_entries_give_back_the_entry_they_were_given(entry: Any) -> None:
    from corpus.stagestore import Entries

    docs = Entries([("d", entry), ("other", _entry(9))])
    assert docs["d"] == entry and docs.get("d") == entry and docs.get("nope") is None
    assert "d" in docs and "nope" not in docs and len(docs) == 2 and list(docs) == ["d", "other"]
    assert docs == {"d": entry, "other": _entry(9)}
    docs["d"] = _entry(8)
    assert docs["d"] == _entry(8)
    del docs["d"]
    assert list(docs.items()) == [("other", _entry(9))]
    with pytest.raises(KeyError):
        docs["d"]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 18])
@pytest.mark.parametrize("n", [0, 1, 2, 300])
def test_stagestore_index_rows_are_read_a_chunk_at_a_time_as_written(n: int, chunk: int) -> None:
    from corpus.stagestore import _index_bytes, _index_rows_of

    rows = [[f"d{i:04d}", i % 3, i, f"{i:064x}", i % 2, "s", f"{i}:{i}"] for i in range(n)]
    if n > 1:  # a doc id holding the row separator: the chunked parse must not cut there
        rows[1][0] = 'd],["0001'
    head = {"format": 1, "stage": "clean", "shards": ["a", "b", "c"], "versions": ["v", "w"]}
    data = _index_bytes(head, rows)
    got_head, got_rows = _index_rows_of(data, chunk=chunk)
    assert got_head == head and list(got_rows) == rows
    # the same JSON in another layout (the docs first) is read whole
    other = gzip.compress(json.dumps({"docs": rows, **head}).encode())
    got_head, got_rows = _index_rows_of(other, chunk=chunk)
    assert {k: v for k, v in got_head.items() if k != "docs"} == head and list(got_rows) == rows


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_stagestore_index_cut_short_is_an_error_not_fewer_documents(cut: float) -> None:
    import zlib

    from corpus.stagestore import _index_bytes, _index_rows_of

    rows = [[f"d{i:04d}", 0, i, f"{i:064x}", 0, "s", ""] for i in range(2000)]
    data = _index_bytes({"format": 1, "stage": "clean", "shards": ["a"], "versions": ["v"]}, rows)
    with pytest.raises((ValueError, EOFError, zlib.error, OSError)):
        head, got = _index_rows_of(data[: int(len(data) * cut)], chunk=512)
        list(got)


def test_stagestore_index_loads_packed_and_the_same_as_it_was_stored(tmp_path: Path) -> None:
    from corpus.stagestore import Entries, StageIndex

    stage = StageStore(LocalStore(tmp_path), "clean")
    index = StageIndex("clean", dirty=True)
    entries = {f"d{i:04d}": _entry(i) for i in range(700)}
    entries["odd"] = ODD_ENTRIES[2]
    index.docs.update(entries)
    index.shards.update(e.shard for e in entries.values())
    assert stage.commit(index)
    loaded = stage.load()
    assert isinstance(loaded.docs, Entries) and not loaded.recovered and not loaded.dirty
    assert dict(loaded.docs.items()) == entries
