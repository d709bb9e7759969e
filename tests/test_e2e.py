"""End to end on the real services: run -> two annotators submit through the Label Studio API,
as the UI would -> run again -> the release holds their adjudicated labels; a further run
creates no task and no release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotators.labelstudio import LabelStudioClient, to_result
from corpus.pull import pull
from corpus.release import read_latest
from corpus.store import open_store
from schemas import SpanLabel, StanceLabel
from services.labelstudio import LabelStudioService
from services.seaweedfs import SeaweedService

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
) -> None:
    from flows.pipeline import corpus_pipeline

    seaweed.ensure_bucket(BUCKET)
    env = {
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.token,
        "AWS_ENDPOINT_URL": seaweed.endpoint_url,
        "AWS_ACCESS_KEY_ID": seaweed.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweed.secret_key,
        "CORPUSFLOW_STORE": f"s3://{BUCKET}/e2e",
        "CORPUSFLOW_LS_PROJECT": "e2e",
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

    client = LabelStudioClient(label_studio.url, label_studio.token)
    project_id = push["project_id"]
    tasks = {t["data"]["doc_id"]: t for t in client.tasks(project_id)}
    assert len(tasks) == 5
    agreed_id, split_id = sorted(tasks)[:2]

    users = [("ann1@corpusflow.test", "Ann-One-pass1"), ("ann2@corpusflow.test", "Ann-Two-pass2")]
    for email, password in users:
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

    second = corpus_pipeline(sources=samples)
    assert second["review"]["push"]["created"] == 0
    assert second["review"]["collect"]["collected"] == 2
    assert second["adjudication"] == {"adjudicated": 1, "disputed": 1, "machine": 3}
    assert second["release"]["created"] is True

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
    # annotators appear under pseudonyms, never their emails
    assert len(rows[agreed_id]["annotators"]) == 2
    assert "corpusflow.test" not in (dest / "corpus.jsonl").read_text()

    third = corpus_pipeline(sources=samples)
    assert third["review"]["push"]["created"] == 0
    assert third["release"] == {"version": second["release"]["version"], "created": False}
    assert len(client.tasks(project_id)) == 5
    latest, _etag = read_latest(store)
    assert latest is not None and latest["version"] == second["release"]["version"]
