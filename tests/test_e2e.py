"""End to end on the real services, with an overlap of two: run -> two annotators submit through
the Label Studio API, as the UI would -> run again -> the release holds their adjudicated labels,
a document only one of them labelled stays in review, their disagreement goes to the adjudication
project -> the adjudicator decides -> run again -> it is adjudicated; a further run creates no
task and no release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus.pull import pull
from corpus.release import read_latest
from corpus.store import open_store
from review.client import LabelStudioClient
from review.results import to_result
from schemas import SpanLabel, StanceLabel
from services.labelstudio import LabelStudioService
from services.seaweedfs import SeaweedService
from tests.webhook_fixtures import SECRET, Calls

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "corpusflow-e2e"


@pytest.mark.integration
@pytest.mark.model
def test_e2e_review_loop_adjudicates_and_reruns_create_nothing(
    label_studio: LabelStudioService,
    seaweed: SeaweedService,
    prefect_harness: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: tuple[object, Calls, str],
) -> None:
    from flows.pipeline import corpus_pipeline, review_cycle

    seaweed.ensure_bucket(BUCKET)
    env = {
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.token,
        "AWS_ENDPOINT_URL": seaweed.endpoint_url,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "CORPUSFLOW_STORE": f"s3://{BUCKET}/e2e",
        "CORPUSFLOW_LS_PROJECT": "e2e",
        "CORPUSFLOW_OVERLAP": "2",
        "CORPUSFLOW_ADJUDICATORS": "judge@corpusflow.test",
        "CORPUSFLOW_WEBHOOK_URL": receiver[2],
        "CORPUSFLOW_WEBHOOK_SECRET": SECRET,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    samples = str(ROOT / "corpus" / "samples")

    first = corpus_pipeline(sources=samples)
    push = first["review"]["push"]
    assert push["mode"] == "label-studio" and push["created"] == 5
    assert first["release"]["created"] is True
    assert set(first["adjudication"]) == {"machine"}
    assert push["webhook"]["created"] is True
    calls = receiver[1]

    client = LabelStudioClient(label_studio.url, label_studio.token)
    project_id = push["project_id"]
    tasks = {t["data"]["doc_id"]: t for t in client.tasks(project_id)}
    assert len(tasks) == 5
    agreed_id, split_id, half_id = sorted(tasks)[:3]

    users = [("ann1@corpusflow.test", "Ann-One-pass1"), ("ann2@corpusflow.test", "Ann-Two-pass2")]
    judge = ("judge@corpusflow.test", "Judge-pass3")
    for email, password in [*users, judge]:
        client.create_user(email, password)

    def text_of(doc_id: str) -> str:
        return str(tasks[doc_id]["data"]["text"])

    def first_word(text: str) -> SpanLabel:
        end = text.index(" ")
        return SpanLabel(start=0, end=end, label="ORG")

    # both annotators give the same labels on one document ...
    agreed_text = text_of(agreed_id)
    agreed = to_result(
        agreed_text,
        [first_word(agreed_text)],
        [StanceLabel(target="Russia", label="AGAINST")],
    )
    # ... and different stances toward the same target on another
    split_text = text_of(split_id)
    for (email, password), label in zip(users, ["FAVOR", "AGAINST"], strict=True):
        client.submit_annotation(
            tasks[agreed_id]["id"], agreed, email=email, password=password, lead_time=12.5
        )
        client.submit_annotation(
            tasks[split_id]["id"],
            to_result(split_text, [], [StanceLabel(target="China", label=label)]),  # type: ignore[arg-type]
            email=email,
            password=password,
        )

    # only one of the two annotators the overlap asks for labels a third document
    half_text = text_of(half_id)
    client.submit_annotation(
        tasks[half_id]["id"],
        to_result(half_text, [first_word(half_text)], []),
        email=users[0][0],
        password=users[0][1],
    )

    # Label Studio told the receiver, which would start the flow's deployment
    assert calls.fired.wait(60) and calls.count >= 1

    second = corpus_pipeline(sources=samples)
    assert second["review"]["push"]["created"] == 0
    assert second["review"]["push"]["webhook"] == {
        "id": push["webhook"]["id"],
        "created": False,
        "updated": False,
    }
    assert second["review"]["collect"]["collected"] == 3
    assert second["adjudication"] == {
        "adjudicated": 1,
        "disputed": 1,
        "in_review": 1,
        "machine": 2,
    }
    assert second["release"]["created"] is True
    sent = second["review"]["adjudication"]
    assert sent["disputed"] == 1 and sent["created"] == 1

    store = open_store(
        env["CORPUSFLOW_STORE"],
        endpoint_url=seaweed.endpoint_url,
        access_key=seaweed.readonly_access_key,
        secret_key=seaweed.readonly_secret_key,
    )
    dest = pull(store, "latest", dest=tmp_path / "release")
    rows = {
        r["doc_id"]: r for r in map(json.loads, (dest / "corpus.jsonl").read_text().splitlines())
    }
    assert rows[agreed_id]["review_status"] == "adjudicated"
    assert [(e["start"], e["end"], e["label"]) for e in rows[agreed_id]["entities"]] == [
        (0, agreed_text.index(" "), "ORG")
    ]
    assert [(s["target"], s["label"]) for s in rows[agreed_id]["stances"]] == [
        ("Russia", "AGAINST")
    ]
    assert rows[split_id]["review_status"] == "disputed"
    assert rows[split_id]["disputes"][0]["target"] == "China"
    # one annotation of the two asked for: machine labels stand, marked in review
    assert rows[half_id]["review_status"] == "in_review" and rows[half_id]["layer"] == "silver"
    # annotators appear under pseudonyms, never their emails, in records and agreement
    assert len(rows[agreed_id]["annotators"]) == 2
    for name in ("corpus.jsonl", "agreement.json"):
        assert "corpusflow.test" not in (dest / name).read_text()
    agreement = json.loads((dest / "agreement.json").read_text())
    assert set(agreement["annotators"]) == set(rows[agreed_id]["annotators"])

    # the adjudicator finds the disputed document in the adjudication project and decides
    adj_project = sent["project_id"]
    adj_tasks = client.tasks(adj_project)
    assert [t["data"]["doc_id"] for t in adj_tasks] == [split_id]
    client.submit_annotation(
        adj_tasks[0]["id"],
        to_result(split_text, [], [StanceLabel(target="China", label="AGAINST")]),
        email=judge[0],
        password=judge[1],
    )

    # what the webhook starts: collect, adjudicate, publish (no ingest, annotate or push)
    third = review_cycle()
    assert "push" not in third["review"]
    assert third["review"]["collect"]["adjudicated"] == 1
    assert third["adjudication"] == {"adjudicated": 2, "in_review": 1, "machine": 2}
    assert third["review"]["adjudication"] == {"disputed": 0, "pushed": 0}
    assert third["release"]["created"] is True
    dest = pull(store, "latest", dest=tmp_path / "release3")
    rows = {
        r["doc_id"]: r for r in map(json.loads, (dest / "corpus.jsonl").read_text().splitlines())
    }
    assert rows[split_id]["review_status"] == "adjudicated" and rows[split_id]["layer"] == "gold"
    assert [(s["target"], s["label"]) for s in rows[split_id]["stances"]] == [("China", "AGAINST")]
    assert len(rows[split_id]["annotators"]) == 3  # two annotators and the adjudicator

    fourth = corpus_pipeline(sources=samples)
    assert fourth["review"]["push"]["created"] == 0
    assert fourth["release"] == {"version": third["release"]["version"], "created": False}
    assert len(client.tasks(project_id)) == 5
    assert len(client.tasks(adj_project)) == 1
    latest, _etag = read_latest(store)
    assert latest is not None and latest["version"] == third["release"]["version"]
