"""Task logic that needs no service: source discovery, batching, the retry policy, release
records (pseudonyms, gold vs machine layer)."""

from __future__ import annotations

from pathlib import Path

import botocore.exceptions
import pytest
import requests

from annotators.labelstudio import LabelStudioError
from corpus.store import LocalStore
from flows.tasks import _retryable, batched, discover, keys, pseudonym, release_record
from schemas import AdjudicationResult, AnnotatedDocument
from schemas.settings import Settings


def test_flows_discover_lists_files_sorted_with_relative_keys(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("x")
    (tmp_path / "1.html").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    refs = discover(str(tmp_path), Settings())
    assert [r.key for r in refs] == ["1.html", "b/2.txt"]
    assert discover(str(tmp_path / "1.html"), Settings())[0].key == "1.html"
    with pytest.raises(FileNotFoundError):
        discover(str(tmp_path / "missing"), Settings())


@pytest.mark.parametrize(("n", "size", "shape"), [(0, 3, []), (5, 2, [2, 2, 1]), (3, 3, [3])])
def test_flows_batched(n: int, size: int, shape: list[int]) -> None:
    assert [len(b) for b in batched(list(range(n)), size)] == shape


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(response=response)


def _client_error(status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": str(status)}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (LabelStudioError("down", status=None), True),
        (LabelStudioError("boom", status=502), True),
        (LabelStudioError("bad config", status=400), False),
        (LabelStudioError("no token", status=401), False),
        (_http_error(503), True),
        (_http_error(404), False),
        (_client_error(500), True),
        (_client_error(403), False),
        (requests.ConnectionError(), True),
        (ValueError("validation"), False),
    ],
)
def test_flows_retry_only_what_retrying_can_fix(exc: BaseException, retry: bool) -> None:
    assert _retryable(exc) is retry


def test_flows_release_record_pseudonymises_and_picks_layer(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    doc = AnnotatedDocument(
        source="s.txt",
        doc_id="d1",
        text="Putin met Xi.",
        entities=[{"start": 0, "end": 5, "label": "PERSON", "text": "Putin", "score": 0.4}],
        model_version="m1",
    )
    human = {"task_id": 1, "annotations": [{"annotator": "ann@example.org", "entities": []}]}
    store.put_json(keys.human("d1"), human)
    reviewed = AdjudicationResult.model_validate(
        {
            "doc_id": "d1",
            "status": "reviewed",
            "entities": [{"start": 10, "end": 12, "label": "PERSON"}],
            "stances": [],
            "disputes": [],
            "agreement": {"entity_f1": None, "stance_kappa": None},
        }
    )
    record = release_record(store, doc, reviewed)
    assert record["entities"] == [{"start": 10, "end": 12, "label": "PERSON", "text": "Xi"}]
    assert record["annotators"] == [pseudonym(store, "ann@example.org")]
    assert "example.org" not in str(record)
    # the same name gets the same pseudonym on every call (stable across releases)
    assert pseudonym(store, "ann@example.org") == record["annotators"][0]

    disputed = reviewed.model_copy(update={"status": "disputed"})
    held = release_record(store, doc, disputed)
    assert held["review_status"] == "disputed"
    assert [e["text"] for e in held["entities"]] == ["Putin"], (
        "disputed docs keep the machine layer"
    )
