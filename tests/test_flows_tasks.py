"""Task logic that needs no service: source discovery, batching, the retry policy, release
records (pseudonyms, gold vs machine layer), the review status of a document, the stance model
the annotate stage picks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import requests

from corpus.store import LocalStore
from flows.tasks import (
    Pseudonyms,
    _retryable,
    batched,
    decide,
    discover,
    keys,
    pseudonym,
    pseudonymize_agreement,
    release_record,
    stance_model_path,
)
from review.client import LabelStudioError
from schemas import AdjudicationResult, AnnotatedDocument, Entity
from schemas.settings import Settings


def test_flows_discover_lists_files_sorted_with_relative_keys(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("x")
    (tmp_path / "1.html").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    refs = discover(str(tmp_path), Settings())
    assert [r.key for r in refs if r.skip is None] == ["1.html", "b/2.txt"]
    assert [(r.key, r.skip) for r in refs if r.skip] == [(".hidden", "hidden file: not read")]
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
        {
            "Error": {"Code": str(status)},
            "ResponseMetadata": {"HTTPStatusCode": status},  # type: ignore[typeddict-item]
        },
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
        entities=[Entity(start=0, end=5, label="PERSON", text="Putin", score=0.4)],
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


def _ann(who: str, label: str, role: str = "annotator") -> dict:
    return {"annotator": who, "role": role, "stances": [{"target": "China", "label": label}]}


@pytest.mark.parametrize(
    ("review", "adjudication", "overlap", "status"),
    [
        ([], [], 1, "machine"),
        ([_ann("a", "FAVOR")], [], 1, "reviewed"),
        ([_ann("a", "FAVOR")], [], 2, "in_review"),
        ([_ann("a", "FAVOR"), _ann("b", "FAVOR")], [], 2, "adjudicated"),
        ([_ann("a", "FAVOR"), _ann("b", "AGAINST")], [], 2, "disputed"),
        # the adjudicator's decision is final, from either project, overlap reached or not
        (
            [_ann("a", "FAVOR"), _ann("b", "AGAINST")],
            [_ann("j", "AGAINST", "adjudicator")],
            2,
            "adjudicated",
        ),
        ([_ann("a", "FAVOR")], [_ann("j", "AGAINST", "adjudicator")], 3, "adjudicated"),
        ([_ann("a", "FAVOR"), _ann("j", "NEUTRAL", "adjudicator")], [], 2, "adjudicated"),
        # an adjudicator does not count towards the overlap
        ([_ann("a", "FAVOR"), _ann("b", "FAVOR")], [], 3, "in_review"),
    ],
)
def test_flows_decide_status_from_what_people_did(
    review: list, adjudication: list, overlap: int, status: str
) -> None:
    result = decide("d", review, adjudication, overlap)
    assert result.status == status
    if adjudication or any(a["role"] == "adjudicator" for a in review):
        final = (adjudication or [a for a in review if a["role"] == "adjudicator"])[0]
        assert [s.label for s in result.stances] == [final["stances"][0]["label"]]
    if status in ("machine", "in_review"):
        assert result.stances == [] and result.disputes == []


def test_flows_agreement_in_a_release_names_no_annotator(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    report: dict[str, Any] = {
        "entity_f1_exact": 0.5,
        "annotators": {"ann1@x.org": {"documents": 2}, "ann2@x.org": {"documents": 1}},
        "stance_kappa_pairwise": {"ann1@x.org~ann2@x.org": 0.4},
    }
    out = pseudonymize_agreement(report, Pseudonyms(store))
    assert "x.org" not in json.dumps(out)
    p1, p2 = pseudonym(store, "ann1@x.org"), pseudonym(store, "ann2@x.org")
    assert out["annotators"] == {p1: {"documents": 2}, p2: {"documents": 1}}
    assert out["stance_kappa_pairwise"] == {"~".join(sorted((p1, p2))): 0.4}
    assert out["entity_f1_exact"] == 0.5 and report["annotators"]["ann1@x.org"]  # input kept


def test_flows_stance_model_from_the_store_is_fetched_once_by_version(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    settings = Settings(work_dir=tmp_path / "work")
    assert stance_model_path(store, settings) is None
    store.put_bytes(keys.stance_model("stance-clf-1"), b'{"x": 1}')
    store.put_json(keys.stance_model_current, {"version": "stance-clf-1"})
    path = stance_model_path(store, settings)
    assert path is not None and path.read_bytes() == b'{"x": 1}'
    assert path.name == "stance-clf-1.json"
    explicit = Settings(work_dir=tmp_path / "work", stance_model=tmp_path / "mine.json")
    assert stance_model_path(store, explicit) == tmp_path / "mine.json"


def test_flows_import_file_of_a_shard_keeps_the_tasks_that_stay(tmp_path: Path) -> None:
    """A shard's import file that lost documents is filtered, not rebuilt; a file lacking one
    of the documents (not ours, or damaged) is refused, so that it is made from the shard."""
    from flows.tasks import keep_import_tasks
    from review.results import write_import_file

    docs = [
        AnnotatedDocument.model_validate(
            {
                "source": f"s/{i}.txt",
                "doc_id": f"d{i}",
                "text": f"Angela Merkel met person {i}.",
                "content_hash": f"h{i}",
                "cleaner_version": "c1",
                "model_version": "m1",
            }
        )
        for i in range(4)
    ]
    path = tmp_path / "shard.json"
    write_import_file(iter(docs), path)
    before = {t["data"]["doc_id"]: t for t in json.loads(path.read_text())}
    assert keep_import_tasks(path, {"d0", "d2"})
    after = json.loads(path.read_text())
    assert after == [before["d0"], before["d2"]]
    assert not keep_import_tasks(path, {"d0", "d1"})  # d1 is gone from the file
    assert json.loads(path.read_text()) == after  # left as it was
    assert keep_import_tasks(path, set()) and json.loads(path.read_text()) == []
    assert not keep_import_tasks(tmp_path / "missing.json", {"d0"})
