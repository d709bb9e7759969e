"""A real SeaweedFS for the integration tests: one fresh instance per session on free ports,
with its three identities (publisher, reader of releases/, operator); each test gets its own
bucket prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from corpus.store import S3Store, s3_client
from services.seaweedfs import SeaweedService

TEST_BUCKET = "corpusflow-test"
# Stores the tests' reader may read the releases of: every prefix of these buckets.
READER_ROOTS = (f"{TEST_BUCKET}/*", "corpusflow-e2e/*")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedService]:
    service = SeaweedService.on_free_ports(
        tmp_path_factory.mktemp("seaweedfs"), release_roots=READER_ROOTS
    )
    service.start(timeout=60)
    try:
        service.ensure_bucket(TEST_BUCKET)
        yield service
    finally:
        service.stop()


def make_s3_store(
    service: SeaweedService, prefix: str, *, readonly: bool = False, operator: bool = False
) -> S3Store:
    """A store on `prefix` as the publisher, the reader (`readonly`) or the `operator`."""
    if operator:
        key, secret = service.operator_access_key, service.operator_secret_key
    elif readonly:
        key, secret = service.readonly_access_key, service.readonly_secret_key
    else:
        key, secret = service.access_key, service.secret_key
    client = s3_client(endpoint_url=service.endpoint_url, access_key=key, secret_key=secret)
    return S3Store(client, TEST_BUCKET, prefix)


@pytest.fixture
def s3_store(seaweed: SeaweedService) -> S3Store:
    """An S3Store on a prefix no other test uses."""
    return make_s3_store(seaweed, f"t-{uuid.uuid4().hex[:12]}")
