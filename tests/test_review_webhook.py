"""The webhook receiver over real HTTP (a free port, no Prefect server: the trigger is
injected), and Label Studio calling it after registration through the client."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
import requests

from flows.webhook import WebhookReceiver
from review.client import WEBHOOK_SECRET_HEADER, LabelStudioClient
from review.config import label_config
from review.results import to_result
from tests.ls_fixtures import ReviewTeam
from tests.test_labelstudio import E_MERKEL, TEXT, _doc
from tests.webhook_fixtures import SECRET, Calls


def _event(action: str = "ANNOTATION_CREATED", project: int = 1) -> dict[str, Any]:
    return {"action": action, "project": {"id": project}, "annotation": {"id": 1}}


def _wait(condition: threading.Event, limit: float = 30) -> bool:
    return condition.wait(limit)


def test_review_webhook_checks_secret_and_debounces(
    receiver: tuple[WebhookReceiver, Calls, str],
) -> None:
    hook, calls, url = receiver
    assert requests.post(url, json=_event(), timeout=10).status_code == 403
    wrong = {WEBHOOK_SECRET_HEADER: "nope"}
    assert requests.post(url, json=_event(), headers=wrong, timeout=10).status_code == 403
    good = {WEBHOOK_SECRET_HEADER: SECRET}
    bad_body = requests.post(url, data=b"not json", headers=good, timeout=10)
    assert bad_body.status_code == 400
    ignored = requests.post(url, json=_event("PROJECT_UPDATED"), headers=good, timeout=10)
    assert ignored.status_code == 200 and "ignored" in ignored.json()

    answers = [
        requests.post(url, json=_event(action), headers=good, timeout=10)
        for action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
    ]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert [a.json()["scheduled"] for a in answers] == [True, False, False]
    assert _wait(calls.fired)
    assert calls.count == 1 and hook.events == 3  # one burst, one run

    calls.fired.clear()
    later = requests.post(url, json=_event(), headers=good, timeout=10)
    assert later.json()["scheduled"] is True  # a new burst schedules a new run
    assert _wait(calls.fired)
    assert calls.count == 2
    assert requests.get(url, timeout=10).json() == {"events": 4, "runs": 2}


def test_review_webhook_failed_trigger_does_not_stop_the_receiver() -> None:
    def broken() -> None:
        raise RuntimeError("no Prefect server")

    hook = WebhookReceiver(broken, SECRET, debounce=0)
    status, _ = hook.handle({WEBHOOK_SECRET_HEADER: SECRET}, json.dumps(_event()).encode())
    assert status == 202
    hook.flush()
    deadline = time.monotonic() + 10
    while hook.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hook.failures == 1 and hook.runs == 0
    status, answer = hook.handle({WEBHOOK_SECRET_HEADER: SECRET}, json.dumps(_event()).encode())
    assert status == 202 and answer["scheduled"] is True
    hook.close()


def test_review_webhook_receiver_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookReceiver(lambda: None, "")


@pytest.mark.integration
def test_review_webhook_label_studio_calls_registered_receiver(
    ls_client: LabelStudioClient,
    review_team: ReviewTeam,
    receiver: tuple[WebhookReceiver, Calls, str],
) -> None:
    hook, calls, url = receiver
    project = ls_client.ensure_project(f"hook-{uuid.uuid4().hex[:8]}", label_config())
    first = ls_client.register_webhook(project, url, SECRET)
    assert first.created
    again = ls_client.register_webhook(project, url, SECRET)
    assert (again.id, again.created, again.updated) == (first.id, False, False)
    rotated = ls_client.register_webhook(project, url, "other-secret")
    assert (rotated.id, rotated.updated) == (first.id, True)
    ls_client.register_webhook(project, url, SECRET)

    (task_id,) = ls_client.push(project, [_doc("w")]).task_ids.values()
    a = review_team.annotators[0]
    ls_client.submit_annotation(
        task_id, to_result(TEXT, [E_MERKEL]), email=a.email, password=a.password
    )
    assert _wait(calls.fired, 60), "Label Studio did not call the receiver"
    assert calls.count == 1 and hook.events >= 1
