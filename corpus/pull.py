"""Download a published release and check every object against its manifest; read its records
and spaCy Docs shard by shard. Needs read and list rights only. Reads every layout: whole files
under `releases/<version>/` (layout 1), shards under `releases/objects/` (layout 2), and base
shards with update parts and a live index (layout 3), read merge-on-read: a stored row is
yielded only when the live index lists it, so a changed document's old row and a removed
document's row are skipped."""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from corpus.release import (
    CONLL_DOCSTART,
    INDEX_PATH,
    LATEST_KEY,
    SHARD_FORMATS,
    SPLITS,
    LiveIndex,
    conll_blocks,
    file_key,
    read_latest,
    release_key,
    release_parts,
    sha256_hex,
)
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


# the files `pull` writes as the live rows of every part (layout 3), and the format they come from
VIEWS = {"corpus.jsonl": "jsonl", "corpus.conll": "conll"}


def _overlaid(manifest: ReleaseManifest) -> bool:
    return manifest.layout >= 3


def _format_parts(manifest: ReleaseManifest, fmt: str) -> list[tuple[str, ReleaseFile]]:
    """(part name, its object of format `fmt`) in release order."""
    by_key = {(f.path, f.sha256): f for f in manifest.files}
    path_of = SHARD_FORMATS[fmt][1]
    out = []
    for name, formats in release_parts(manifest):
        entry = by_key.get((path_of(name), formats.get(fmt, "")))
        if entry is None:
            raise StoreError(f"manifest of {manifest.version} lists no {fmt} object for {name}")
        out.append((name, entry))
    return out


def _index_entry(manifest: ReleaseManifest) -> ReleaseFile:
    return _parts(manifest, INDEX_PATH)[0]


def _store_index(store: Store, manifest: ReleaseManifest) -> LiveIndex:
    [(_, data)] = list(_fetch(store, manifest, [_index_entry(manifest)]))
    return LiveIndex(data)


def _local_index(folder: Path, manifest: ReleaseManifest) -> LiveIndex:
    entry = _index_entry(manifest)
    return LiveIndex(_checked(manifest, entry, (folder / entry.path).read_bytes()))


def _live_rows(
    store: Store, manifest: ReleaseManifest, index: LiveIndex, fmt: str
) -> Iterator[tuple[bytes, bytes]]:
    """(bytes, the sha256 the index records for them) of every live row of format "jsonl"
    (a line, newline included) or "conll" (a document's block), in release order: each part
    fetched and checked, its dead rows dropped."""
    parts = _format_parts(manifest, fmt)
    fetched = _fetch(store, manifest, [entry for _, entry in parts])
    for (name, _), (_, data) in zip(parts, fetched, strict=True):
        if fmt == "jsonl":
            items = [line + b"\n" for line in data.split(b"\n")[:-1]]
        else:
            items = conll_blocks(data)
        for _doc, position, record_sha, conll_sha, _n in index.rows(name):
            if position >= len(items):
                raise StoreError(f"live index of {manifest.version} names row {position} of {name}")
            yield items[position], record_sha if fmt == "jsonl" else conll_sha


def _local_rows(path: Path, fmt: str) -> Iterator[bytes]:
    """The lines (fmt "jsonl") or CoNLL blocks of a local file, one at a time."""
    with open(path, "rb") as f:
        if fmt == "jsonl":
            yield from f
            return
        block: list[bytes] = []
        for line in f:
            if line == CONLL_DOCSTART and block:
                yield b"".join(block)
                block = []
            block.append(line)
        if block:
            yield b"".join(block)


def _view_intact(path: Path, manifest: ReleaseManifest, index: LiveIndex, fmt: str) -> bool:
    """A pulled corpus.jsonl / corpus.conll holds exactly the live rows, in release order."""
    if not path.is_file():
        return False
    expected = (
        (row[2] if fmt == "jsonl" else row[3])
        for name, _ in release_parts(manifest)
        for row in index.rows(name)
    )
    rows = _local_rows(path, fmt)
    for want in expected:
        got = next(rows, None)
        if got is None:
            return False
        if hashlib.sha256(got[:-1] if fmt == "jsonl" else got).digest() != want:
            return False
    return next(rows, None) is None


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


def _write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to `<name>.part`, then rename it to `path` once complete and synced; a
    failure (a checksum that does not match, included) leaves no `.part` behind."""
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(part, "wb") as f:
            for data in chunks:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, path)


def pull(store: Store, version: str = "latest", *, dest: Path) -> Path:
    """Download `version` into `dest/<version>/` and return that folder.

    Every object is checked against the manifest as it arrives. Files already there with the
    right size and sha256 are kept (an interrupted pull resumes); others are written to
    `<name>.part` and renamed once complete (the JSONL and CoNLL shards are concatenated into
    `corpus.jsonl` and `corpus.conll`, which in layout 3 hold the live rows only, each checked
    against the live index; Parquet and spaCy parts stay one file each, with `live.parquet`
    naming their live rows). An object that does not match its manifest raises
    ChecksumMismatch naming it, and nothing wrong is left under its name. `manifest.json` is
    written last, so its presence means the folder is complete. Memory holds a few objects at
    a time (and the live index, columnar), whatever the release's size."""
    manifest, manifest_bytes = _store_manifest(store, version)
    target = Path(dest) / manifest.version
    target.mkdir(parents=True, exist_ok=True)
    overlaid = _overlaid(manifest)
    by_path = _by_path(manifest)
    for path, parts in by_path.items():
        if overlaid and path in VIEWS:
            continue  # written below from the live index
        local = target / path
        stale = local.with_name(local.name + ".part")
        if _is_intact(local, parts):
            stale.unlink(missing_ok=True)
            continue
        _write_atomic(local, (data for _entry, data in _fetch(store, manifest, parts)))
    if overlaid:
        index = _local_index(target, manifest)
        for path, fmt in VIEWS.items():
            local = target / path
            stale = local.with_name(local.name + ".part")
            if path not in by_path or _view_intact(local, manifest, index, fmt):
                stale.unlink(missing_ok=True)
                continue
            _write_atomic(local, _checked_rows(store, manifest, index, fmt, path))
    _write_atomic(target / "manifest.json", [manifest_bytes])
    return target


def _checked_rows(
    store: Store, manifest: ReleaseManifest, index: LiveIndex, fmt: str, path: str
) -> Iterator[bytes]:
    """The live rows of a view (`corpus.jsonl`, `corpus.conll`), each checked against the
    sha256 the live index holds for it."""
    for data, want in _live_rows(store, manifest, index, fmt):
        if hashlib.sha256(data[:-1] if fmt == "jsonl" else data).digest() != want:
            raise ChecksumMismatch(path, want.hex(), "a row of another content")
        yield data


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
        if _overlaid(manifest) and path in VIEWS:
            index = _store_index(store_or_dir, manifest)
            rows = _live_rows(store_or_dir, manifest, index, VIEWS[path])
            return b"".join(data for data, _ in rows)
        return b"".join(data for _, data in _fetch(store_or_dir, manifest, parts))
    folder, manifest = _local_manifest(Path(store_or_dir), version)
    data = (folder / path).read_bytes()
    if _overlaid(manifest) and path in VIEWS:
        if _view_intact(folder / path, manifest, _local_index(folder, manifest), VIEWS[path]):
            return data
    elif _is_intact(folder / path, _parts(manifest, path)):
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
        if _overlaid(manifest):
            index = _store_index(store_or_dir, manifest)
            for raw, _ in _live_rows(store_or_dir, manifest, index, "jsonl"):
                if _selected(layer, split, record := json.loads(raw)):
                    yield record
            return
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
        if _overlaid(manifest):
            index = _store_index(store_or_dir, manifest)
            parts = _format_parts(manifest, "spacy")
            fetched = _fetch(store_or_dir, manifest, [entry for _, entry in parts])
            for (name, _), (_, data) in zip(parts, fetched, strict=True):
                yield from _docs(data, layer, split, vocab, _positions(index, name))
            return
        shards = [f for f in manifest.files if f.path.endswith(".spacy")]
        for _, data in _fetch(store_or_dir, manifest, shards):
            yield from _docs(data, layer, split, vocab)
        return
    folder, manifest = _local_manifest(Path(store_or_dir), version)
    if _overlaid(manifest):
        index = _local_index(folder, manifest)
        for name, entry in _format_parts(manifest, "spacy"):
            data = _checked(manifest, entry, (folder / entry.path).read_bytes())
            yield from _docs(data, layer, split, vocab, _positions(index, name))
        return
    for entry in manifest.files:
        if entry.path.endswith(".spacy"):
            data = _checked(manifest, entry, (folder / entry.path).read_bytes())
            yield from _docs(data, layer, split, vocab)


def _positions(index: LiveIndex, part: str) -> set[int]:
    return {row[1] for row in index.rows(part)}


def _docs(
    data: bytes, layer: str, split: str | None, vocab: Any, live: set[int] | None = None
) -> Iterator[Doc]:
    """The Docs of one DocBin (those at the `live` positions only, when given)."""
    from spacy.tokens import DocBin

    for i, doc in enumerate(DocBin(store_user_data=True).from_bytes(data).get_docs(vocab)):
        if (live is None or i in live) and _selected(layer, split, doc.user_data):
            yield doc
