"""clean_bytes / clean_path: one source -> one CleanDocument (load, clean, metadata, hashes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePath

from ingest.cleaners import clean_text
from ingest.errors import IngestError
from ingest.limits import Limits, check_input
from ingest.loaders import LOADERS
from ingest.metadata import extract_metadata
from ingest.offsets import apply_edits
from ingest.sources import read_local
from schemas.records import CleanDocument, DocumentMetadata

CLEANER_VERSION = "2.0.0"
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(LOADERS)
DEFAULT_MAX_BYTES = 20_000_000


def make_doc_id(source_key: str) -> str:
    """Stable id from the source's key: 'samples/a.txt' -> first 16 hex of its sha256."""
    return hashlib.sha256(source_key.encode("utf-8")).hexdigest()[:16]


def content_hash(text: str, metadata: DocumentMetadata) -> str:
    """sha256 of the clean text and the metadata (canonical JSON)."""
    meta = json.dumps(metadata.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256((text + "\x00" + meta).encode("utf-8")).hexdigest()


def clean_bytes(
    data: bytes,
    *,
    source: str,
    filename: str,
    doc_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    charset: str | None = None,
    limits: Limits | None = None,
) -> CleanDocument:
    """Clean one source given as bytes; the loader is chosen by `filename`'s suffix. `charset`
    is the encoding the source came with (an HTTP or S3 Content-Type's charset), which wins
    over the source's own declaration (see `ingest.charsets`).

    Offsets in `removed`, `repairs` and `offset_map` index the decoded source text: the decoded
    bytes for .txt/.md, the text the loader produced for .html/.docx/.pdf/.eml (see
    `ingest.loaders`). Raises IngestError (kind empty, binary, unsupported_format, undecodable,
    too_large, empty_after_cleaning or parse_error) naming `source`."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in LOADERS:
        supported = ", ".join(sorted(LOADERS))
        raise IngestError(
            "unsupported_format",
            f"unsupported file type {suffix or '(none)'}; supported: {supported}",
            source,
        )
    if len(data) > max_bytes:
        raise IngestError(
            "too_large", f"is {len(data)} bytes, over the limit of {max_bytes}", source
        )
    if not data.strip():
        raise IngestError("empty", "is empty" if not data else "holds only whitespace", source)
    check_input(data, suffix, limits or Limits(max_source_bytes=max_bytes), source)
    loaded = LOADERS[suffix](data, source, charset) if charset else LOADERS[suffix](data, source)
    if not loaded.text.strip():
        raise IngestError("empty_after_cleaning", "has no text content", source)
    cleaned = clean_text(
        loaded.text,
        markdown=loaded.markdown,
        keep=loaded.keep,
        noise=loaded.noise,
        continues=loaded.continues,
    )
    applied = apply_edits(loaded.text, cleaned.edits)
    if not applied.text.strip() and loaded.extracted:
        # the extractor found an article and our cleaners would remove all of it: its judgement
        # wins, only spacing and inline repairs are applied (and the fact is recorded)
        cleaned = clean_text(loaded.text, markdown=loaded.markdown, conservative=True)
        applied = apply_edits(loaded.text, cleaned.edits)
        loaded.hints["cleaning"] = "conservative: full cleaning left nothing of the article"
    if not applied.text.strip():
        raise IngestError(
            "empty_after_cleaning",
            f"nothing left after cleaning: all {len(loaded.text)} characters were noise",
            source,
        )
    metadata = extract_metadata(cleaned, loaded.hints)
    return CleanDocument(
        source=source,
        doc_id=doc_id or make_doc_id(source),
        text=applied.text,
        metadata=metadata,
        removed=applied.removed,
        repairs=applied.repairs,
        offset_map=applied.offset_map,
        media_type=loaded.media_type,
        source_sha256=hashlib.sha256(data).hexdigest(),
        content_hash=content_hash(applied.text, metadata),
        cleaner_version=CLEANER_VERSION,
    )


def clean_path(
    path: Path,
    *,
    source: str | None = None,
    doc_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CleanDocument:
    """Clean one file; `source` defaults to the path as given. OSError passes through."""
    path = Path(path)
    name = source if source is not None else str(path)
    if path.stat().st_size > max_bytes:
        raise IngestError(
            "too_large", f"is {path.stat().st_size} bytes, over the limit of {max_bytes}", name
        )
    data = read_local(path, Limits(max_source_bytes=max_bytes), name)  # never blocks on a fifo
    return clean_bytes(data, source=name, filename=path.name, doc_id=doc_id, max_bytes=max_bytes)
