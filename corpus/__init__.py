"""The store, the ledger, adjudication and agreement, pseudonyms, release writers and the pull
client. `corpus.load` and `corpus.load_docs` are the reader's entry points (from corpus.pull,
imported on first use so that `import corpus` stays cheap)."""

from __future__ import annotations

from typing import Any

_READERS = ("load", "load_docs")


def __getattr__(name: str) -> Any:
    if name in _READERS:
        from corpus import pull as _pull

        return getattr(_pull, name)
    raise AttributeError(f"module 'corpus' has no attribute {name!r}")
