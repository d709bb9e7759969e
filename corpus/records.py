"""What a release holds for each document (the gold layer where people decided, the machine
layer elsewhere, annotators under pseudonyms), and publishing the store's documents as the next
release, skipped at the cost of a few requests when none of its inputs changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from corpus.decisions import Decisions, HumanWork
from corpus.keys import keys
from corpus.pseudonyms import Pseudonyms, pseudonymize_agreement
from corpus.release import FORMAT_VERSION, LAYOUT, publish, read_latest
from corpus.stagestore import StageIndex, StageStore
from corpus.store import NotFound, Store
from schemas import AdjudicationResult, AnnotatedDocument


def release_record(
    store: Store,
    doc: AnnotatedDocument,
    result: AdjudicationResult,
    names: Pseudonyms | None = None,
    people: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The release record of one document. `people`: its collected annotations (read from the
    store when not given)."""
    from corpus.history import current_work

    names = names or Pseudonyms(store)
    if people is None:  # those who worked on this text only (corpus/history.py)
        work, _stale = current_work(
            store, [keys.human(doc.doc_id), keys.adjudicator(doc.doc_id)], doc.content_hash
        )
        people = [a for annotations in work for a in annotations]
    annotators = sorted({names(a["annotator"]) for a in people})
    gold = result.status in ("adjudicated", "reviewed")
    if gold:
        entities = [{**e.model_dump(), "text": doc.text[e.start : e.end]} for e in result.entities]
        stances = [
            {
                "target": s.target,
                "label": s.label,
                "evidence": [ev.model_dump() for ev in s.evidence],
            }
            for s in result.stances
        ]
    else:  # machine layer: never reviewed, or held back by a dispute
        entities = [e.model_dump() for e in doc.entities]
        stances = [s.model_dump() for s in doc.stances]
    return {
        "doc_id": doc.doc_id,
        "text": doc.text,
        "entities": entities,
        "stances": stances,
        "metadata": doc.metadata.model_dump(mode="json"),
        "review_status": result.status,
        "disputes": [d.model_dump() for d in result.disputes],
        "agreement": result.agreement.model_dump(),
        "source": doc.source,
        "annotators": annotators,
        "model_version": doc.model_version,
        "provenance": {
            "source_sha256": doc.source_sha256,
            "content_hash": doc.content_hash,
            "cleaner_version": doc.cleaner_version,
            "removed": [r.model_dump() for r in doc.removed],
        },
    }


@dataclass
class PublishOutcome:
    version: str | None
    created: bool
    skipped: bool  # decided from the inputs' fingerprint alone, nothing read or built


def _fingerprint(
    index: StageIndex,
    decisions_etag: str | None,
    work: HumanWork,
    others: dict[str, str | None],
    label_schema: dict[str, Any],
    code_version: str,
) -> str | None:
    """A digest of everything a release is built from, or None when it cannot be trusted (a
    stage index not yet stored as it is, documents of the old layout)."""
    if index.dirty or index.etag is None or any(e.legacy for e in index.docs.values()):
        return None
    if decisions_etag is None:
        return None
    parts = {
        "layout": LAYOUT,
        "format_version": FORMAT_VERSION,
        "code_version": code_version,
        "machine_index": index.etag,
        "decisions": decisions_etag,
        "human": sorted((o.key, o.etag) for o in work.objects),
        "others": others,
        "label_schema": label_schema,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _etag(store: Store, key: str) -> str | None:
    info = store.head(key)
    return info.etag if info else None


def publish_store(
    store: Store,
    *,
    label_schema: dict[str, Any],
    code_version: str,
    names: Pseudonyms | None = None,
) -> PublishOutcome:
    """Publish the store's documents as a new release when their content changed. A run whose
    inputs (the machine index, the decisions, the human work, the agreement report, the salt,
    the schema, the code version) are those of the latest release returns at once; else every
    record is built (machine documents shard by shard) and `corpus.release.publish` decides."""
    machine = StageStore(store, keys.machine_stage)
    index = machine.load()
    if not index.docs:
        latest, _etag_ = read_latest(store)
        return PublishOutcome(latest["version"] if latest else None, False, False)
    names = names or Pseudonyms(store)
    work = HumanWork.load(store)
    others = {k: _etag(store, k) for k in (keys.agreement, keys.pseudonym_salt)}
    fingerprint = _fingerprint(
        index, _etag(store, keys.adjudicated_index), work, others, label_schema, code_version
    )
    latest, _ = read_latest(store)
    if fingerprint is not None and latest is not None:
        try:
            state = store.get_json(keys.publish_state)
        except NotFound:
            state = {}
        if state.get("fingerprint") == fingerprint and state.get("content_hash") == latest.get(
            "content_hash"
        ):
            return PublishOutcome(latest["version"], False, True)

    decisions = Decisions.load(store)

    def records() -> Iterator[dict[str, Any]]:
        for raw in machine.read_all(index):
            doc = AnnotatedDocument.model_validate(raw)
            decision = decisions.get(doc.doc_id)
            if decision is None:
                raise NotFound(keys.adjudicated(doc.doc_id), store.url)
            yield release_record(
                store, doc, decision, names, work.people(doc.doc_id, doc.content_hash)
            )

    try:
        agreement = store.get_json(keys.agreement)
    except NotFound:
        agreement = {}
    result = publish(
        store,
        records(),
        label_schema=label_schema,
        agreement=pseudonymize_agreement(agreement, names),
        code_version=code_version,
        model_versions=_model_versions(machine, index),
    )
    if fingerprint is not None:
        # the salt may have been made while the records were built: the inputs as they are now
        others = {k: _etag(store, k) for k in (keys.agreement, keys.pseudonym_salt)}
        fingerprint = _fingerprint(
            index, _etag(store, keys.adjudicated_index), work, others, label_schema, code_version
        )
        store.put_json(
            keys.publish_state,
            {
                "fingerprint": fingerprint,
                "version": result.version,
                "content_hash": result.manifest.content_hash,
            },
        )
    return PublishOutcome(result.version, result.created, False)


def _model_versions(machine: StageStore, index: StageIndex) -> list[str]:
    versions = {e.version for e in index.docs.values() if not e.legacy}
    legacy = index.legacy_ids()
    if legacy:  # a store of the old layout, not migrated yet: its files say
        versions |= {str(d.get("model_version") or "") for d in machine.read(index, legacy)}
    return sorted(versions)
