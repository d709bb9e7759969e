"""A task deleted in Label Studio: push sends only what changed, so it does not notice (the
document's shard was sent); `corpusflow run --resync-review` (`CORPUSFLOW_RESYNC_REVIEW`) asks
Label Studio about every machine document and creates the missing task, once. Against a real
Label Studio, through the push task in a flow."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from corpus.store import LocalStore
from flows.tasks import push_review
from review.client import LabelStudioClient
from schemas.settings import Settings
from services.labelstudio import LabelStudioService
from tests.test_stage_store import fill


@flow(name="push-only")
def _push(settings: Settings) -> dict[str, Any]:
    return dict(push_review(settings))


@pytest.mark.integration
def test_review_resync_recreates_a_task_deleted_in_label_studio_once(
    label_studio: LabelStudioService, prefect_harness: None, tmp_path: Path
) -> None:
    fill(LocalStore(tmp_path / "store"), 5, batch=2)
    settings = Settings(
        store=f"file://{tmp_path / 'store'}",
        label_studio_url=label_studio.url,
        label_studio_api_key=label_studio.token,
        label_studio_project=f"resync-{uuid.uuid4().hex[:8]}",
    )
    client = LabelStudioClient(label_studio.url, label_studio.token)
    first = _push(settings)
    assert first["created"] == 5 and "resync" not in first
    project = int(first["project_id"])
    by_doc = {t["data"]["doc_id"]: int(t["id"]) for t in client.tasks(project)}
    client.sdk.tasks.delete(str(by_doc["d0003"]))  # an admin deletes a task in the UI

    plain = _push(settings)  # nothing changed in the store: nothing is sent, nothing noticed
    assert (plain["created"], plain["unchanged"]) == (0, 5)
    assert "d0003" not in {t["data"]["doc_id"] for t in client.tasks(project)}

    resync = settings.model_copy(update={"resync_review": True})
    healed = _push(resync)
    assert healed["resync"] == {"checked": 5, "missing": 1}
    assert (healed["created"], healed["updated"]) == (1, 0)
    now = [t["data"]["doc_id"] for t in client.tasks(project)]
    assert sorted(now) == ["d0000", "d0001", "d0002", "d0003", "d0004"]  # once each
    (task,) = [t for t in client.tasks(project) if t["data"]["doc_id"] == "d0003"]
    assert client._predictions_by_task(project, [int(task["id"])])[int(task["id"])]

    again = _push(resync)
    assert again["resync"] == {"checked": 5, "missing": 0} and again["created"] == 0
    assert len(client.tasks(project)) == 5
