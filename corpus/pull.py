"""Download a published release and check every file against its manifest; read its records.
Needs read and list rights only."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from corpus.release import LATEST_KEY, SPLITS, read_latest, read_manifest, release_key, sha256_hex
from corpus.store import NotFound, Store, StoreError
from schemas.records import Manifest

if TYPE_CHECKING:
    from spacy.tokens import Doc

Layer = Literal["gold", "silver", "all"]
Split = Literal["train", "dev", "test"]
SPLIT_NAMES = tuple(name for name, _ in SPLITS)


class ChecksumMismatch(StoreError):
    """A downloaded file's sha256 or size is not what the manifest says."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(f"checksum mismatch for {path}: manifest says {expected}, got {actual}")
        self.path = path


def resolve_version(store: Store, version: str = "latest") -> tuple[str, str | None]:
    """The concrete version name, and the manifest sha256 recorded by latest.json (if used)."""
    if version != "latest":
        return version, None
    pointer, _ = read_latest(store)
    if pointer is None:
        raise NotFound(LATEST_KEY, f"{store.url} (nothing published yet)")
    return str(pointer["version"]), pointer["manifest_sha256"]


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


def _verified(path: str, data: bytes, manifest: Manifest) -> bytes:
    entry = next((f for f in manifest.files if f.path == path), None)
    if entry is None:
        raise NotFound(path, f"the manifest of {manifest.version}")
    actual = sha256_hex(data)
    if len(data) != entry.size or actual != entry.sha256:
        raise ChecksumMismatch(
            release_key(manifest.version, path),
            f"sha256 {entry.sha256} ({entry.size} bytes)",
            f"sha256 {actual} ({len(data)} bytes)",
        )
    return data


def read_release_file(store_or_dir: Store | Path | str, version: str, path: str) -> bytes:
    """One file of a release, checked against its manifest (itself checked against
    latest.json when `version` is "latest" and read from a store)."""
    if isinstance(store_or_dir, Store):
        name, manifest_sha256 = resolve_version(store_or_dir, version)
        manifest = read_manifest(store_or_dir, name, manifest_sha256)
        return _verified(path, store_or_dir.get_bytes(release_key(name, path)), manifest)
    folder = _local_release(Path(store_or_dir), version)
    manifest = Manifest.model_validate_json((folder / "manifest.json").read_bytes())
    return _verified(path, (folder / path).read_bytes(), manifest)


def _check_selection(layer: str, split: str | None) -> None:
    if layer not in ("gold", "silver", "all"):
        raise ValueError(f"layer must be gold, silver or all, not {layer!r}")
    if split not in (None, *SPLIT_NAMES):
        raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)} or None, not {split!r}")


@overload
def load(
    store_or_dir: Store | Path | str,
    version: str = ...,
    layer: Layer = ...,
    *,
    split: Split | None = ...,
    as_spacy: Literal[False] = ...,
    vocab: Any = ...,
) -> Iterator[dict[str, Any]]: ...


@overload
def load(
    store_or_dir: Store | Path | str,
    version: str = ...,
    layer: Layer = ...,
    *,
    split: Split | None = ...,
    as_spacy: Literal[True],
    vocab: Any = ...,
) -> Iterator[Doc]: ...


def load(
    store_or_dir: Store | Path | str,
    version: str = "latest",
    layer: Layer = "all",
    *,
    split: Split | None = None,
    as_spacy: bool = False,
    vocab: Any = None,
) -> Iterator[dict[str, Any]] | Iterator[Doc]:
    """The records of a release, from the store (checked against the manifest) or from a
    folder `pull` wrote. `layer`: "gold" (reviewed or adjudicated), "silver" (machine-only and
    disputed), or "all"; `split`: "train", "dev", "test" or None for every split.
    `as_spacy=True` yields spaCy Docs instead (see `load_docs`)."""
    if as_spacy:
        return load_docs(store_or_dir, version, layer, split=split, vocab=vocab)
    _check_selection(layer, split)
    return _load_records(store_or_dir, version, layer, split)


def _load_records(
    store_or_dir: Store | Path | str, version: str, layer: str, split: str | None
) -> Iterator[dict[str, Any]]:
    if isinstance(store_or_dir, Store):
        data = read_release_file(store_or_dir, version, "corpus.jsonl")
        lines: Iterator[str] = iter(data.decode("utf-8").splitlines())
    else:
        # a pulled folder was checked by pull; stream it rather than hold it in memory
        folder = _local_release(Path(store_or_dir), version)
        lines = open(folder / "corpus.jsonl", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            if (layer == "all" or record.get("layer") == layer) and (
                split is None or record.get("split") == split
            ):
                yield record
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()


def load_docs(
    store_or_dir: Store | Path | str,
    version: str = "latest",
    layer: Layer = "all",
    *,
    split: Split | None = None,
    vocab: Any = None,
) -> Iterator[Doc]:
    """The release's spaCy Docs (from `corpus.spacy`, checked against the manifest), in
    corpus.jsonl order: entities in `doc.ents`, stance evidence in `doc.spans["stance"]` (label
    = stance, `kb_id_` = target), and in `doc.user_data` the doc_id, review_status, layer,
    split, source, model_version and every stance (those without evidence too). `vocab`
    defaults to a blank English one; pass `nlp.vocab` to use the Docs with your pipeline."""
    _check_selection(layer, split)
    data = read_release_file(store_or_dir, version, "corpus.spacy")
    return _docs(data, layer, split, vocab)


def _docs(data: bytes, layer: str, split: str | None, vocab: Any) -> Iterator[Doc]:
    import spacy
    from spacy.tokens import DocBin

    if vocab is None:
        vocab = spacy.blank("en").vocab
    for doc in DocBin(store_user_data=True).from_bytes(data).get_docs(vocab):
        if (layer == "all" or doc.user_data.get("layer") == layer) and (
            split is None or doc.user_data.get("split") == split
        ):
            yield doc
