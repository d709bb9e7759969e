"""Download a published release and check every object against its manifest; read its records
and spaCy Docs shard by shard. Needs read and list rights only. Reads both layouts: shards
under `releases/objects/` (layout 2) and whole files under `releases/<version>/` (layout 1)."""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from corpus.release import LATEST_KEY, SPLITS, file_key, read_latest, release_key, sha256_hex
from corpus.store import NotFound, Store, StoreError
from schemas.release import ReleaseFile, ReleaseManifest

if TYPE_CHECKING:
    from spacy.tokens import Doc

Layer = Literal["gold", "silver", "all"]
Split = Literal["train", "dev", "test"]
SPLIT_NAMES = tuple(name for name, _ in SPLITS)
FETCH_WORKERS = 8  # objects fetched at once; memory holds about twice as many


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


def _store_manifest(store: Store, version: str) -> tuple[ReleaseManifest, bytes]:
    """The manifest of `version` ("latest" allowed), checked against latest.json if named so."""
    name, manifest_sha256 = resolve_version(store, version)
    data = store.get_bytes(release_key(name, "manifest.json"))
    if manifest_sha256 is not None and sha256_hex(data) != manifest_sha256:
        raise ChecksumMismatch(
            release_key(name, "manifest.json"), manifest_sha256, sha256_hex(data)
        )
    return ReleaseManifest.model_validate_json(data), data


def _checked(manifest: ReleaseManifest, entry: ReleaseFile, data: bytes) -> bytes:
    actual = sha256_hex(data)
    if len(data) != entry.size or actual != entry.sha256:
        where = file_key(manifest.version, entry)
        raise ChecksumMismatch(
            entry.path if where.endswith(entry.path) else f"{entry.path} ({where})",
            f"sha256 {entry.sha256} ({entry.size} bytes)",
            f"sha256 {actual} ({len(data)} bytes)",
        )
    return data


def _fetch(
    store: Store, manifest: ReleaseManifest, entries: Iterable[ReleaseFile]
) -> Iterator[tuple[ReleaseFile, bytes]]:
    """Each entry's bytes, checked, in order; a few fetched ahead on threads (S3 round trips
    overlap) and never more than 2 * FETCH_WORKERS held at once."""
    with ThreadPoolExecutor(max_workers=FETCH_WORKERS, thread_name_prefix="pull") as pool:
        pending: deque[tuple[ReleaseFile, Future[bytes]]] = deque()
        try:
            for entry in entries:
                key = file_key(manifest.version, entry)
                pending.append((entry, pool.submit(store.get_bytes, key)))
                if len(pending) >= 2 * FETCH_WORKERS:
                    done, future = pending.popleft()
                    yield done, _checked(manifest, done, future.result())
            while pending:
                done, future = pending.popleft()
                yield done, _checked(manifest, done, future.result())
        finally:
            for _, future in pending:
                future.cancel()


def _by_path(manifest: ReleaseManifest) -> dict[str, list[ReleaseFile]]:
    """Manifest entries grouped by where they go; the parts of one path in manifest order."""
    out: dict[str, list[ReleaseFile]] = {}
    for entry in manifest.files:
        if ".." in Path(entry.path).parts or Path(entry.path).is_absolute():
            raise StoreError(f"manifest of {manifest.version} lists an unsafe path {entry.path!r}")
        out.setdefault(entry.path, []).append(entry)
    return out


def _is_intact(path: Path, parts: list[ReleaseFile]) -> bool:
    """The file holds exactly these parts, one after the other."""
    if not path.is_file() or path.stat().st_size != sum(p.size for p in parts):
        return False
    with open(path, "rb") as f:
        for part in parts:
            h, left = hashlib.sha256(), part.size
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    return False
                h.update(chunk)
                left -= len(chunk)
            if h.hexdigest() != part.sha256:
                return False
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def pull(store: Store, version: str = "latest", *, dest: Path) -> Path:
    """Download `version` into `dest/<version>/` and return that folder.

    Every object is checked against the manifest as it arrives. Files already there with the
    right size and sha256 are kept (an interrupted pull resumes); others are written to
    `<name>.part` and renamed once complete (the JSONL and CoNLL shards are concatenated into
    `corpus.jsonl` and `corpus.conll`; Parquet and spaCy shards stay one file each). An object
    that does not match its manifest raises ChecksumMismatch naming it, and nothing wrong is
    left under its name. `manifest.json` is written last, so its presence means the folder is
    complete. Memory holds a few objects at a time, whatever the release's size."""
    manifest, manifest_bytes = _store_manifest(store, version)
    target = Path(dest) / manifest.version
    target.mkdir(parents=True, exist_ok=True)
    for path, parts in _by_path(manifest).items():
        local = target / path
        stale = local.with_name(local.name + ".part")
        if _is_intact(local, parts):
            stale.unlink(missing_ok=True)
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(stale, "wb") as f:
                for _entry, data in _fetch(store, manifest, parts):
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            stale.unlink(missing_ok=True)
            raise
        os.replace(stale, local)
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


def _local_manifest(root: Path, version: str) -> tuple[Path, ReleaseManifest]:
    folder = _local_release(root, version)
    return folder, ReleaseManifest.model_validate_json((folder / "manifest.json").read_bytes())


def _parts(manifest: ReleaseManifest, path: str) -> list[ReleaseFile]:
    parts = [f for f in manifest.files if f.path == path]
    if not parts:
        raise NotFound(path, f"the manifest of {manifest.version}")
    return parts


def read_release_file(store_or_dir: Store | Path | str, version: str, path: str) -> bytes:
    """One file of a release, whole (its parts joined), checked against its manifest (itself
    checked against latest.json when `version` is "latest" and read from a store). For the
    corpus formats of a large release prefer `load`, `load_docs` or `pull`, which stream."""
    if isinstance(store_or_dir, Store):
        manifest, _ = _store_manifest(store_or_dir, version)
        parts = _parts(manifest, path)
        return b"".join(data for _, data in _fetch(store_or_dir, manifest, parts))
    folder, manifest = _local_manifest(Path(store_or_dir), version)
    data = (folder / path).read_bytes()
    if _is_intact(folder / path, _parts(manifest, path)):
        return data
    raise ChecksumMismatch(
        str(folder / path),
        f"{sum(p.size for p in _parts(manifest, path))} bytes in the parts the manifest lists",
        f"{len(data)} bytes that are not those parts",
    )


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
    """The records of a release, from the store (each JSONL shard checked against the
    manifest before its records are yielded) or from a folder `pull` wrote. `layer`: "gold"
    (reviewed or adjudicated), "silver" (machine-only and disputed), or "all"; `split`:
    "train", "dev", "test" or None for every split. `as_spacy=True` yields spaCy Docs instead
    (see `load_docs`). Streams: memory holds a few shards, not the release."""
    if as_spacy:
        return load_docs(store_or_dir, version, layer, split=split, vocab=vocab)
    _check_selection(layer, split)
    return _load_records(store_or_dir, version, layer, split)


def _selected(layer: str, split: str | None, row: dict[str, Any]) -> bool:
    return (layer == "all" or row.get("layer") == layer) and (
        split is None or row.get("split") == split
    )


def _load_records(
    store_or_dir: Store | Path | str, version: str, layer: str, split: str | None
) -> Iterator[dict[str, Any]]:
    if isinstance(store_or_dir, Store):
        manifest, _ = _store_manifest(store_or_dir, version)
        shards = [f for f in manifest.files if f.path == "corpus.jsonl"]  # none if empty
        for _, data in _fetch(store_or_dir, manifest, shards):
            for line in data.decode("utf-8").splitlines():
                if line.strip() and _selected(layer, split, record := json.loads(line)):
                    yield record
        return
    # a pulled folder was checked by pull; stream it rather than hold it in memory
    folder, manifest = _local_manifest(Path(store_or_dir), version)
    if not any(f.path == "corpus.jsonl" for f in manifest.files):
        return  # a release without documents
    with open(folder / "corpus.jsonl", encoding="utf-8") as lines:
        for line in lines:
            if line.strip() and _selected(layer, split, record := json.loads(line)):
                yield record


def load_docs(
    store_or_dir: Store | Path | str,
    version: str = "latest",
    layer: Layer = "all",
    *,
    split: Split | None = None,
    vocab: Any = None,
) -> Iterator[Doc]:
    """The release's spaCy Docs (from its DocBin shards, each checked against the manifest
    before any of its Docs is yielded), in corpus.jsonl order: entities in `doc.ents`, stance
    evidence in `doc.spans["stance"]` (label = stance, `kb_id_` = target), and in
    `doc.user_data` the doc_id, review_status, layer, split, source, model_version and every
    stance (those without evidence too). `vocab` defaults to a blank English one; pass
    `nlp.vocab` to use the Docs with your pipeline."""
    _check_selection(layer, split)
    return _load_docs(store_or_dir, version, layer, split, vocab)


def _load_docs(
    store_or_dir: Store | Path | str, version: str, layer: str, split: str | None, vocab: Any
) -> Iterator[Doc]:
    import spacy

    if vocab is None:
        vocab = spacy.blank("en").vocab
    if isinstance(store_or_dir, Store):
        manifest, _ = _store_manifest(store_or_dir, version)
        shards = [f for f in manifest.files if f.path.endswith(".spacy")]
        for _, data in _fetch(store_or_dir, manifest, shards):
            yield from _docs(data, layer, split, vocab)
        return
    folder, manifest = _local_manifest(Path(store_or_dir), version)
    for entry in manifest.files:
        if entry.path.endswith(".spacy"):
            data = _checked(manifest, entry, (folder / entry.path).read_bytes())
            yield from _docs(data, layer, split, vocab)


def _docs(data: bytes, layer: str, split: str | None, vocab: Any) -> Iterator[Doc]:
    from spacy.tokens import DocBin

    for doc in DocBin(store_user_data=True).from_bytes(data).get_docs(vocab):
        if _selected(layer, split, doc.user_data):
            yield doc
