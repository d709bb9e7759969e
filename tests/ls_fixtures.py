"""pytest plugin: a real Label Studio, started fresh on a free port once per test session."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from annotators.labelstudio import LabelStudioClient
from services.labelstudio import LabelStudioService


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioService]:
    """A running Label Studio (its `url` and admin `token`), stopped after the session."""
    service = LabelStudioService(data_dir=tmp_path_factory.mktemp("labelstudio"), port=free_port())
    service.start(timeout=480)  # a cold start takes 1-3 minutes on a busy machine
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def ls_client(label_studio: LabelStudioService) -> LabelStudioClient:
    """An admin client of the session's Label Studio."""
    return LabelStudioClient(label_studio.url, label_studio.token)
