"""The Python API downstream projects use: records or spaCy Docs of one version, layer, split."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.pull import ChecksumMismatch, load, load_docs, pull, read_release_file
from corpus.release import read_manifest, split_of
from corpus.store import LocalStore, Store
from tests.test_release import do_publish, in_key_order, make_records


@pytest.fixture
def published(tmp_path: Path) -> Store:
    store = LocalStore(tmp_path / "store")
    do_publish(store)
    return store


def test_release_load_docs_gold_have_ents_and_stance_spans(published: Store) -> None:
    docs = list(load_docs(published, "latest", "gold"))
    assert [d.user_data["doc_id"] for d in docs] == ["doc-a"]
    doc = docs[0]
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Angela Merkel", "PERSON"),
        ("Acme Corp", "ORG"),
        ("Berlin", "GPE"),
    ]
    [stance] = doc.spans["stance"]
    assert (stance.label_, stance.kb_id_, stance.text) == ("FAVOR", "Berlin", "She praised Berlin.")
    assert doc.user_data["review_status"] == "adjudicated"
    # msgpack gives sequences back as tuples
    assert list(doc.user_data["stances"]) == [{"target": "Berlin", "label": "FAVOR", "score": None}]


def test_release_load_as_spacy_selects_silver_layer(published: Store) -> None:
    docs = {d.user_data["doc_id"]: d for d in load(published, layer="silver", as_spacy=True)}
    assert sorted(docs) == ["doc-b", "doc-c"]
    assert all(d.user_data["layer"] == "silver" for d in docs.values())
    assert docs["doc-b"].spans["stance"][0].kb_id_ == "Paris"
    assert len(list(load(published, as_spacy=True))) == 3


def test_release_load_docs_with_callers_vocab(published: Store) -> None:
    import spacy

    nlp = spacy.blank("en")
    doc = next(load_docs(published, vocab=nlp.vocab))
    assert doc.vocab is nlp.vocab


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_release_load_selects_split(published: Store, split: str) -> None:
    expected = in_key_order([r["doc_id"] for r in make_records() if split_of(r["doc_id"]) == split])
    loaded = load(published, split=split)  # type: ignore[call-overload]
    assert [r["doc_id"] for r in loaded] == expected
    docs = load_docs(published, split=split)  # type: ignore[arg-type]
    assert [d.user_data["doc_id"] for d in docs] == expected


def test_release_load_fixed_version_and_layer(published: Store) -> None:
    do_publish(published, make_records()[:1])  # v0002: doc-b only
    assert [r["doc_id"] for r in load(published, "v0002")] == ["doc-b"]
    assert [d.user_data["doc_id"] for d in load_docs(published, "v0001", "gold")] == ["doc-a"]
    assert list(load_docs(published, "v0002", "gold")) == []


def test_release_load_docs_from_pulled_folder(published: Store, tmp_path: Path) -> None:
    folder = pull(published, dest=tmp_path / "pulled")
    assert [d.user_data["doc_id"] for d in load_docs(tmp_path / "pulled", layer="gold")] == [
        "doc-a"
    ]
    assert len(list(load(folder, as_spacy=True))) == 3
    [shard] = (folder / "spacy").glob("*.spacy")
    shard.write_bytes(b"not a docbin")
    with pytest.raises(ChecksumMismatch, match=r"spacy/.*\.spacy"):
        list(load_docs(folder))


def test_release_load_docs_catches_tampered_object_in_store(published: Store) -> None:
    [key] = [f.object for f in read_manifest(published, "v0001").files if f.path.endswith(".spacy")]
    assert key is not None
    published.put_bytes(key, published.get_bytes(key) + b"\0")
    docs = load_docs(published)
    with pytest.raises(ChecksumMismatch, match=r"spacy/.*\.spacy"):
        next(docs)  # a shard is checked before any of its Docs is yielded
    assert read_release_file(published, "v0001", "labels.json").startswith(b"{")


@pytest.mark.parametrize(("layer", "split"), [("bronze", None), ("gold", "validation")])
def test_release_load_rejects_unknown_layer_or_split(
    published: Store, layer: str, split: str | None
) -> None:
    with pytest.raises(ValueError, match="layer" if layer == "bronze" else "split"):
        load(published, layer=layer, split=split)  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        load_docs(published, layer=layer, split=split)  # type: ignore[arg-type]


def test_release_load_is_corpus_load(published: Store) -> None:
    import corpus

    assert [r["doc_id"] for r in corpus.load(published, layer="gold")] == ["doc-a"]
    assert len(list(corpus.load_docs(published))) == 3
