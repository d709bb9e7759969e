"""A real SeaweedFS for the integration tests: one fresh instance per session on free ports,
with an admin and a read-only identity; each test gets its own bucket prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from corpus.store import S3Store, s3_client
from services.seaweedfs import SeaweedService

TEST_BUCKET = "corpusflow-test"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedService]:
    service = SeaweedService.on_free_ports(tmp_path_factory.mktemp("seaweedfs"))
    service.start(timeout=60)
    try:
        service.ensure_bucket(TEST_BUCKET)
        yield service
    finally:
        service.stop()


def make_s3_store(service: SeaweedService, prefix: str, *, readonly: bool = False) -> S3Store:
    key, secret = (
        (service.readonly_access_key, service.readonly_secret_key)
        if readonly
        else (service.access_key, service.secret_key)
    )
    client = s3_client(endpoint_url=service.endpoint_url, access_key=key, secret_key=secret)
    return S3Store(client, TEST_BUCKET, prefix)


@pytest.fixture
def s3_store(seaweed: SeaweedService) -> S3Store:
    """An S3Store on a prefix no other test uses."""
    return make_s3_store(seaweed, f"t-{uuid.uuid4().hex[:12]}")
