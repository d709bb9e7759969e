"""Reviewed versions of documents whose source changed after review, kept write-once in the
store (`history/<doc_id>/<content_hash>.json`; an adjudication task's as
`<content_hash>.adjudication.json`), and the rule that human work counts only on the text it
was made on (its record's `content_hash`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from corpus.store import PreconditionFailed, Store

PREFIX = "history/"


def history_key(doc_id: str, content_hash: str, kind: str = "") -> str:
    return f"{PREFIX}{doc_id}/{content_hash}{'.' + kind if kind else ''}.json"


def keep_version(
    store: Store, doc_id: str, content_hash: str, record: Mapping[str, Any], kind: str = ""
) -> bool:
    """Keep the reviewed version of `doc_id` on the text of `content_hash`; True if written
    now, False if it was kept already (a re-run, or a push that crashed after keeping it: the
    first record stands, nothing is overwritten)."""
    try:
        store.put_json(history_key(doc_id, content_hash, kind), dict(record), if_absent=True)
    except PreconditionFailed:
        return False
    return True


def keep_reviewed(store: Store, version: Mapping[str, Any], human_key: str, kind: str = "") -> bool:
    """What push does before it supersedes a task whose text changed (review/client.py): keep
    the reviewed version (`doc_id`, `content_hash`, `task_id`, ...: review.edits.ReviewedVersion
    as JSON), and stamp the document's human record at `human_key` with that old hash if it
    came from that task and predates hashes, so it is never taken for work on the new text.
    True if the version was written now. `kind`: "adjudication" for an adjudication task's."""
    doc_id, old_hash = str(version["doc_id"]), str(version["content_hash"])
    written = keep_version(store, doc_id, old_hash, version, kind)
    if store.head(human_key) is not None:
        record = dict(store.get_json(human_key))
        if "content_hash" not in record and record.get("task_id") == version["task_id"]:
            record["content_hash"] = version["content_hash"]
            store.put_json(human_key, record)
    return written


def kept_versions(store: Store, doc_id: str) -> list[dict[str, Any]]:
    """Every reviewed version kept for `doc_id` (oldest key order, not time order)."""
    return [store.get_json(k) for k in store.list(f"{PREFIX}{doc_id}/")]


def made_on(record: Mapping[str, Any], content_hash: str) -> bool:
    """Whether a collected human record (human/ or human-adjudication/) was made on the text
    whose hash is `content_hash`. Records collected before hashes were recorded carry none;
    they are taken as made on the current text, except those push stamped with their old
    hash when it superseded their task (flows.tasks.push_review)."""
    made = record.get("content_hash")
    return made is None or made == content_hash


def current_work(
    store: Store, keys: Sequence[str], current: str | Callable[[], str]
) -> tuple[list[list[dict[str, Any]]], bool]:
    """The annotations of each human record at `keys` (human/, human-adjudication/), each
    empty when the record is missing or was made on another text than the current one (its
    content hash `current`, or a function reading it, called only if a record exists), and
    whether any record was left out for that. A document whose work was all left out is not
    gold until its new text is reviewed (status `source_changed`)."""
    records = [store.get_json(k) if store.head(k) is not None else None for k in keys]
    if not any(records):
        return [[] for _ in keys], False
    content_hash = current if isinstance(current, str) else current()
    out: list[list[dict[str, Any]]] = []
    stale = False
    for record in records:
        if record is not None and not made_on(record, content_hash):
            stale = True
            record = None
        out.append(list(record["annotations"]) if record is not None else [])
    return out, stale


__all__ = [
    "PREFIX",
    "history_key",
    "keep_reviewed",
    "keep_version",
    "kept_versions",
    "current_work",
    "made_on",
]
