"""The release record and latest-pointer schemas, and how publish reports a bad record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from corpus.release import LATEST_KEY, PublishError, publish, read_latest
from corpus.store import LocalStore, StoreError
from schemas.release import LatestPointer, ReleaseRecord
from tests.test_release import AGREEMENT, LABELS, do_publish, make_records


def pipeline_record() -> dict[str, Any]:
    """Shaped like flows.tasks.release_record() builds it for an adjudicated document."""
    return {
        "doc_id": "doc-p",
        "text": "Ann Lee backs the plan.",
        "entities": [{"start": 0, "end": 7, "label": "PERSON", "text": "Ann Lee"}],
        "stances": [
            {"target": "plan", "label": "FAVOR", "evidence": [{"start": 0, "end": 23}]},
        ],
        "metadata": {"title": "P", "authors": [], "rights": None, "extra_key": 1},
        "review_status": "disputed",
        "disputes": [
            {
                "kind": "stance",
                "target": "plan",
                "votes": {"FAVOR": 1, "AGAINST": 1},
                "annotators": 2,
            }
        ],
        "agreement": {"entity_f1": 1.0, "stance_kappa": None},
        "source": "samples/p.txt",
        "annotators": ["annotator-3f2a", "annotator-9c01"],
        "model_version": "en_core_web_sm@3.8.0+stance-2",
        "provenance": {
            "source_sha256": "ab" * 32,
            "content_hash": "cd" * 32,
            "cleaner_version": "7",
            "removed": [{"start": 0, "end": 4, "kind": "banner"}],
        },
    }


def test_release_schema_accepts_pipeline_and_test_records() -> None:
    for record in [pipeline_record(), *make_records()]:
        assert ReleaseRecord.model_validate(record).doc_id == record["doc_id"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("review_status", "done", "review_status"),
        ("entities", [{"start": 3, "end": 2, "label": "PERSON"}], "entity offsets 3:2"),
        ("entities", [{"start": 0, "end": 99, "label": "PERSON"}], "entity offsets 0:99"),
        ("entities", [{"start": 0, "end": 3}], "entities.0.label"),
        ("stances", [{"target": "plan", "label": "LOVE"}], "stances.0.label"),
        (
            "stances",
            [{"target": "x", "label": "FAVOR", "evidence": [{"start": 0, "end": 90}]}],
            "evidence",
        ),
        ("annotators", "ann-1", "annotators"),
        ("annotators", ["annotator-3f2a", "ann@example.org"], "pseudonyms only"),
        ("annotators", ["Ann Lee"], "pseudonyms only"),
        ("split", "holdout", "split"),
        ("surprise", 1, "surprise"),
    ],
)
def test_release_schema_bad_record_error_names_doc_and_field(
    tmp_path: Path, field: str, value: Any, message: str
) -> None:
    bad = {**pipeline_record(), field: value}
    store = LocalStore(tmp_path / "s")
    with pytest.raises(PublishError, match=message) as caught:
        do_publish(store, [*make_records(), bad])
    assert "record doc-p:" in str(caught.value)
    assert not list(store.list(""))  # nothing written for a bad batch


def test_release_schema_none_lists_count_as_empty(tmp_path: Path) -> None:
    record = {**pipeline_record(), "entities": None, "metadata": None, "annotators": None}
    result = do_publish(LocalStore(tmp_path), [record])
    assert result.manifest.counts["entities"] == 0


def test_release_schema_pydantic_records_are_welcome(tmp_path: Path) -> None:
    records = [ReleaseRecord.model_validate(r) for r in make_records()]
    result = publish(
        LocalStore(tmp_path),
        records,  # type: ignore[arg-type]
        label_schema=LABELS,
        agreement=AGREEMENT,
        code_version="c",
        model_versions=[],
    )
    assert result.manifest.counts["documents"] == 3


def test_release_schema_latest_pointer_written_and_checked(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = do_publish(store)
    pointer = LatestPointer.model_validate(store.get_json(LATEST_KEY))
    assert (pointer.version, pointer.previous) == ("v0001", None)
    assert pointer.content_hash == first.manifest.content_hash and pointer.published_at
    do_publish(store, make_records()[:2])
    assert LatestPointer.model_validate(store.get_json(LATEST_KEY)).previous == "v0001"

    store.put_json(LATEST_KEY, {"version": "../etc", "manifest_sha256": "x", "content_hash": "y"})
    with pytest.raises(StoreError, match="not a valid pointer"):
        read_latest(store)


def test_release_schema_pointer_rejects_bad_version() -> None:
    with pytest.raises(ValidationError):
        LatestPointer(version="latest", manifest_sha256="0" * 64, content_hash="0" * 64)


def test_release_manifest_lists_code_models_and_every_status(tmp_path: Path) -> None:
    manifest = do_publish(LocalStore(tmp_path)).manifest
    assert manifest.code_version == "test-1" and manifest.model_versions == ["ner-1"]
    assert {k: v for k, v in manifest.counts.items() if k.startswith("status_")} == {
        "status_machine": 1,
        "status_in_review": 0,
        "status_reviewed": 0,
        "status_adjudicated": 1,
        "status_disputed": 1,
        "status_source_changed": 0,
    }
    assert manifest.counts["layer_gold"] + manifest.counts["layer_silver"] == 3
