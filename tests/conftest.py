"""Shared fixtures. The service fixtures (real Label Studio, real SeaweedFS) live in their own
plugin modules and start fresh instances on free ports, once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

pytest_plugins = ["tests.ls_fixtures", "tests.s3_fixtures"]

_SERVICE_VARS = (
    "CORPUSFLOW_STORE",
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


@pytest.fixture(autouse=True)
def _no_ambient_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell or .env must not point tests at their own services."""
    for name in _SERVICE_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield
