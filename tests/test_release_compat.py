"""Releases published before the shard layout (layout 1: whole files under
`releases/<version>/`, written here by the publisher of commit ff44639, taken from git) and
before merge-on-read (layout 2: shards without updates or live index, by the publisher of commit
71f12ee) still pull and load with today's reader, and today's publisher builds on top of them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from corpus.pull import ChecksumMismatch, load, load_docs, pull, read_release_file
from corpus.release import read_manifest
from corpus.store import Store
from tests.test_release import AGREEMENT, LABELS, CountingStore, do_publish, make_records
from tests.test_release import store as store  # noqa: F401 - the local/S3 fixture
from tests.test_release_shards import many_records

ROOT = Path(__file__).resolve().parent.parent
OLD_COMMIT = "ff44639"
LAYOUT2_COMMIT = "71f12ee"


def _module_at(commit: str, name: str, tmp: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{commit}:corpus/release.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = tmp / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def old_release(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return _module_at(OLD_COMMIT, "old_release", tmp_path_factory.mktemp("old"))


@pytest.fixture(scope="module")
def layout2_release(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return _module_at(LAYOUT2_COMMIT, "layout2_release", tmp_path_factory.mktemp("layout2"))


def old_publish(old: ModuleType, store: Store) -> None:
    old.publish(
        store,
        make_records(),
        label_schema=LABELS,
        agreement=AGREEMENT,
        code_version="old-1",
        model_versions=["ner-1"],
    )


def test_release_compat_old_release_pulls_and_loads(
    old_release: ModuleType, store: Store, tmp_path: Path
) -> None:
    old_publish(old_release, store)
    assert store.exists("releases/v0001/corpus.spacy")  # really the old layout
    manifest = read_manifest(store, "v0001")
    assert manifest.layout == 1 and all(f.object is None for f in manifest.files)

    folder = pull(store, dest=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f.path for f in manifest.files] + ["manifest.json"]
    )
    assert [r["doc_id"] for r in load(store)] == ["doc-a", "doc-b", "doc-c"]
    assert [r["doc_id"] for r in load(folder, layer="gold")] == ["doc-a"]
    assert [d.user_data["doc_id"] for d in load_docs(store, layer="silver")] == ["doc-b", "doc-c"]
    assert len(list(load_docs(folder))) == 3
    assert read_release_file(store, "latest", "labels.json").startswith(b"{")

    counting = CountingStore(store)  # a second pull finds every file in place
    pull(counting, dest=tmp_path)
    assert sorted(counting.gets) == ["releases/latest.json", "releases/v0001/manifest.json"]

    key = "releases/v0001/corpus.jsonl"
    store.put_bytes(key, store.get_bytes(key).replace(b"Paris", b"Lyon!"))
    with pytest.raises(ChecksumMismatch, match="corpus.jsonl"):
        list(load(store))
    with pytest.raises(ChecksumMismatch, match="corpus.jsonl"):
        pull(store, dest=tmp_path / "again")


def test_release_compat_new_version_on_top_of_old_one(
    old_release: ModuleType, store: Store, tmp_path: Path
) -> None:
    old_publish(old_release, store)
    # the content hash is defined anew with the shards, so the same records make one new
    # version in the new layout (once), which says nothing changed
    same = do_publish(store)
    assert (same.created, same.version, same.manifest.layout) == (True, "v0002", 3)
    notes = read_release_file(store, "v0002", "NOTES.md").decode()
    assert "0 added, 0 changed, 0 removed, 3 unchanged" in notes
    assert not do_publish(store).created

    records = make_records()
    records[0]["review_status"] = "reviewed"  # doc-b
    third = do_publish(store, records)
    assert third.version == "v0003"
    assert "0 added, 1 changed" in read_release_file(store, "v0003", "NOTES.md").decode()
    # both layouts side by side in one store, each pulled and loaded by the same reader
    for version in ("v0001", "v0003"):
        folder = pull(store, version, dest=tmp_path)
        by_id = {r["doc_id"]: r for r in load(folder)}
        assert sorted(by_id) == ["doc-a", "doc-b", "doc-c"]
        assert by_id["doc-b"]["review_status"] == ("machine" if version == "v0001" else "reviewed")


def test_release_compat_layout2_release_pulls_loads_and_is_built_on(
    layout2_release: ModuleType, store: Store, tmp_path: Path
) -> None:
    records = many_records(40)
    layout2_release.publish(
        store,
        records,
        label_schema=LABELS,
        agreement=AGREEMENT,
        code_version="old-2",
        model_versions=["ner-1"],
        shard_docs=8,
    )
    manifest = read_manifest(store, "v0001")
    assert manifest.layout == 2 and len(manifest.shards) == 5 and not manifest.updates
    ids = [r["doc_id"] for r in load(store)]
    assert sorted(ids) == sorted(r["doc_id"] for r in records)
    folder = pull(store, dest=tmp_path)
    assert [r["doc_id"] for r in load(folder)] == ids
    assert [d.user_data["doc_id"] for d in load_docs(store)] == ids
    assert [d.user_data["doc_id"] for d in load_docs(folder)] == ids
    assert read_release_file(folder, "v0001", "corpus.jsonl") == read_release_file(
        store, "v0001", "corpus.jsonl"
    )
    assert not do_publish(store, records, shard_docs=8).created  # same content hash

    # the first change on top of it writes base shards throughout (new writers), with a live
    # index; the next one is an update over those
    records[5]["review_status"] = "reviewed"
    second = do_publish(store, records, shard_docs=8)
    assert (second.manifest.layout, second.manifest.updates) == (3, [])
    assert "0 added, 1 changed, 0 removed" in read_release_file(store, "v0002", "NOTES.md").decode()
    records[6]["review_status"] = "reviewed"
    third = do_publish(store, records, shard_docs=8)
    assert len(third.manifest.updates) == 1 and third.manifest.shards == second.manifest.shards
    statuses = {r["doc_id"]: r["review_status"] for r in load(store)}
    assert statuses["doc-00005"] == statuses["doc-00006"] == "reviewed"
    for version, reviewed in (("v0001", 0), ("v0003", 2)):
        folder = pull(store, version, dest=tmp_path / "all")
        got = {r["doc_id"]: r["review_status"] for r in load(folder)}
        assert len(got) == 40
        assert [got["doc-00005"], got["doc-00006"]].count("reviewed") == reviewed
