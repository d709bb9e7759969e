"""Ingest: load a source by media type, remove noise with every removal traced to source
offsets, extract metadata; bad input raises IngestError with a specific kind."""

from ingest.errors import IngestError
from ingest.pipeline import (
    CLEANER_VERSION,
    SUPPORTED_SUFFIXES,
    clean_bytes,
    clean_path,
    make_doc_id,
)

__all__ = [
    "CLEANER_VERSION",
    "SUPPORTED_SUFFIXES",
    "IngestError",
    "clean_bytes",
    "clean_path",
    "make_doc_id",
]
