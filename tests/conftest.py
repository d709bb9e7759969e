"""Shared fixtures. The service fixtures (real Label Studio, real SeaweedFS) live in their own
plugin modules and start fresh instances on free ports, once per test session."""

from __future__ import annotations

import os
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


# What `corpusflow run` itself exports for its own process (--dask-address, --wait-lease): in a
# test that calls the CLI in-process they must not outlive the test (a worker started later
# would inherit a Dask scheduler that is gone).
_RUN_VARS = ("CORPUSFLOW_DASK_ADDRESS", "CORPUSFLOW_WORKERS", "CORPUSFLOW_LEASE_WAIT")


@pytest.fixture(autouse=True)
def _no_ambient_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A developer's shell or .env must not point tests at their own services."""
    for name in (*_SERVICE_VARS, *_RUN_VARS):
        monkeypatch.delenv(name, raising=False)
    yield
    for name in _RUN_VARS:
        os.environ.pop(name, None)  # then monkeypatch puts back what the shell had


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    # server_startup_timeout=None: use PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (flows/)
    with prefect_test_harness(server_startup_timeout=None):
        yield
