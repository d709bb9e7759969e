"""Publish with bounded memory: the per-document state a publish keeps is compact (sorted runs
on disk for the content hash, arrays for keys, digests and the live rows, a sorted merge against
the previous live index instead of dictionaries), and none of that changes a byte of what is
published: the content hash is the same function of the live content, and a history of versions
(first, updates, removal, compaction) gives the very manifests the dictionary-based publish gave.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

import corpus.release as release
from corpus.release import (
    LiveIndex,
    PublishError,
    _canonical_record,
    _json_line,
    content_hash,
    read_manifest,
)
from corpus.store import LocalStore
from tests.test_release import do_publish

WORDS = ("Angela", "Merkel", "met", "Acme", "Corp", "in", "Berlin", "Paris", "is", "lovely")
# ids of every kind the sort order must get right: prefixes of each other, non-ASCII (UTF-8
# byte order is code point order, which is what Python's sort of str gives), astral characters
ODD_IDS = ("a", "ab", "a\u00e9", "a\U0001f600", "\u00e9", "z", "Z", "a b", "doc/1", "\uffff")


def random_records(n: int, seed: int) -> list[dict[str, Any]]:
    """n records with ids of mixed kinds, entities (some overlapping) and stances."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 30))]
        text = " ".join(words) + f" ({i})."
        entities = []
        at = 0
        for w in words:
            if w[0].isupper() and rng.random() < 0.5:
                entities.append({"start": at, "end": at + len(w), "label": "PERSON", "text": w})
                if rng.random() < 0.1:  # an overlap: left out of the DocBin and the CoNLL
                    entities.append({"start": at, "end": at + 2, "label": "ORG"})
            at += len(w) + 1
        stances = []
        if entities and rng.random() < 0.5:
            e = entities[0]
            stances.append(
                {"target": e["text"], "label": "FAVOR", "evidence": [{"start": 0, "end": 3}]}
            )
        doc_id = ODD_IDS[i] if i < len(ODD_IDS) else f"d{rng.randrange(10**9)}-{i}"
        out.append(
            {
                "doc_id": doc_id,
                "text": text,
                "entities": entities,
                "stances": stances,
                "metadata": {
                    "rights": ("CC BY 4.0", None)[i % 2],
                    "source_url": f"https://{i % 13}.example/{i % 41}",
                },
                "review_status": ("machine", "reviewed", "adjudicated", "disputed")[i % 4],
                "source": f"s/{i}.txt",
                "annotators": [] if i % 4 == 0 else [f"ann-{i % 3}"],
                "model_version": "ner-1",
            }
        )
    return out


def reference_content_hash(records: list[dict[str, Any]]) -> str:
    """The content hash as the dictionary-based publish computed it: sha256 over (doc_id, sha256
    of its canonical JSON line) in doc_id order."""
    digests = {}
    for r in records:
        c = _canonical_record(r)
        digests[c["doc_id"]] = hashlib.sha256(_json_line(c).encode("utf-8")).digest()
    h = hashlib.sha256()
    for doc_id in sorted(digests):
        h.update(doc_id.encode("utf-8") + b"\0" + digests[doc_id])
    return h.hexdigest()


@pytest.mark.parametrize(
    ("n", "seed", "run"),
    [(0, 1, 4), (1, 2, 4), (10, 3, 3), (57, 4, 5), (300, 5, 64), (300, 6, 1000)],
)
def test_release_memory_content_hash_equals_the_dict_reference(
    n: int, seed: int, run: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = random_records(n, seed)
    random.Random(seed).shuffle(records)
    monkeypatch.setattr(release, "SORT_RUN_DOCS", run)  # many runs merged, or one
    inp = release._read_input(iter(records), tmp_path)
    assert inp.content_hash == reference_content_hash(records)
    assert inp.content_hash == content_hash(
        (r["doc_id"], hashlib.sha256(_json_line(_canonical_record(r)).encode()).digest())
        for r in records
    )
    # the runs hand the documents back in doc_id order with their digests, as often as asked
    want = sorted(_canonical_record(r)["doc_id"] for r in records)
    assert [d for d, _ in inp.by_id()] == want == [d for d, _ in inp.by_id()]
    assert list(inp.keys) == sorted(release.shard_key(d) for d in want)
    assert len(inp) == n


@pytest.mark.parametrize("run", [2, 1000])
def test_release_memory_duplicate_ids_are_refused(
    run: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = random_records(20, 7)
    records.insert(13, copy.deepcopy(records[3]))
    monkeypatch.setattr(release, "SORT_RUN_DOCS", run)
    with pytest.raises(PublishError, match="duplicate doc_id"):
        release._read_input(iter(records), tmp_path)


def history() -> list[list[dict[str, Any]]]:
    """First version; a few changed, two removed, two added (an update); 40% changed (a
    compaction, reusing the ranges untouched); a few changed back and one removed (an update
    over the compacted version)."""
    v1 = random_records(150, 11)
    v2 = copy.deepcopy(v1)
    for i in (2, 40, 77):
        v2[i]["review_status"] = "adjudicated"
    del v2[100], v2[5]
    v2 += random_records(152, 12)[150:]
    v3 = copy.deepcopy(v2)
    for r in v3:  # the documents of the lower 40% of the key space: the other ranges stay
        if release.shard_key(r["doc_id"]) < 0.4 * release.KEY_SPACE:
            r["text"] += " Edited."
    v4 = copy.deepcopy(v3)
    edited = [i for i, r in enumerate(v3) if r["text"] != v2[i]["text"]]
    for i in edited[:2]:
        v4[i] = copy.deepcopy(v2[i])
    del v4[edited[2]]
    return [v1, v2, v3, v4]


def manifest_digest(store: LocalStore, version: str) -> str:
    """sha256 of the manifest without its time stamp: the files (and their bytes, through
    their sha256), shards, updates, counts and content hash."""
    raw = read_manifest(store, version).model_dump(mode="json")
    raw.pop("created_at")
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


# Made by the dictionary-based publish (main at ccccb4e) from `history()`: a change to the
# publish's bytes for the same input is a FORMAT_VERSION bump and new values here, never silent.
GOLDEN = {
    "v0001": "4c03bfbb595ede3304bf0489d5ddf6608a762aa695fbacd2ca92dfab081ef341",
    "v0002": "7db0c7477ac1c46b6fa2e442a1e024f3a9796aac0ac170d3763ef646ab067429",
    "v0003": "51422db052873b8dc632f331fdc2cd56b1ca5439cfe5e6e4d4f28b81da52b8de",
    "v0004": "22f868c690fc63c73b6ccda95d4591cac6da7950f6e293da725a2db1e6b5e946",
}


def test_release_memory_history_gives_the_manifests_of_the_dict_based_publish(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    kinds: list[tuple[bool, bool]] = []
    shared = []
    for records in history():
        result = do_publish(store, records, shard_docs=8)
        assert result.created
        if len(kinds) == 2:  # the compaction kept the ranges whose documents did not change
            before = {s.formats.get("jsonl") for s in read_manifest(store, "v0002").shards}
            shared = [s for s in result.manifest.shards if s.formats.get("jsonl") in before]
        kinds.append((bool(result.manifest.updates), result.manifest.dead_rows > 0))
        assert result.manifest.content_hash == reference_content_hash(records)
    # what each step exercised: base shards, an update, a compaction, an update again
    assert kinds == [(False, False), (True, True), (False, False), (True, True)]
    assert 5 <= len(shared) < len(result.manifest.shards)
    got = {v: manifest_digest(store, v) for v in GOLDEN}
    assert got == GOLDEN


def test_release_memory_live_index_rows_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    for records in history()[:2]:
        result = do_publish(store, records, shard_docs=8)
    [entry] = [f for f in result.manifest.files if f.path == release.INDEX_PATH]
    index = LiveIndex(store.get_bytes(entry.object or ""))
    table = index.table.to_pylist()
    parts = list(dict.fromkeys(r["part"] for r in table))
    rows = [r for p in parts for r in index.rows(p)]
    assert rows == [
        (
            r["doc_id"],
            r["position"],
            r["record_sha256"],
            r["conll_sha256"],
            r["dropped_overlaps"],
        )
        for r in table
    ]
    # written back from those rows, the index has the same bytes
    assert release.write_index((p, index.rows(p)) for p in parts) == store.get_bytes(
        entry.object or ""
    )


def test_release_memory_find_records_with_shared_prefixes() -> None:
    """Rows found by record sha256 through a sorted array of their first 8 bytes: digests that
    share those bytes (and one ending in zero bytes) are told apart by the rest."""
    rng = random.Random(3)
    same = bytes(8)
    digests = [same + rng.randbytes(24) for _ in range(5)] + [rng.randbytes(32) for _ in range(40)]
    digests.append(rng.randbytes(24) + bytes(8))
    rows = [(f"d{i}", i, d, rng.randbytes(32), 0) for i, d in enumerate(digests)]
    index = LiveIndex(release.write_index([("p0", rows[:20]), ("p1", rows[20:])]))
    shuffled = digests[:]
    rng.shuffle(shuffled)
    missing = [same + rng.randbytes(24), rng.randbytes(32)]
    found = index.find_records(shuffled + missing)
    assert found == [digests.index(d) for d in shuffled] + [-1, -1]
    assert index.find_records([]) == []


@pytest.mark.parametrize(
    ("origins", "count", "shown"),
    [
        ([], 0, []),
        (["b", "a", "b", "a"], 2, ["a", "b"]),
        ([f"o{i:02d}" for i in range(30, 0, -1)] * 2, 30, [f"o{i:02d}" for i in range(1, 11)]),
    ],
)
def test_release_memory_origins_count_and_first_ones(
    origins: list[str], count: int, shown: list[str]
) -> None:
    seen = release._Origins()
    for o in origins:
        seen.add(o)
    assert (len(seen), seen.first) == (count, shown)


def test_release_memory_fresh_vocabulary_gives_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The blank pipeline made anew between parts (its vocabulary bounded) changes no byte."""
    records = [_canonical_record(r) for r in random_records(40, 9)]
    parts = [records[i : i + 5] for i in range(0, 40, 5)]
    release._blank_en.cache_clear()
    once = [release.write_spacy_and_conll(p, "x") for p in parts]
    monkeypatch.setattr(release, "BLANK_MAX_STRINGS", 10)
    made = []  # kept alive, so that their ids stay theirs
    again = []
    for p in parts:
        again.append(release.write_spacy_and_conll(p, "x"))
        made.append(release._blank_en())
    assert again == once and len({id(nlp) for nlp in made}) == len(parts)
