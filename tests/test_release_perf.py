"""The publish path's fast CoNLL writer must not change a byte of what is released."""

from __future__ import annotations

from corpus.release import _spacy_doc, canonical_records
from tests.test_release import make_records


def _records() -> list[dict]:  # type: ignore[type-arg]
    from bench.release import make_records as bench_records

    records = make_records()
    records.append({**records[0], "doc_id": "doc-empty", "text": "", "entities": [], "stances": []})
    odd = "  Zoë  Ågren 🙂 met\tACME\n\n\n  in  Oslo \n"
    records.append(
        {
            **records[0],
            "doc_id": "doc-odd",
            "text": odd,
            "entities": [
                {"start": 2, "end": 12, "label": "PERSON"},
                {"start": 19, "end": 23, "label": "ORG"},
                {"start": 32, "end": 36, "label": "GPE"},
            ],
            "stances": [
                {"target": "Oslo", "label": "FAVOR", "evidence": [{"start": 0, "end": 38}]}
            ],
        }
    )
    return canonical_records(records + bench_records(30))


def _conll_lines_by_tokens(doc) -> list[str]:  # type: ignore[no-untyped-def]
    """The plain Token-by-Token writer the fast one replaced: the reference."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    pending_break = False
    for token in doc:
        if token.is_space:
            pending_break = pending_break or "\n" in token.text
            continue
        if pending_break and lines[-1] != "":
            lines.append("")
        pending_break = "\n" in token.whitespace_
        tag = "O" if not token.ent_iob_ or token.ent_iob_ == "O" else token.ent_iob_
        if tag != "O":
            tag = f"{tag}-{token.ent_type_}"
        lines.append(f"{token.text} _ _ {tag}")
    if lines[-1] != "":
        lines.append("")
    return lines


def test_release_fast_conll_equals_token_by_token_writer() -> None:
    from corpus.release import _conll_lines

    for record in _records():
        doc = _spacy_doc(record)[0]
        assert _conll_lines(doc) == _conll_lines_by_tokens(doc), record["doc_id"]
