"""Shared fixtures. The service fixtures (real Label Studio, real SeaweedFS) live in their own
plugin modules and start fresh instances on free ports, once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import flows  # noqa: F401  (Prefect defaults before Prefect is imported)

pytest_plugins = ["tests.ls_fixtures", "tests.s3_fixtures", "tests.webhook_fixtures"]

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

    # server_startup_timeout=None: use PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (flows/)
    with prefect_test_harness(server_startup_timeout=None):
        yield
