"""`corpusflow gc`: stage shards no index entry points to any more are deleted once older than
the grace period, holding the run lease (refused while a run holds it); --dry-run names them
and their bytes; nothing outside `<stage>/shards/` is touched. On a local store and on a real
SeaweedFS."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.keys import keys
from corpus.lease import Lease
from corpus.stagestore import collect_garbage, machine_store, shard_time
from corpus.store import LocalStore, S3Store, Store
from flows.cli import main
from tests.test_stage_store import machine_doc

# objects gc must never delete, named like shards to make the point
KEEP = (
    "releases/objects/20200101T000000000000-aaaa.jsonl.gz",
    "human/d0001.json",
    "ledger/inputs/20200101T000000000000-bbbb.json",
    "adjudicated/index.json.gz",
)


def superseded_store(store: Store) -> tuple[list[str], str]:
    """Three shards of 4 documents; then the first shard's documents and one of the second's
    annotated again (a newer shard): the first shard is garbage, the second is not."""
    machine = machine_store(store)
    index = machine.load()
    entries = []
    for start in (0, 4, 8):
        entries += machine.write_shard([machine_doc(i) for i in range(start, start + 4)])
    machine.commit(index, entries)
    first = sorted(store.list("machine/shards/"))[0]
    again = machine.write_shard([machine_doc(i, model="m2") for i in (0, 1, 2, 3, 5)])
    machine.commit(index, again)
    for key in KEEP:
        store.put_bytes(key, b"{}")
    return sorted(store.list("machine/shards/")), first


def check_gc(store: Store) -> None:
    shards, first = superseded_store(store)
    assert len(shards) == 4
    # within the grace period nothing goes, referenced or not
    assert collect_garbage(store, grace_seconds=3600) == []
    dry = collect_garbage(store, grace_seconds=0, dry_run=True)
    assert [g.key for g in dry] == [first] and dry[0].size > 0
    assert sorted(store.list("machine/shards/")) == shards  # a dry run deletes nothing

    done = collect_garbage(store, grace_seconds=0)
    assert [g.key for g in done] == [first]
    assert first not in set(store.list("machine/shards/"))
    machine = machine_store(store)
    index = machine.load()
    assert first not in index.shards and not index.recovered
    docs = {d["doc_id"]: d for d in machine.read(index, sorted(index.docs))}
    assert len(docs) == 12 and docs["d0000"]["model_version"] == "m2"
    assert docs["d0004"]["model_version"] == "m1"
    for key in KEEP:
        assert store.exists(key), key
    assert collect_garbage(store, grace_seconds=0) == []


def test_gc_deletes_only_unreferenced_shards_past_grace_local(tmp_path: Path) -> None:
    check_gc(LocalStore(tmp_path))


@pytest.mark.integration
def test_gc_deletes_only_unreferenced_shards_past_grace_s3(s3_store: S3Store) -> None:
    check_gc(s3_store)


def test_gc_keeps_a_young_shard_a_run_has_not_committed(tmp_path: Path) -> None:
    """A shard written and not yet in the index (a run between write and commit, or one that
    crashed there): kept within the grace period; past it, the load merges it (newest wins)
    and stores the index before anything is deleted."""
    store = LocalStore(tmp_path)
    machine = machine_store(store)
    index = machine.load()
    machine.commit(index, machine.write_shard([machine_doc(i) for i in range(3)]))
    old = next(iter(store.list("machine/shards/")))
    machine.write_shard([machine_doc(i, model="m2") for i in range(3)])  # never committed
    assert collect_garbage(store, grace_seconds=3600) == []
    assert [g.key for g in collect_garbage(store, grace_seconds=0)] == [old]
    index = machine.load()
    assert not index.recovered and {e.version for e in index.docs.values()} == {"m2"}


@pytest.mark.parametrize(
    ("key", "parsed"),
    [
        ("machine/shards/20261201T101112123456-abcdef012345.jsonl.gz", "2026-12-01T10:11:12"),
        ("machine/shards/not-a-stamp.jsonl.gz", None),
        ("clean/shards/2026-01-01.jsonl.gz", None),
    ],
)
def test_gc_shard_time_from_name(key: str, parsed: str | None) -> None:
    when = shard_time(key)
    assert (when.strftime("%Y-%m-%dT%H:%M:%S") if when else None) == parsed


def test_gc_cli_refuses_while_a_run_holds_the_lease_and_dry_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    shards, first = superseded_store(store)
    url = f"file://{tmp_path / 'store'}"
    run = Lease(store, "run-1")
    run.acquire()
    try:
        assert main(["gc", "--store", url, "--grace", "0"]) == 1
        assert "refused" in capsys.readouterr().err
        assert sorted(store.list("machine/shards/")) == shards
        # a dry run deletes nothing and needs no lease: it lists what would go, with bytes
        assert main(["gc", "--store", url, "--grace", "0", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert f"would delete {first} (" in out and "would delete 1 unreferenced shards" in out
        assert sorted(store.list("machine/shards/")) == shards
    finally:
        run.release()
    assert main(["gc", "--store", url, "--grace", "0"]) == 0
    assert "deleted 1 unreferenced shards" in capsys.readouterr().out
    assert first not in set(store.list("machine/shards/"))
    assert not store.exists("locks/run.json")  # gc released its lease
    assert store.exists(keys.human("d0001"))


def test_gc_compacts_the_ledger_to_each_inputs_latest_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs that re-record a skipped input add a ledger object each; gc (holding the lease)
    rewrites them, the old one-per-input layout included, as one object of latest entries:
    every input keeps the fate it had, and a later run's entries still win."""
    from corpus.ledger import ENTRIES, Ledger, read_ledger, source_key_id

    store = LocalStore(tmp_path / "store")
    url = f"file://{tmp_path / 'store'}"
    old = Ledger(store, "r0").entry("a.txt", "processed", "ingest", doc_id="a")
    store.put_json(f"ledger/inputs/{source_key_id('a.txt')}.json", old.model_dump())
    for run in ("r1", "r2", "r3"):
        ledger = Ledger(store, run)
        ledger.record("b.bin", "skipped", "ingest", reason="unsupported")
        ledger.flush()
    before = read_ledger(store)
    assert len(list(store.list("ledger/"))) == 4

    assert main(["gc", "--store", url, "--grace", "0", "--dry-run"]) == 0
    assert "would compact the ledger: 4 objects into 1 (2 inputs," in capsys.readouterr().out
    assert len(list(store.list("ledger/"))) == 4

    assert main(["gc", "--store", url, "--grace", "0"]) == 0
    assert "compacted the ledger: 4 objects into 1 (2 inputs," in capsys.readouterr().out
    (only,) = store.list("ledger/")
    assert only.startswith(ENTRIES)
    assert read_ledger(store) == before
    assert before["b.bin"].run_id == "r3" and before["a.txt"].run_id == "r0"

    later = Ledger(store, "r4")
    later.record("a.txt", "skipped", "ingest", reason="unsupported")
    later.flush()
    assert read_ledger(store)["a.txt"].run_id == "r4"  # written after the compaction: it wins
    assert main(["gc", "--store", url, "--grace", "0"]) == 0
    assert read_ledger(store)["a.txt"].run_id == "r4"
    assert len(list(store.list("ledger/"))) == 1
