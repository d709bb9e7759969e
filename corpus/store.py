"""The object store every stage reads and writes: a local folder or an S3 bucket prefix, with
conditional writes (create-only, replace-if-unchanged) so publishing races are impossible."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.settings import Settings


_MD5_ATTR = "user.corpusflow.md5"  # "<md5>:<size>:<mtime_ns>" of a file LocalStore wrote


class StoreError(Exception):
    """A store operation failed for a reason the caller should see."""


class NotFound(StoreError, KeyError):
    """The key does not exist (also a KeyError, so `except KeyError` works)."""

    def __init__(self, key: str, where: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.where = where

    def __str__(self) -> str:
        return f"no object {self.key!r}" + (f" in {self.where}" if self.where else "")


class PreconditionFailed(StoreError):
    """A conditional write lost: the key already exists, or its etag changed."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key


class AccessDenied(StoreError):
    """The credentials in use may not do this (a read-only identity writing, for instance)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str  # md5 hex of the content for single-part objects, without quotes
    size: int


def encode_json(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, UTF-8, no ASCII escaping, trailing newline."""
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def check_key(key: str) -> str:
    """Keys are '/'-separated, relative, without empty, '.' or '..' segments."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid store key {key!r}")
    return key


class Store(ABC):
    """Keys are '/'-separated strings relative to the store's root (folder or bucket prefix)."""

    url: str

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's content; raises NotFound."""

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """The content and the etag of exactly that content (for a later put_if_match)."""
        data = self.get_bytes(key)
        return data, md5_hex(data)

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        """Write (or replace) the object; returns its etag."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> str:
        """Create the object; raises PreconditionFailed if the key exists."""

    @abstractmethod
    def put_if_match(
        self, key: str, data: bytes, etag: str, content_type: str | None = None
    ) -> str:
        """Replace the object only if its etag is still `etag`; raises PreconditionFailed
        otherwise (including when it no longer exists)."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Etag and size, or None when the key does not exist."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with `prefix` (a string prefix, not a folder), in sorted order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing key is not an error."""

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> str:
        """Write (or replace) the object from a local file, streamed, not read into memory."""
        return self.put_bytes(key, path.read_bytes(), content_type)

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Like `list`, with each object's etag and size (S3 lists them in the same pages)."""
        for key in self.list(prefix):
            info = self.head(key)
            if info is not None:
                yield info

    # ------------------------------------------------------------ helpers

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key).decode("utf-8"))

    def put_json(
        self,
        key: str,
        obj: Any,
        *,
        if_absent: bool = False,
        if_match: str | None = None,
    ) -> str:
        data = encode_json(obj)
        ct = "application/json"
        if if_absent:
            return self.put_if_absent(key, data, content_type=ct)
        if if_match is not None:
            return self.put_if_match(key, data, if_match, content_type=ct)
        return self.put_bytes(key, data, content_type=ct)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


# ---------------------------------------------------------------- local folder


class LocalStore(Store):
    """A folder. Writes are atomic (temporary file + rename); create-only writes use a hard
    link, which fails if the name exists; replace-if-unchanged holds a per-key file lock."""

    _TMP = ".tmp-"
    _LOCKS = ".locks"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write_tmp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{self._TMP}{uuid.uuid4().hex}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._record_md5(tmp, md5_hex(data))  # a rename or a hard link keeps it
        return tmp

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(key, self.url) from None

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        path = self._path(key)
        tmp = self._write_tmp(path, data)
        os.replace(tmp, path)
        return md5_hex(data)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> str:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f"{self._TMP}{uuid.uuid4().hex}"
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as src, open(tmp, "wb") as f:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        self._record_md5(tmp, digest.hexdigest())
        os.replace(tmp, target)
        return digest.hexdigest()

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> str:
        path = self._path(key)
        tmp = self._write_tmp(path, data)
        try:
            os.link(tmp, path)  # atomic create-only: fails if the name exists
        except FileExistsError:
            raise PreconditionFailed(key, "already exists") from None
        finally:
            tmp.unlink()
        return md5_hex(data)

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        locks = self.root / self._LOCKS
        locks.mkdir(exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        with open(locks / name, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def put_if_match(
        self, key: str, data: bytes, etag: str, content_type: str | None = None
    ) -> str:
        path = self._path(key)
        with self._lock(key):
            try:
                current = md5_hex(path.read_bytes())
            except FileNotFoundError:
                raise PreconditionFailed(key, "does not exist") from None
            if current != etag.strip('"'):
                raise PreconditionFailed(key, f"etag is {current}, expected {etag}")
            tmp = self._write_tmp(path, data)
            os.replace(tmp, path)
        return md5_hex(data)

    def head(self, key: str) -> ObjectInfo | None:
        """From the file's status and the md5 its write recorded beside it (an extended
        attribute, trusted only while size and mtime are those it was recorded with); a file
        written otherwise is read once to compute it."""
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        etag = self._recorded_md5(path, st)
        if etag is None:
            try:
                etag = self._record_md5(path, md5_hex(path.read_bytes()))
            except FileNotFoundError:
                return None
        return ObjectInfo(key=key, etag=etag, size=st.st_size)

    @staticmethod
    def _recorded_md5(path: Path, st: os.stat_result) -> str | None:
        try:
            raw = os.getxattr(path, _MD5_ATTR).decode("ascii")
        except (OSError, UnicodeDecodeError):
            return None
        md5, _, stamp = raw.partition(":")
        return md5 if stamp == f"{st.st_size}:{st.st_mtime_ns}" else None

    @staticmethod
    def _record_md5(path: Path, md5: str) -> str:
        with contextlib.suppress(OSError):  # a file system without user xattrs: no cache
            st = path.stat()
            os.setxattr(path, _MD5_ATTR, f"{md5}:{st.st_size}:{st.st_mtime_ns}".encode())
        return md5

    def list(self, prefix: str = "") -> Iterator[str]:
        # walk only below the deepest folder the prefix names
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base if base else self.root
        if not start.is_dir():
            return
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            if rel == ".":
                rel = ""
                dirnames[:] = [d for d in dirnames if d != self._LOCKS]
            for name in filenames:
                if name.startswith(self._TMP):
                    continue
                key = f"{rel}/{name}" if rel else name
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


# ---------------------------------------------------------------- S3


_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def _error_code(e: Exception) -> tuple[str, int]:
    response = getattr(e, "response", {}) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


class S3Store(Store):
    """A bucket prefix on S3 or any S3-compatible service. Create-only writes send
    `If-None-Match: *`, replace-if-unchanged sends `If-Match: <etag>`; a lost condition (412, or
    409 ConditionalRequestConflict when two conditional writes overlap) is PreconditionFailed."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.page_size = 1000  # keys per ListObjectsV2 call
        self.read_attempts = 4  # reads of a body cut short (the request: botocore's retries)
        self.read_backoff = 0.2  # seconds before the second read, doubled each time

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _translate(self, e: Exception, key: str) -> Exception:
        code, status = _error_code(e)
        if code in _NOT_FOUND or status == 404:
            return NotFound(key, self.url)
        if code in _PRECONDITION or status in (409, 412):
            return PreconditionFailed(key, f"condition failed ({code or status})")
        if code in _DENIED or status == 403:
            return AccessDenied(f"{self.url}: {key}: {code or status}")
        return e

    def _put(self, key: str, data: bytes, content_type: str | None, **cond: str) -> str:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data}
        if content_type:
            kwargs["ContentType"] = content_type
        try:
            response = self.client.put_object(**kwargs, **cond)
        except ClientError as e:
            raise self._translate(e, key) from e
        return str(response["ETag"]).strip('"')

    def get_bytes(self, key: str) -> bytes:
        return self.get_with_etag(key)[0]

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> str:
        from botocore.exceptions import ClientError

        extra = {"ContentType": content_type} if content_type else {}
        try:
            with open(path, "rb") as f:  # botocore streams a seekable body
                response = self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=f, **extra
                )
        except ClientError as e:
            raise self._translate(e, key) from e
        return str(response["ETag"]).strip('"')

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        # the server's ETag, not an md5 of our own: with SSE-KMS or multipart they differ
        from botocore.exceptions import (
            ClientError,
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        # botocore retries the request itself (connection errors, 5xx, throttling: the client's
        # standard retry mode) but not the reading of the body after the answer began: a body
        # cut short or stalled is read again here, a few times. A 4xx is never retried.
        for attempt in range(1, self.read_attempts + 1):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                body = response["Body"]
                data = bytes(body.read())
                length = response.get("ContentLength")
                if length is not None and len(data) != int(length):  # cut without an error
                    raise IncompleteReadError(actual_bytes=len(data), expected_bytes=length)
                return data, str(response["ETag"]).strip('"')
            except ClientError as e:
                raise self._translate(e, key) from e
            except (ResponseStreamingError, IncompleteReadError, ReadTimeoutError):
                if attempt == self.read_attempts:
                    raise
                time.sleep(self.read_backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # the loop returns or raises

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        return self._put(key, data, content_type)

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> str:
        return self._put(key, data, content_type, IfNoneMatch="*")

    def put_if_match(
        self, key: str, data: bytes, etag: str, content_type: str | None = None
    ) -> str:
        return self._put(key, data, content_type, IfMatch=f'"{etag.strip(chr(34))}"')

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            err = self._translate(e, key)
            if isinstance(err, NotFound):
                return None
            raise err from e
        return ObjectInfo(
            key=key, etag=str(response["ETag"]).strip('"'), size=int(response["ContentLength"])
        )

    def list(self, prefix: str = "") -> Iterator[str]:
        for info in self.list_info(prefix):  # a listing page carries etag and size anyway
            yield info.key

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        from botocore.exceptions import ClientError

        full = (f"{self.prefix}/" if self.prefix else "") + prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self.page_size}
            ):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=str(obj["Key"])[strip:],
                        etag=str(obj["ETag"]).strip('"'),
                        size=int(obj["Size"]),
                    )
        except ClientError as e:
            raise self._translate(e, prefix) from e

    def delete(self, key: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            err = self._translate(e, key)
            if not isinstance(err, NotFound):
                raise err from e


# ---------------------------------------------------------------- opening by URL


def s3_client(
    *,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = "us-east-1",
    max_attempts: int | None = None,
) -> Any:
    """A boto3 S3 client; with no keys, boto3's standard credential chain applies (environment,
    shared files, instance roles). botocore tries each request `max_attempts` times in all
    (default: AWS_MAX_ATTEMPTS, as for any boto3 client, else 6: the first and five retries).
    Path-style addressing when an endpoint is given, since S3-compatible services rarely have
    wildcard DNS. One client per process and set of
    arguments: boto3 clients are thread-safe, and making one costs tens of milliseconds."""
    if max_attempts is None:
        max_attempts = _env_max_attempts()
    ident = (os.getpid(), endpoint_url or None, access_key, secret_key, region, max_attempts)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(ident)
        if client is None:
            client = _CLIENTS[ident] = _new_s3_client(
                endpoint_url, access_key, secret_key, region, max_attempts
            )
        return client


def _env_max_attempts() -> int:
    raw = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    if not raw:
        return 6
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"AWS_MAX_ATTEMPTS={raw!r}: expected a whole number of at least 1")
    return int(raw)


_CLIENTS: dict[tuple[object, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _new_s3_client(
    endpoint_url: str | None,
    access_key: str | None,
    secret_key: str | None,
    region: str,
    max_attempts: int,
) -> Any:
    import boto3
    from botocore.config import Config

    s3_config = {"addressing_style": "path"} if endpoint_url else {}
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        region_name=region,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            s3=s3_config,  # type: ignore[arg-type]
        ),
    )


def open_store_from_settings(settings: Settings) -> Store:
    """The store `CORPUSFLOW_STORE` names, with the standard AWS variables for S3."""
    return open_store(
        settings.store,
        endpoint_url=settings.aws_endpoint_url,
        access_key=settings.aws_access_key_id,
        secret_key=settings.aws_secret_access_key,
        region=settings.aws_region,
    )


def open_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = "us-east-1",
) -> Store:
    """`file://relative/path`, `file:///absolute/path`, a plain path, or `s3://bucket/prefix`."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in store URL {url!r}")
        client = s3_client(
            endpoint_url=endpoint_url,
            access_key=access_key,
            secret_key=secret_key,
            region=region,
        )
        return S3Store(client, bucket, prefix)
    if url.startswith("file://"):
        return LocalStore(Path(url[len("file://") :]))
    if "://" in url:
        raise ValueError(f"unsupported store URL {url!r} (file:// or s3://)")
    return LocalStore(Path(url))
