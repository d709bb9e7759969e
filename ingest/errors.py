"""The one exception a bad input raises, with a machine-readable kind."""

from __future__ import annotations

ERROR_KINDS = frozenset(
    {
        "empty",
        "binary",
        "unsupported_format",
        "undecodable",
        "too_large",
        "empty_after_cleaning",
        "parse_error",
        # limits per input (ingest/limits.py, ingest/guard.py)
        "limit_exceeded",
        "timeout",
        "encrypted",
        "parser_crashed",
    }
)


class IngestError(Exception):
    """A source that cannot become a clean document. `str()` names the input."""

    def __init__(self, kind: str, message: str, source: str) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown ingest error kind {kind!r}")
        self.kind = kind
        self.source = source
        self.message = message if source in message else f"{source}: {message}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
