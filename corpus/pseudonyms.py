"""Stable pseudonyms for annotators, so that a release never carries an email."""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Any

from corpus.keys import keys
from corpus.store import PreconditionFailed, Store


class Pseudonyms:
    """Stable pseudonyms for annotators: keyed with a random salt kept in the store, so emails
    cannot be guessed back from a release. The salt is read (or created) once, at first use,
    so a publish costs one read of it, not one per annotation."""

    KEY = keys.pseudonym_salt

    def __init__(self, store: Store) -> None:
        self.store = store
        self._salt: bytes | None = None

    def __call__(self, name: str) -> str:
        if self._salt is None:
            if self.store.head(self.KEY) is None:
                with contextlib.suppress(PreconditionFailed):  # another run won: use theirs
                    self.store.put_if_absent(self.KEY, os.urandom(32).hex().encode())
            self._salt = self.store.get_bytes(self.KEY)
        return "annotator-" + hashlib.sha256(self._salt + name.encode("utf-8")).hexdigest()[:10]


def pseudonym(store: Store, name: str) -> str:
    """The pseudonym of one annotator (see Pseudonyms)."""
    return Pseudonyms(store)(name)


def pseudonymize_agreement(report: dict[str, Any], names: Pseudonyms) -> dict[str, Any]:
    """The agreement report as a release carries it: annotators under their pseudonyms (the
    run report in the store keeps the emails, for the operator)."""
    out = dict(report)
    if "annotators" in out:
        out["annotators"] = {
            names(name): stats for name, stats in sorted(out["annotators"].items())
        }
    if "stance_kappa_pairwise" in out:
        pairs = {}
        for key, value in out["stance_kappa_pairwise"].items():
            a, _, b = key.partition("~")
            pa, pb = sorted((names(a), names(b)))
            pairs[f"{pa}~{pb}"] = value
        out["stance_kappa_pairwise"] = dict(sorted(pairs.items()))
    return out
