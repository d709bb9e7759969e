"""The publish path's speed-ups must not change a byte of what is released."""

from __future__ import annotations

from corpus.release import (
    _cached_msgpack_encoders,
    _fast_docbin_class,
    _spacy_doc,
    canonical_records,
)
from tests.test_release import make_records


def _records() -> list[dict]:  # type: ignore[type-arg]
    from bench.release import make_records as bench_records

    records = make_records()
    records.append({**records[0], "doc_id": "doc-empty", "text": "", "entities": [], "stances": []})
    return canonical_records(records + bench_records(30))


def test_release_fast_docbin_bytes_equal_spacy_docbin() -> None:
    from spacy.tokens import DocBin

    docs = [_spacy_doc(r)[0] for r in _records()]
    out = []
    for cls in (DocBin, _fast_docbin_class()):
        db = cls(store_user_data=True)
        with _cached_msgpack_encoders():
            for doc in docs:
                db.add(doc)
        out.append(db.to_bytes())
    assert out[0] == out[1]
