"""Adjudication decisions over what is stored: the human work collected per document, the
decision for each document (corpus.adjudication's rules, plus "machine" and "in_review"), and
the decisions kept in one index object (`adjudicated/index.json.gz`) read once by publish.

A decision is written to `adjudicated/<doc_id>.json` only when it changed; documents nobody
reviewed ("machine", "in_review" without annotations) need no file of their own: the index
says all there is."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corpus.adjudication import adjudicate, agreement_report
from corpus.history import made_on
from corpus.keys import keys
from corpus.store import NotFound, ObjectInfo, Store, encode_json
from schemas import AdjudicationInput, AdjudicationResult

DECISIONS_FORMAT = 1
_PLAIN = {"machine", "in_review"}  # statuses a decision can have with nothing else in it


# ---------------------------------------------------------------- human work


def human_annotations(store: Store, doc_id: str) -> list[dict[str, Any]]:
    """The annotations collected from the review project for one document (adjudicators'
    included); [] when nobody annotated it."""
    try:
        return list(store.get_json(keys.human(doc_id))["annotations"])
    except NotFound:
        return []


def adjudicator_annotations(store: Store, doc_id: str) -> list[dict[str, Any]]:
    """The annotations collected from the adjudication project for one document."""
    try:
        return list(store.get_json(keys.adjudicator(doc_id))["annotations"])
    except NotFound:
        return []


def _doc_id_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".json")


@dataclass
class HumanWork:
    """Every document's collected human work, found by listing `human/` and
    `human-adjudication/` once (human-scale: only documents people touched are read). Each
    record keeps the content hash of the text it was made on: asked with a document's current
    hash, a record made on another text (its source was edited after review) counts as no work
    (corpus/history.py, issue 14)."""

    review: dict[str, dict[str, Any]]  # doc_id -> collected record ({"annotations", ...})
    adjudication: dict[str, dict[str, Any]]
    objects: list[ObjectInfo]  # what was read, with etags (publish's input fingerprint)

    @classmethod
    def load(cls, store: Store) -> HumanWork:
        found: dict[str, dict[str, dict[str, Any]]] = {
            "human/": {},
            "human-adjudication/": {},
        }
        objects: list[ObjectInfo] = []
        for prefix, into in found.items():
            for info in store.list_info(prefix):
                if "/" in info.key[len(prefix) :] or not info.key.endswith(".json"):
                    continue
                into[_doc_id_of(info.key)] = dict(store.get_json(info.key))
                objects.append(info)
        return cls(found["human/"], found["human-adjudication/"], objects)

    def current(
        self, doc_id: str, content_hash: str | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """(review annotations, adjudication annotations, stale): the work made on the text
        of `content_hash` (any text when it is None or empty: unknown); stale when a record
        was left out for that."""
        out: list[list[dict[str, Any]]] = []
        stale = False
        for records in (self.review, self.adjudication):
            record = records.get(doc_id)
            if record is not None and content_hash and not made_on(record, content_hash):
                stale, record = True, None
            out.append(list(record["annotations"]) if record is not None else [])
        return out[0], out[1], stale

    def of(
        self, doc_id: str, content_hash: str | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        review, adjudication, _stale = self.current(doc_id, content_hash)
        return review, adjudication

    def people(self, doc_id: str, content_hash: str | None = None) -> list[dict[str, Any]]:
        review, adjudication = self.of(doc_id, content_hash)
        return review + adjudication


# ---------------------------------------------------------------- one document's decision


def no_decision(doc_id: str, status: str) -> AdjudicationResult:
    return AdjudicationResult.model_validate(
        {
            "doc_id": doc_id,
            "status": status,
            "entities": [],
            "stances": [],
            "disputes": [],
            "agreement": {"entity_f1": None, "stance_kappa": None},
        }
    )


def decide(
    doc_id: str,
    review: Sequence[dict[str, Any]],
    adjudication: Sequence[dict[str, Any]],
    overlap: int,
) -> AdjudicationResult:
    """The decision for one document from what people did: no human work -> machine; an
    adjudicator's annotation (in the review or the adjudication project) -> final; fewer
    annotators than `overlap` -> in_review (machine labels stand until the task is done);
    else the adjudication rules."""
    annotations = [*review, *adjudication]
    if not annotations:
        return no_decision(doc_id, "machine")
    item = AdjudicationInput.model_validate({"doc_id": doc_id, "annotations": annotations})
    has_adjudicator = any(a.role == "adjudicator" for a in item.annotations)
    annotators = len({a.annotator for a in item.annotations if a.role == "annotator"})
    if not has_adjudicator and annotators < overlap:
        return no_decision(doc_id, "in_review")
    return adjudicate(item)


# ---------------------------------------------------------------- every decision


def _compact(result: dict[str, Any], doc_id: str) -> str | dict[str, Any]:
    """A decision as the index keeps it: its status alone when that says everything."""
    status = result.get("status")
    if status in _PLAIN and result == no_decision(doc_id, str(status)).model_dump(mode="json"):
        return str(status)
    return result


@dataclass
class Decisions:
    """doc_id -> decision, read from the index once (or, in a store of the layout before it,
    from the per-document files), updated in memory, stored when something changed."""

    store: Store
    decisions: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)  # doc_ids with an adjudicated/<id>.json
    dirty: bool = False
    written: int = 0  # per-document files written by `set`

    @classmethod
    def load(cls, store: Store) -> Decisions:
        try:
            raw = json.loads(gzip.decompress(store.get_bytes(keys.adjudicated_index)))
            if raw.get("format") != DECISIONS_FORMAT:
                raise ValueError(f"format {raw.get('format')!r}")
            return cls(store, dict(raw["decisions"]), set(raw["files"]))
        except NotFound:
            pass
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: rebuilt from the files below, as for a store without one
        out = cls(store, dirty=True)
        for key in store.list("adjudicated/"):
            if key.endswith(".json") and "/" not in key[len("adjudicated/") :]:
                doc_id = _doc_id_of(key)
                out.decisions[doc_id] = _compact(store.get_json(key), doc_id)
                out.files.add(doc_id)
        return out

    def get(self, doc_id: str) -> AdjudicationResult | None:
        value = self.decisions.get(doc_id)
        if value is None:
            return None
        if isinstance(value, str):
            return no_decision(doc_id, value)
        return AdjudicationResult.model_validate(value)

    def set(self, result: AdjudicationResult) -> bool:
        """Record a decision; its file is written only when it differs from the one recorded
        (and a plain "machine"/"in_review" one gets no file unless it replaces one). True
        when it changed."""
        dumped = result.model_dump(mode="json")
        compact = _compact(dumped, result.doc_id)
        if self.decisions.get(result.doc_id) == compact:
            return False
        self.decisions[result.doc_id] = compact
        self.dirty = True
        if not isinstance(compact, str) or result.doc_id in self.files:
            self.store.put_json(keys.adjudicated(result.doc_id), dumped)
            self.files.add(result.doc_id)
            self.written += 1
        return True

    def set_plain(self, doc_id: str, status: str) -> bool:
        """`set(no_decision(doc_id, status))` without building it when it is already the
        recorded one (the common case of a document nobody reviewed); True when it changed."""
        if self.decisions.get(doc_id) == status:
            return False
        return self.set(no_decision(doc_id, status))

    def retain(self, doc_ids: Iterable[str]) -> None:
        """Forget decisions of documents no longer in the store (their files stay)."""
        keep = set(doc_ids)
        gone = [d for d in self.decisions if d not in keep]
        for doc_id in gone:
            del self.decisions[doc_id]
            self.dirty = True

    def save(self) -> bool:
        if not self.dirty:
            return False
        raw = {
            "format": DECISIONS_FORMAT,
            "decisions": dict(sorted(self.decisions.items())),
            "files": sorted(self.files),
        }
        data = gzip.compress(
            json.dumps(raw, separators=(",", ":"), sort_keys=True).encode(), mtime=0
        )
        self.store.put_bytes(keys.adjudicated_index, data, content_type="application/gzip")
        self.dirty = False
        return True


@dataclass
class AdjudicationRun:
    counts: dict[str, int]
    agreement: dict[str, object]
    disputed: list[str]
    written: int  # decision files written (changed decisions)


def adjudicate_store(
    store: Store, doc_ids: Iterable[str] | Mapping[str, str], overlap: int
) -> AdjudicationRun:
    """Decide every document from the human work in the store; write only the decisions that
    changed, the index and the agreement report only when they changed. `doc_ids` as a
    mapping doc_id -> current content hash: human work made on another text is left out, and
    a document left with none is `source_changed` (machine labels until its new text is
    reviewed)."""
    work = HumanWork.load(store)
    decisions = Decisions.load(store)
    counts: dict[str, int] = {}
    inputs = []
    disputed = []
    hashes: Mapping[str, str] = doc_ids if isinstance(doc_ids, Mapping) else {}
    ids = list(doc_ids)
    touched = work.review.keys() | work.adjudication.keys()
    for doc_id in ids:
        if doc_id not in touched:  # nobody's work: "machine", decided without a model
            decisions.set_plain(doc_id, "machine")
            counts["machine"] = counts.get("machine", 0) + 1
            continue
        review, adjudication, stale = work.current(doc_id, hashes.get(doc_id) or None)
        result = decide(doc_id, review, adjudication, overlap)
        if stale and result.status == "machine":
            result = no_decision(doc_id, "source_changed")
        if review:  # agreement between annotators, done or not (adjudicators are left out)
            inputs.append(
                AdjudicationInput.model_validate({"doc_id": doc_id, "annotations": review})
            )
        if result.status == "disputed":
            disputed.append(doc_id)
        decisions.set(result)
        counts[result.status] = counts.get(result.status, 0) + 1
    decisions.retain(ids)
    decisions.save()
    report = agreement_report(inputs)
    data = encode_json(report)
    try:
        unchanged = store.get_bytes(keys.agreement) == data
    except NotFound:
        unchanged = False
    if not unchanged:
        store.put_bytes(keys.agreement, data, content_type="application/json")
    return AdjudicationRun(counts, report, disputed, decisions.written)
