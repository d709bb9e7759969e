"""Publishing and pulling releases, on a local folder and on a real SeaweedFS."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corpus.pull import ChecksumMismatch, load, pull, read_release_file
from corpus.release import (
    LATEST_KEY,
    PublishResult,
    list_versions,
    publish,
    read_manifest,
    shard_key,
    split_of,
)
from corpus.store import AccessDenied, LocalStore, ObjectInfo, Store
from tests.s3_fixtures import make_s3_store

LABELS = {"entities": ["PERSON", "ORG", "GPE"], "stances": ["FAVOR", "AGAINST", "NEUTRAL"]}
AGREEMENT = {"entity_f1": 0.8, "stance_kappa": 0.6}


def make_records() -> list[dict[str, Any]]:
    text1 = "Angela Merkel met Acme Corp in Berlin.\n\nShe praised Berlin."
    text2 = "Paris is lovely. Bob Smith hates Paris."
    return [
        {
            "doc_id": "doc-b",
            "text": text2,
            "entities": [
                {"start": 0, "end": 5, "label": "GPE", "text": "Paris", "score": 0.9},
                {"start": 17, "end": 26, "label": "PERSON", "text": "Bob Smith", "score": 0.8},
                {"start": 33, "end": 38, "label": "GPE", "text": "Paris", "score": 0.9},
            ],
            "stances": [
                {
                    "target": "Paris",
                    "label": "AGAINST",
                    "score": 0.7,
                    "evidence": [{"start": 17, "end": 38}],
                }
            ],
            "metadata": {"title": "Two", "rights": "CC BY 4.0", "source_url": "https://b.example"},
            "review_status": "machine",
            "source": "samples/b.txt",
            "annotators": [],
            "model_version": "ner-1",
        },
        {
            "doc_id": "doc-a",
            "text": text1,
            "entities": [
                {"start": 0, "end": 13, "label": "PERSON", "text": "Angela Merkel"},
                {"start": 18, "end": 27, "label": "ORG", "text": "Acme Corp"},
                {"start": 18, "end": 22, "label": "ORG", "text": "Acme"},  # overlaps
                {"start": 31, "end": 37, "label": "GPE", "text": "Berlin"},
            ],
            "stances": [
                {"target": "Berlin", "label": "FAVOR", "evidence": [{"start": 40, "end": 59}]}
            ],
            "metadata": {"title": "One", "rights": "All rights reserved"},
            "review_status": "adjudicated",
            "source": "samples/a.txt",
            "annotators": ["ann-2", "ann-1"],
            "model_version": "ner-1",
        },
        {
            "doc_id": "doc-c",
            "text": "Nothing to see here.",
            "entities": [],
            "stances": [],
            "metadata": {},
            "review_status": "disputed",
            "source": "samples/c.txt",
            "annotators": ["ann-1", "ann-2"],
            "model_version": "ner-1",
        },
    ]


def do_publish(
    store: Store, records: list[dict[str, Any]] | None = None, **options: Any
) -> PublishResult:
    return publish(
        store,
        make_records() if records is None else records,
        label_schema=LABELS,
        agreement=AGREEMENT,
        code_version="test-1",
        model_versions=["ner-1"],
        **options,
    )


def object_of(result: PublishResult, path: str) -> str:
    """The store key of the one object a manifest lists under `path`."""
    [entry] = [f for f in result.manifest.files if f.path == path]
    assert entry.object is not None
    return entry.object


def in_key_order(doc_ids: list[str]) -> list[str]:
    return sorted(doc_ids, key=shard_key)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return request.getfixturevalue("s3_store")


class CountingStore(Store):
    """Delegates to a real store; counts writes and reads, and crashes at the n-th write."""

    def __init__(self, inner: Store, crash_at_put: int | None = None) -> None:
        self.inner = inner
        self.url = inner.url
        self.crash_at_put = crash_at_put
        self.puts: list[str] = []
        self.gets: list[str] = []

    def _count_put(self, key: str) -> None:
        self.puts.append(key)
        if self.crash_at_put is not None and len(self.puts) >= self.crash_at_put:
            raise RuntimeError(f"simulated crash before writing {key}")

    def get_bytes(self, key: str) -> bytes:
        self.gets.append(key)
        return self.inner.get_bytes(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        self._count_put(key)
        return self.inner.put_bytes(key, data, content_type)

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> str:
        self._count_put(key)
        return self.inner.put_if_absent(key, data, content_type)

    def put_if_match(
        self, key: str, data: bytes, etag: str, content_type: str | None = None
    ) -> str:
        self._count_put(key)
        return self.inner.put_if_match(key, data, etag, content_type)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


# ---------------------------------------------------------------- publish and pull


def test_release_publish_then_pull_roundtrip(store: Store, tmp_path: Path) -> None:
    result = do_publish(store)
    assert result.created and result.version == "v0001"
    latest = store.get_json(LATEST_KEY)
    assert latest["version"] == "v0001"
    assert latest["content_hash"] == result.manifest.content_hash
    names = {f.path for f in result.manifest.files}
    assert names == {
        "corpus.jsonl",
        "corpus.conll",
        "parquet/0000000000000000.parquet",
        "spacy/0000000000000000.spacy",
        "labels.json",
        "agreement.json",
        "README.md",
        "NOTES.md",
        "live.parquet",
    }
    # every file is a content-addressed object; the version's folder holds claim and manifest
    for f in result.manifest.files:
        assert f.object == f"releases/objects/{f.sha256[:2]}/{f.sha256}.{f.path.rsplit('.')[-1]}"
        assert store.head(f.object) is not None
    assert sorted(store.list("releases/v0001/")) == [
        "releases/v0001/claim.json",
        "releases/v0001/manifest.json",
    ]
    assert result.manifest.layout == 3 and [s.documents for s in result.manifest.shards] == [3]
    assert result.manifest.counts["documents"] == 3
    assert result.manifest.counts["status_adjudicated"] == 1
    assert result.manifest.model_versions == ["ner-1"] and result.manifest.previous is None

    folder = pull(store, "latest", dest=tmp_path / "pulled")
    assert folder == tmp_path / "pulled" / "v0001"
    for f in result.manifest.files:
        assert (folder / f.path).stat().st_size == f.size
    assert not list(folder.glob("**/*.part"))
    records = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
    # in shard-key order, the order of every format
    assert [r["doc_id"] for r in records] == in_key_order(["doc-a", "doc-b", "doc-c"])
    assert json.loads((folder / "labels.json").read_text()) == LABELS
    assert json.loads((folder / "agreement.json").read_text()) == AGREEMENT
    readme = (folder / "README.md").read_text()
    assert "adjudicated | 1" in readme and "CC BY 4.0" in readme and "Limitations" in readme


def test_release_layers_and_splits_in_records(store: Store, tmp_path: Path) -> None:
    do_publish(store)
    gold = list(load(store, layer="gold"))
    silver = list(load(store, layer="silver"))
    assert [r["doc_id"] for r in gold] == ["doc-a"]
    assert sorted(r["doc_id"] for r in silver) == ["doc-b", "doc-c"]  # disputed: not gold
    everything = list(load(store))
    assert all(r["split"] == split_of(r["doc_id"]) for r in everything)
    folder = pull(store, dest=tmp_path)
    assert [r["doc_id"] for r in load(folder, layer="gold")] == ["doc-a"]
    assert len(list(load(tmp_path, layer="all"))) == 3


def test_release_split_is_stable_and_roughly_80_10_10() -> None:
    splits = [split_of(f"doc-{i}") for i in range(2000)]
    assert split_of("doc-7") == split_of("doc-7")
    assert 0.75 < splits.count("train") / 2000 < 0.85
    assert 0.07 < splits.count("dev") / 2000 < 0.13


def test_release_unchanged_input_publishes_nothing(store: Store) -> None:
    first = do_publish(store)
    again = do_publish(store, list(reversed(make_records())))  # order does not matter
    assert (again.created, again.version) == (False, first.version)
    assert again.manifest == first.manifest
    assert list(list_versions(store)) == ["v0001"]


def test_release_changed_input_makes_next_version_with_notes(store: Store) -> None:
    do_publish(store)
    records = make_records()
    records[0]["review_status"] = "reviewed"  # doc-b changed
    records = [r for r in records if r["doc_id"] != "doc-c"]  # doc-c removed
    records.append({**records[1], "doc_id": "doc-d"})  # doc-d added
    second = do_publish(store, records)
    assert (second.created, second.version) == (True, "v0002")
    assert second.manifest.previous == "v0001"
    notes = read_release_file(store, "v0002", "NOTES.md").decode()
    assert "1 added, 1 changed, 1 removed, 1 unchanged" in notes
    assert "`doc-d`" in notes and "`doc-b`" in notes and "`doc-c`" in notes
    assert store.get_json(LATEST_KEY)["version"] == "v0002"
    # v0001 is still there, untouched
    assert read_manifest(store, "v0001").version == "v0001"


def test_release_concurrent_publishers_make_exactly_one_version(store: Store) -> None:
    n = 4
    barrier = threading.Barrier(n)
    results: list[PublishResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(do_publish(store))
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.created for r in results) == [False] * (n - 1) + [True]
    assert {r.version for r in results} == {"v0001"}
    assert list(list_versions(store)) == ["v0001"]
    latest = store.get_json(LATEST_KEY)
    manifest = read_manifest(store, "v0001", latest["manifest_sha256"])
    assert manifest.content_hash == latest["content_hash"]


def test_release_concurrent_different_content_keeps_history_linear(store: Store) -> None:
    do_publish(store)
    variants = []
    for i in range(3):
        records = make_records()
        records[2]["text"] = f"Variant {i}."
        variants.append(records)
    barrier = threading.Barrier(len(variants))
    results: list[PublishResult] = []

    def run(records: list[dict[str, Any]]) -> None:
        barrier.wait()
        results.append(do_publish(store, records))

    threads = [threading.Thread(target=run, args=(v,)) for v in variants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(r.created for r in results)
    # follow latest back through `previous`: every published result is on that one chain
    chain = []
    version: str | None = store.get_json(LATEST_KEY)["version"]
    while version is not None:
        chain.append(version)
        version = read_manifest(store, version).previous
    assert {r.version for r in results} <= set(chain)
    assert chain[-1] == "v0001" and len(chain) == 4


@pytest.mark.parametrize("crash_at", [1, 2, 5, 6, 10, 11, 12])
def test_release_crash_mid_publish_leaves_latest_and_retry_completes(
    store: Store, tmp_path: Path, crash_at: int
) -> None:
    """Writes of a publish: 1-4 the update part's objects, 5 the live index, 6 claim, 7-10 the
    small files (all content-addressed), 11 manifest, 12 latest.json."""
    do_publish(store)
    before = store.get_bytes(LATEST_KEY)
    records = make_records()
    records[0]["review_status"] = "reviewed"
    crashing = CountingStore(store, crash_at_put=crash_at)
    with pytest.raises(RuntimeError, match="simulated crash"):
        do_publish(crashing, records)
    assert store.get_bytes(LATEST_KEY) == before
    assert pull(store, dest=tmp_path / "a").name == "v0001"

    retry = do_publish(store, records)
    assert (retry.created, retry.version) == (True, "v0002")  # the crashed version is resumed
    assert pull(store, dest=tmp_path / "b").name == "v0002"


# ---------------------------------------------------------------- pull


def test_release_pull_catches_tampered_object(store: Store, tmp_path: Path) -> None:
    key = object_of(do_publish(store), "corpus.conll")
    store.put_bytes(key, store.get_bytes(key).replace(b"B-PERSON", b"B-ORG"))
    with pytest.raises(ChecksumMismatch, match="corpus.conll"):
        pull(store, dest=tmp_path)
    assert not (tmp_path / "v0001" / "corpus.conll").exists()
    assert not (tmp_path / "v0001" / "manifest.json").exists()


def test_release_pull_catches_tampered_manifest(store: Store, tmp_path: Path) -> None:
    do_publish(store)
    key = "releases/v0001/manifest.json"
    store.put_bytes(key, store.get_bytes(key).replace(b"test-1", b"test-2"))
    with pytest.raises(ChecksumMismatch, match="manifest.json"):
        pull(store, dest=tmp_path)


def test_release_pull_resumes_without_refetching_good_files(store: Store, tmp_path: Path) -> None:
    result = do_publish(store)
    folder = pull(store, dest=tmp_path)
    parquet = "parquet/0000000000000000.parquet"
    (folder / parquet).unlink()
    (folder / "README.md").write_text("damaged")
    (folder / "corpus.jsonl.part").write_bytes(b"left over from a crash")
    counting = CountingStore(store)
    pull(counting, dest=tmp_path)
    assert sorted(counting.gets) == sorted(
        [
            LATEST_KEY,
            "releases/v0001/manifest.json",
            object_of(result, "README.md"),
            object_of(result, parquet),
        ]
    )
    assert "damaged" not in (folder / "README.md").read_text()
    assert not (folder / "corpus.jsonl.part").exists()


def test_release_pull_explicit_version(store: Store, tmp_path: Path) -> None:
    do_publish(store)
    records = make_records()[:2]
    do_publish(store, records)
    folder = pull(store, "v0001", dest=tmp_path)
    assert len((folder / "corpus.jsonl").read_text().splitlines()) == 3
    assert len(list(load(store, "v0002"))) == 2


# ---------------------------------------------------------------- formats


def test_release_parquet_loads_with_pandas(tmp_path: Path) -> None:
    import pandas as pd

    store = LocalStore(tmp_path / "s")
    do_publish(store)
    folder = pull(store, dest=tmp_path / "out")
    df = pd.read_parquet(folder / "parquet")
    assert list(df["doc_id"]) == in_key_order(["doc-a", "doc-b", "doc-c"])
    assert set(df.columns) >= {"text", "review_status", "layer", "split", "entities", "stances"}
    row = df.set_index("doc_id").loc["doc-b"]
    assert [e["label"] for e in row["entities"]] == ["GPE", "PERSON", "GPE"]
    assert row["stances"][0]["target"] == "Paris"
    assert json.loads(row["metadata_json"])["rights"] == "CC BY 4.0"


def test_release_docbin_loads_with_spacy(tmp_path: Path) -> None:
    import spacy
    from spacy.tokens import DocBin

    store = LocalStore(tmp_path / "s")
    do_publish(store)
    folder = pull(store, dest=tmp_path / "out")
    nlp = spacy.blank("en")
    [shard] = sorted((folder / "spacy").glob("*.spacy"))
    docs = list(DocBin().from_disk(shard).get_docs(nlp.vocab))
    assert [d.user_data["doc_id"] for d in docs] == in_key_order(["doc-a", "doc-b", "doc-c"])
    a = next(d for d in docs if d.user_data["doc_id"] == "doc-a")
    # the overlapping "Acme" mention gives way to the longer "Acme Corp"
    assert [(e.text, e.label_) for e in a.ents] == [
        ("Angela Merkel", "PERSON"),
        ("Acme Corp", "ORG"),
        ("Berlin", "GPE"),
    ]
    stance = a.spans["stance"][0]
    assert (stance.label_, stance.kb_id_, stance.text) == ("FAVOR", "Berlin", "She praised Berlin.")
    assert a.user_data["review_status"] == "adjudicated" and a.user_data["layer"] == "gold"


def test_release_conll_has_iob_tags_per_document(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s")
    do_publish(store)
    conll = read_release_file(store, "v0001", "corpus.conll").decode()
    assert conll.count("-DOCSTART-") == 3
    lines = conll.splitlines()
    assert "Angela _ _ B-PERSON" in lines and "Merkel _ _ I-PERSON" in lines
    assert "met _ _ O" in lines
    assert all(len(line.split()) == 4 for line in lines if line)


def test_release_docbin_bytes_are_deterministic() -> None:
    from corpus.release import canonical_records, write_docbin

    records = canonical_records(make_records())
    assert write_docbin(records) == write_docbin(records)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.append(dict(r[0])), "duplicate doc_id"),
        (lambda r: r[0].update(review_status="done"), "review_status"),
        (lambda r: r[0]["entities"].append({"start": 5, "end": 500, "label": "X"}), "offsets"),
        (lambda r: r[0].pop("doc_id"), "doc_id"),
    ],
)
def test_release_rejects_bad_records(tmp_path: Path, mutate: Any, message: str) -> None:
    from corpus.release import PublishError

    records = make_records()
    mutate(records)
    store = LocalStore(tmp_path)
    with pytest.raises(PublishError, match=message):
        do_publish(store, records)
    assert not list(store.list(""))


# ---------------------------------------------------------------- identities


@pytest.mark.integration
def test_release_readonly_identity_can_pull_but_not_publish(seaweed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin = make_s3_store(seaweed, "ro-release")
    do_publish(admin)
    reader = make_s3_store(seaweed, "ro-release", readonly=True)
    folder = pull(reader, dest=tmp_path)
    assert (folder / "manifest.json").exists()
    assert len(list(load(reader, layer="all"))) == 3
    records = make_records()[:1]
    with pytest.raises(AccessDenied):
        do_publish(reader, records)
    assert admin.get_json(LATEST_KEY)["version"] == "v0001"


def test_release_files_are_byte_identical_across_processes() -> None:
    """Joining or resuming a claimed version needs the same bytes from any process."""
    import hashlib
    import subprocess
    import sys

    from corpus.release import canonical_records, write_conll, write_docbin, write_parquet

    script = (
        "import hashlib\n"
        "from corpus.release import canonical_records, write_docbin, write_conll, write_parquet\n"
        "from tests.test_release import make_records\n"
        "r = canonical_records(make_records())\n"
        "for b in (write_docbin(r)[0], write_conll(r), write_parquet(r)):\n"
        "    print(hashlib.sha256(b).hexdigest())\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout.split()
    r = canonical_records(make_records())
    here = [
        hashlib.sha256(b).hexdigest()
        for b in (write_docbin(r)[0], write_conll(r), write_parquet(r))
    ]
    assert other == here
