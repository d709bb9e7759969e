"""Store conformance: the same behaviour from a local folder and from a real S3 (SeaweedFS)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from corpus.store import (
    AccessDenied,
    LocalStore,
    NotFound,
    PreconditionFailed,
    S3Store,
    Store,
    md5_hex,
    open_store,
)
from tests.s3_fixtures import make_s3_store


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return request.getfixturevalue("s3_store")


def test_store_put_get_roundtrip(store: Store) -> None:
    etag = store.put_bytes("a/b/c.txt", b"hello", content_type="text/plain")
    assert etag == md5_hex(b"hello")
    assert store.get_bytes("a/b/c.txt") == b"hello"
    info = store.head("a/b/c.txt")
    assert info is not None and info.etag == etag and info.size == 5
    store.put_bytes("a/b/c.txt", b"again")
    assert store.get_bytes("a/b/c.txt") == b"again"


def test_store_missing_key_raises_not_found_naming_key(store: Store) -> None:
    with pytest.raises(NotFound, match="nope/x.json"):
        store.get_bytes("nope/x.json")
    with pytest.raises(KeyError):
        store.get_bytes("nope/x.json")
    assert store.head("nope/x.json") is None
    store.delete("nope/x.json")  # deleting a missing key is fine


def test_store_json_helpers_sorted_utf8(store: Store) -> None:
    store.put_json("j.json", {"b": 1, "a": "é"})
    raw = store.get_bytes("j.json")
    assert raw.index(b'"a"') < raw.index(b'"b"') and "é".encode() in raw
    assert store.get_json("j.json") == {"a": "é", "b": 1}


def test_store_list_by_prefix_sorted(store: Store) -> None:
    for key in ["r/v2/x", "r/v1/b", "r/v1/a", "rr/z", "other"]:
        store.put_bytes(key, b"1")
    assert list(store.list("r/")) == ["r/v1/a", "r/v1/b", "r/v2/x"]
    assert list(store.list("r/v1")) == ["r/v1/a", "r/v1/b"]
    assert list(store.list("r")) == ["r/v1/a", "r/v1/b", "r/v2/x", "rr/z"]
    assert list(store.list("missing/")) == []
    store.delete("r/v1/a")
    assert list(store.list("r/v1/")) == ["r/v1/b"]


def test_store_put_if_absent_refuses_existing(store: Store) -> None:
    store.put_if_absent("claim", b"first")
    with pytest.raises(PreconditionFailed):
        store.put_if_absent("claim", b"second")
    assert store.get_bytes("claim") == b"first"


def test_store_put_if_match_needs_current_etag(store: Store) -> None:
    e1 = store.put_bytes("latest", b"v1")
    e2 = store.put_if_match("latest", b"v2", e1)
    with pytest.raises(PreconditionFailed):
        store.put_if_match("latest", b"v3", e1)  # stale etag
    assert store.get_bytes("latest") == b"v2"
    store.put_if_match("latest", b"v3", e2)
    with pytest.raises(PreconditionFailed):
        store.put_if_match("never-written", b"x", e1)


def test_store_conditional_writes_one_winner_among_threads(store: Store) -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        try:
            store.put_if_absent("race/key", f"w{i}".encode())
            results.append("won")
        except PreconditionFailed:
            results.append("lost")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost"] * (n - 1) + ["won"]

    base = store.put_bytes("race/ptr", b"base")
    results.clear()
    barrier = threading.Barrier(n)

    def swap(i: int) -> None:
        barrier.wait()
        try:
            store.put_if_match("race/ptr", f"w{i}".encode(), base)
            results.append("won")
        except PreconditionFailed:
            results.append("lost")

    threads = [threading.Thread(target=swap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost"] * (n - 1) + ["won"]


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a"])
def test_store_rejects_bad_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalStore(tmp_path).put_bytes(key, b"x")


def test_store_local_list_skips_temporaries_and_locks(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    e = store.put_bytes("k", b"1")
    store.put_if_match("k", b"2", e)
    (tmp_path / ".tmp-leftover").write_bytes(b"partial")
    assert list(store.list("")) == ["k"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [("file://rel/store", "rel/store"), ("plain/dir", "plain/dir")],
)
def test_store_open_store_file_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(url)
    assert isinstance(store, LocalStore) and store.root == tmp_path / expected
    absolute = open_store((tmp_path / "abs").as_uri())
    assert isinstance(absolute, LocalStore) and absolute.root == tmp_path / "abs"


def test_store_open_store_s3_url_parses_bucket_and_prefix() -> None:
    store = open_store(
        "s3://bucket-x/some/prefix/",
        endpoint_url="http://127.0.0.1:1",
        access_key="a",
        secret_key="b",
    )
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.url) == ("bucket-x", "some/prefix", store.url)


@pytest.mark.integration
def test_store_s3_open_store_talks_to_seaweedfs(seaweed) -> None:  # type: ignore[no-untyped-def]
    store = open_store(
        "s3://corpusflow-test/open-store",
        endpoint_url=seaweed.endpoint_url,
        access_key=seaweed.access_key,
        secret_key=seaweed.secret_key,
    )
    store.put_bytes("x", b"1")
    assert list(store.list("")) == ["x"]


@pytest.mark.integration
def test_store_s3_readonly_identity_reads_but_cannot_write(seaweed) -> None:  # type: ignore[no-untyped-def]
    admin = make_s3_store(seaweed, "ro-check")
    admin.put_bytes("releases/k", b"v")  # the reader sees releases/ only
    ro = make_s3_store(seaweed, "ro-check", readonly=True)
    assert ro.get_bytes("releases/k") == b"v"
    assert list(ro.list("releases/")) == ["releases/k"]
    with pytest.raises(AccessDenied):
        ro.put_bytes("releases/k2", b"v")
    with pytest.raises(AccessDenied):
        ro.put_if_absent("releases/k3", b"v")


@pytest.mark.integration
def test_store_s3_list_follows_continuation_pages(s3_store: S3Store) -> None:
    calls: list[str] = []
    s3_store.client.meta.events.register(
        "before-call.s3.ListObjectsV2", lambda **kw: calls.append("list")
    )
    s3_store.page_size = 10
    for i in range(25):
        s3_store.put_bytes(f"p/{i:03d}", b"x")
    assert list(s3_store.list("p/")) == [f"p/{i:03d}" for i in range(25)]
    assert len(calls) == 3


def test_store_get_with_etag_matches_put(store: Store) -> None:
    etag = store.put_bytes("e", b"content")
    assert store.get_with_etag("e") == (b"content", etag)
    store.put_if_match("e", b"next", store.get_with_etag("e")[1])


@pytest.mark.integration
def test_store_seaweed_start_is_idempotent_and_instances_coexist(  # type: ignore[no-untyped-def]
    seaweed, tmp_path: Path
) -> None:
    from services.seaweedfs import RESERVED_PORTS, SeaweedService

    assert not set(seaweed.ports.values()) & RESERVED_PORTS
    pid = seaweed.status()["pid"]
    seaweed.start()  # reuses the live instance
    assert seaweed.status()["pid"] == pid

    other = SeaweedService.on_free_ports(tmp_path / "second")
    assert not set(other.ports.values()) & set(seaweed.ports.values())
    other.start()
    try:
        status = other.status()
        assert status["running"] and status["answers"] and status["pid"] != pid
        other.ensure_bucket("second-bucket")
        other.ensure_bucket("second-bucket")  # idempotent
        names = [b["Name"] for b in other.client().list_buckets()["Buckets"]]
        assert "second-bucket" in names
        assert "second-bucket" not in [
            b["Name"] for b in seaweed.client().list_buckets()["Buckets"]
        ]
    finally:
        other.stop()
    assert not other.status()["running"]
    assert seaweed.answers()


@pytest.mark.integration
def test_store_seaweed_rejects_unknown_credentials(seaweed) -> None:  # type: ignore[no-untyped-def]
    store = open_store(
        "s3://corpusflow-test/x",
        endpoint_url=seaweed.endpoint_url,
        access_key=seaweed.access_key,
        secret_key="not-the-secret",
    )
    with pytest.raises(AccessDenied):
        store.put_bytes("k", b"v")
