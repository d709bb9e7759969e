"""pytest plugin: a real Label Studio, started fresh on a free port once per test session, and a
review team (three annotators, one adjudicator) created in it through the API."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from review.client import LabelStudioClient
from services.labelstudio import LabelStudioService

# A developer may point the tests at a Label Studio already running (started with
# SSRF_PROTECTION_ENABLED=false) and give its admin token (and, for the browser tests, the
# admin's password in CORPUSFLOW_TEST_LS_PASSWORD) to skip the cold start.
_REUSE = "CORPUSFLOW_TEST_LS_URL"
_REUSE_TOKEN = "CORPUSFLOW_TEST_LS_TOKEN"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class _Running:
    """What the tests need of a Label Studio they did not start."""

    url: str
    token: str
    username: str = LabelStudioService.username  # the admin, for tests that log in (browser)
    password: str = ""


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioService]:
    """A running Label Studio (its `url` and admin `token`), stopped after the session."""
    if os.environ.get(_REUSE):
        yield _Running(  # type: ignore[misc]
            os.environ[_REUSE].rstrip("/"),
            os.environ[_REUSE_TOKEN],
            password=os.environ.get("CORPUSFLOW_TEST_LS_PASSWORD", ""),
        )
        return
    service = LabelStudioService(data_dir=tmp_path_factory.mktemp("labelstudio"), port=free_port())
    # The webhook tests register a receiver on 127.0.0.1, which Label Studio's SSRF guard
    # refuses by default; the service passes our environment on to the server.
    saved = os.environ.get("SSRF_PROTECTION_ENABLED")
    os.environ["SSRF_PROTECTION_ENABLED"] = "false"
    try:
        service.start(timeout=480)  # a cold start takes 1-3 minutes on a busy machine
    finally:
        if saved is None:
            os.environ.pop("SSRF_PROTECTION_ENABLED", None)
        else:
            os.environ["SSRF_PROTECTION_ENABLED"] = saved
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def ls_client(label_studio: LabelStudioService) -> LabelStudioClient:
    """An admin client of the session's Label Studio."""
    return LabelStudioClient(label_studio.url, label_studio.token)


@dataclass(frozen=True)
class Person:
    email: str
    password: str


@dataclass(frozen=True)
class ReviewTeam:
    annotators: tuple[Person, Person, Person]
    adjudicator: Person


def make_person(client: LabelStudioClient, name: str) -> Person:
    person = Person(f"{name}-{uuid.uuid4().hex[:6]}@example.org", f"pw-{uuid.uuid4().hex}")
    client.create_user(person.email, person.password, first_name=name)
    return person


@pytest.fixture(scope="session")
def review_team(ls_client: LabelStudioClient) -> ReviewTeam:
    """Three annotators and one adjudicator, signed up through the API once per session."""
    a, b, c = (make_person(ls_client, name) for name in ("ann1", "ann2", "ann3"))
    return ReviewTeam(annotators=(a, b, c), adjudicator=make_person(ls_client, "judge"))
