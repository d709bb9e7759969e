"""Download a published release and check every file against its manifest; read its records.
Needs read and list rights only."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from corpus.release import LATEST_KEY, read_manifest, release_key, sha256_hex
from corpus.store import NotFound, Store, StoreError
from schemas.records import Manifest

Layer = Literal["gold", "silver", "all"]


class ChecksumMismatch(StoreError):
    """A downloaded file's sha256 or size is not what the manifest says."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(f"checksum mismatch for {path}: manifest says {expected}, got {actual}")
        self.path = path


def resolve_version(store: Store, version: str = "latest") -> tuple[str, str | None]:
    """The concrete version name, and the manifest sha256 recorded by latest.json (if used)."""
    if version != "latest":
        return version, None
    try:
        pointer = store.get_json(LATEST_KEY)
    except NotFound:
        raise NotFound(LATEST_KEY, f"{store.url} (nothing published yet)") from None
    return str(pointer["version"]), pointer.get("manifest_sha256")


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_intact(path: Path, size: int, sha256: str) -> bool:
    return path.is_file() and path.stat().st_size == size and _file_sha256(path) == sha256


def _write_atomic(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def pull(store: Store, version: str = "latest", *, dest: Path) -> Path:
    """Download `version` into `dest/<version>/` and return that folder.

    Files already there with the right size and sha256 are kept (an interrupted pull resumes);
    others are downloaded to `<name>.part`, checked, then renamed. A file that does not match
    its manifest raises ChecksumMismatch naming it, and nothing wrong is left under its name.
    `manifest.json` is written last, so its presence means the folder is complete.
    """
    name, manifest_sha256 = resolve_version(store, version)
    manifest_bytes = store.get_bytes(release_key(name, "manifest.json"))
    if manifest_sha256 is not None and sha256_hex(manifest_bytes) != manifest_sha256:
        raise ChecksumMismatch(
            release_key(name, "manifest.json"), manifest_sha256, sha256_hex(manifest_bytes)
        )
    manifest = Manifest.model_validate_json(manifest_bytes)
    target = Path(dest) / name
    target.mkdir(parents=True, exist_ok=True)
    for f in manifest.files:
        local = target / f.path
        if ".." in Path(f.path).parts or Path(f.path).is_absolute():
            raise StoreError(f"manifest of {name} lists an unsafe path {f.path!r}")
        if _is_intact(local, f.size, f.sha256):
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        data = store.get_bytes(release_key(name, f.path))
        actual = sha256_hex(data)
        if len(data) != f.size or actual != f.sha256:
            local.unlink(missing_ok=True)
            raise ChecksumMismatch(
                release_key(name, f.path),
                f"sha256 {f.sha256} ({f.size} bytes)",
                f"sha256 {actual} ({len(data)} bytes)",
            )
        _write_atomic(local, data)
    _write_atomic(target / "manifest.json", manifest_bytes)
    return target


def _local_release(root: Path, version: str) -> Path:
    """A pulled release folder: `root` itself, or `root/<version>` (latest = highest)."""
    if (root / "manifest.json").exists() and version in ("latest", root.name):
        return root
    if version != "latest":
        return root / version
    pulled = sorted(p.parent for p in root.glob("v*/manifest.json"))
    if not pulled:
        raise NotFound("manifest.json", str(root))
    return pulled[-1]


def load(
    store_or_dir: Store | Path | str, version: str = "latest", layer: Layer = "all"
) -> Iterator[dict[str, Any]]:
    """The records of a release, from the store (checked against the manifest) or from a
    folder `pull` wrote. `layer`: "gold" (reviewed or adjudicated), "silver" (machine-only and
    disputed), or "all"."""
    if layer not in ("gold", "silver", "all"):
        raise ValueError(f"layer must be gold, silver or all, not {layer!r}")
    if isinstance(store_or_dir, Store):
        name, manifest_sha256 = resolve_version(store_or_dir, version)
        manifest = read_manifest(store_or_dir, name, manifest_sha256)
        data = store_or_dir.get_bytes(release_key(name, "corpus.jsonl"))
        entry = next(f for f in manifest.files if f.path == "corpus.jsonl")
        if sha256_hex(data) != entry.sha256:
            raise ChecksumMismatch(
                release_key(name, "corpus.jsonl"), entry.sha256, sha256_hex(data)
            )
        lines: Iterator[str] = iter(data.decode("utf-8").splitlines())
    else:
        folder = _local_release(Path(store_or_dir), version)
        lines = open(folder / "corpus.jsonl", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            if layer == "all" or record.get("layer") == layer:
                yield record
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()
