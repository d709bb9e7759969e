"""Publish a versioned release to the store: every file of `releases/<version>/` is created,
never overwritten, checked, and only then does `releases/latest.json` move to it.

How concurrent publishers are kept apart (all through conditional writes, no locks):

1. Read `releases/latest.json` and its etag. Same content hash as ours: nothing to publish.
2. Claim the next number after latest: create `releases/<version>/claim.json` (create-only),
   holding our content hash and the version we build on. If the claim exists already and names
   the same content hash and the same previous version, we *join* it: the version's files are
   deterministic for a given input, so whoever writes a file first wins and the others check
   that the stored bytes are theirs. This is also how a publish that crashed half-way is resumed
   by the next run. A claim for other content (or another base) makes us try the next number.
3. Write the data files, then `manifest.json`, all create-only; read everything back and check
   every sha256.
4. Move `latest.json` with If-Match on the etag read in step 1 (create-only when there was none).
   Losing that race means someone else published in between: start again from step 1; our
   version stays behind as an orphan that `latest` never names. History stays linear: every
   version `latest` has named built on the version named before it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from corpus.store import NotFound, PreconditionFailed, Store, StoreError, encode_json
from schemas.records import Manifest, ManifestFile
from schemas.release import LatestPointer, ReleaseRecord

RELEASES = "releases"
LATEST_KEY = f"{RELEASES}/latest.json"
REVIEW_STATUSES = ("machine", "in_review", "reviewed", "adjudicated", "disputed")
# Human-checked documents make the gold layer. Machine-only documents, documents still short of
# their annotators (in_review) and disputed ones (held from gold until someone decides, never
# dropped) make the silver layer.
GOLD_STATUSES = frozenset({"reviewed", "adjudicated"})
SPLITS = (("train", 80), ("dev", 10), ("test", 10))

DATA_FILES = (
    "corpus.jsonl",
    "corpus.spacy",
    "corpus.conll",
    "corpus.parquet",
    "labels.json",
    "agreement.json",
    "README.md",
    "NOTES.md",
)


class PublishError(StoreError):
    """A release could not be published (bad records, or too many lost races)."""


class VerificationFailed(PublishError):
    """A file read back from the store is not what was written."""


@dataclass(frozen=True)
class PublishResult:
    version: str
    created: bool
    manifest: Manifest


def version_name(n: int) -> str:
    return f"v{n:04d}"


def version_number(version: str) -> int:
    if not (version.startswith("v") and version[1:].isdigit()):
        raise ValueError(f"not a release version: {version!r}")
    return int(version[1:])


def release_key(version: str, name: str) -> str:
    return f"{RELEASES}/{version}/{name}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- records


def split_of(doc_id: str) -> str:
    """train/dev/test (80/10/10) from a hash of the doc_id alone: stable across versions."""
    bucket = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big") % 100
    edge = 0
    for name, share in SPLITS:
        edge += share
        if bucket < edge:
            return name
    return SPLITS[-1][0]


def layer_of(review_status: str) -> str:
    return "gold" if review_status in GOLD_STATUSES else "silver"


def _explain(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
        for err in e.errors(include_url=False)[:5]
    )


def _canonical_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as released: validated against `ReleaseRecord`, entities and stances in a
    fixed order, split and layer added. The dict keeps the caller's keys as given (no defaults
    filled in), so the content hash of unchanged input stays the same across code versions."""
    if hasattr(record, "model_dump"):  # a pydantic record is welcome too
        record = record.model_dump(mode="json")
    if not isinstance(record, dict):
        raise PublishError(f"release record is a {type(record).__name__}, not a dict")
    doc_id = record.get("doc_id")
    if not isinstance(doc_id, str) or not doc_id:
        raise PublishError(f"record without a doc_id: {str(record)[:120]}")
    try:
        ReleaseRecord.model_validate(record)
    except ValidationError as exc:
        raise PublishError(f"record {doc_id}: {_explain(exc)}") from None
    text = record["text"]
    status = record.get("review_status", "machine")
    entities = []
    for e in record.get("entities") or []:
        start, end = int(e["start"]), int(e["end"])
        entity = {**e, "start": start, "end": end, "text": e.get("text", text[start:end])}
        entities.append(entity)
    entities.sort(key=lambda e: (e["start"], e["end"], e["label"]))
    stances = []
    for s in record.get("stances") or []:
        evidence = sorted(
            ({"start": int(v["start"]), "end": int(v["end"])} for v in s.get("evidence") or []),
            key=lambda v: (v["start"], v["end"]),
        )
        stances.append({**s, "evidence": evidence})
    stances.sort(key=lambda s: (s["target"], s["label"]))
    return {
        **record,
        "review_status": status,
        "entities": entities,
        "stances": stances,
        "metadata": record.get("metadata") or {},
        "annotators": sorted(record.get("annotators") or []),
        "split": split_of(doc_id),
        "layer": layer_of(status),
    }


def _json_line(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def canonical_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = sorted((_canonical_record(r) for r in records), key=lambda r: r["doc_id"])
    for a, b in zip(out, out[1:], strict=False):
        if a["doc_id"] == b["doc_id"]:
            raise PublishError(f"duplicate doc_id {a['doc_id']!r} in release records")
    return out


def content_hash(records: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSONL (records sorted by doc_id, keys sorted)."""
    return sha256_hex(_jsonl(records))


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(_json_line(r) + "\n" for r in records).encode("utf-8")


# ---------------------------------------------------------------- writers


@lru_cache(maxsize=1)
def _blank_en() -> Any:
    import spacy

    return spacy.blank("en")


def _spacy_doc(record: dict[str, Any]) -> tuple[Any, int]:
    """A Doc with the entities in `doc.ents` and stance evidence in `doc.spans["stance"]`; the
    number of entities that could not go into `doc.ents` (overlaps) is returned too."""
    from spacy.tokens import Span
    from spacy.util import filter_spans

    doc = _blank_en()(record["text"])
    ents = []
    for e in record["entities"]:
        span = doc.char_span(e["start"], e["end"], label=e["label"], alignment_mode="expand")
        if span is not None:
            ents.append(span)
    kept = filter_spans(ents)
    doc.ents = kept
    stance_spans = []
    for s in record["stances"]:
        for v in s["evidence"]:
            span = doc.char_span(v["start"], v["end"], alignment_mode="expand")
            if span is not None and len(span):
                stance_spans.append(
                    Span(doc, span.start, span.end, label=s["label"], kb_id=s["target"])
                )
    doc.spans["stance"] = stance_spans
    doc.user_data.update(
        {
            "doc_id": record["doc_id"],
            "review_status": record["review_status"],
            "layer": record["layer"],
            "split": record["split"],
            "source": record.get("source"),
            "model_version": record.get("model_version"),
            "stances": [
                {"target": s["target"], "label": s["label"], "score": s.get("score")}
                for s in record["stances"]
            ],
        }
    )
    return doc, len(ents) - len(kept)


_msgpack_lock = threading.Lock()
_msgpack_users = 0


@contextlib.contextmanager
def _cached_msgpack_encoders() -> Iterator[None]:
    """srsly looks its msgpack encoders up again (entry points and the whole function registry)
    on every pack, about 4 ms, and DocBin.add packs three times per document: two thirds of a
    release's build time. Serve the same encoders from a cache while we add documents."""
    global _msgpack_users
    from srsly.msgpack import msgpack_encoders

    with _msgpack_lock:
        if _msgpack_users == 0:
            cached = msgpack_encoders.get_all()
            msgpack_encoders.get_all = lambda: dict(cached)  # type: ignore[method-assign]
        _msgpack_users += 1
    try:
        yield
    finally:
        with _msgpack_lock:
            _msgpack_users -= 1
            if _msgpack_users == 0:
                del msgpack_encoders.get_all


# the token attributes whose strings DocBin.add collects (text, tag_, lemma_, norm_, morph,
# dep_, ent_type_, ent_kb_id_, ent_id_), as to_array names
_DOCBIN_STRING_ATTRS = (
    "ORTH",
    "TAG",
    "LEMMA",
    "NORM",
    "MORPH",
    "DEP",
    "ENT_TYPE",
    "ENT_KB_ID",
    "ENT_ID",
)


@lru_cache(maxsize=1)
def _fast_docbin_class() -> Any:
    import numpy
    from spacy.attrs import SPACY, intify_attr
    from spacy.tokens import DocBin

    string_ids = [intify_attr(name) for name in _DOCBIN_STRING_ATTRS]

    class FastDocBin(DocBin):  # type: ignore[misc]
        """DocBin.add gathers its string table token by token, nine Python property lookups
        per token: half of building a 10,000-document release. This `add` stores the same
        arrays and user data and gathers the same strings from the hashes `to_array` returns,
        each distinct hash looked up once. tests/test_release_perf.py checks the bytes are
        identical to DocBin.add's."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._seen_hashes: set[int] = set()

        def add(self, doc: Any) -> None:
            # one to_array call with integer ids: name lookups cost more than the copy
            k = len(self.attrs)
            table = doc.to_array([*self.attrs, SPACY, *string_ids])
            # a copy, not a view: a view would keep the string columns alive until to_bytes
            self.tokens.append(numpy.ascontiguousarray(table[:, :k]))
            self.spaces.append(numpy.asarray(table[:, k : k + 1], dtype=bool))
            self.flags.append({"has_unknown_spaces": doc.has_unknown_spaces})
            strings = doc.vocab.strings
            seen = self._seen_hashes
            if len(doc):
                for h in numpy.unique(table[:, k + 1 :]).tolist():
                    if h not in seen:
                        seen.add(h)
                        self.strings.add(strings[h])
            self.cats.append(doc.cats)
            if self.store_user_data:
                self.user_data.append(srsly_msgpack_dumps(doc.user_data))
            self.span_groups.append(doc.spans.to_bytes())
            for group in doc.spans.values():
                for span in group:
                    self.strings.add(span.label_)
                    if span.kb_id in strings:
                        self.strings.add(span.kb_id_)
                    if span.id in strings:
                        self.strings.add(span.id_)

        def to_bytes(self) -> bytes:
            # DocBin.to_bytes keeps the stacked token array alive next to its bytes while
            # packing; here each array is turned into bytes at once (same message, same bytes)
            lengths = [len(tokens) for tokens in self.tokens]
            empty = numpy.asarray([]).tobytes("C")
            msg = {
                "version": self.version,
                "attrs": self.attrs,
                "tokens": numpy.vstack(self.tokens).tobytes("C") if self.tokens else empty,
                "spaces": numpy.vstack(self.spaces).tobytes("C") if self.spaces else empty,
                "lengths": numpy.asarray(lengths, dtype="int32").tobytes("C"),
                "strings": sorted(self.strings),
                "cats": self.cats,
                "flags": self.flags,
                "span_groups": self.span_groups,
            }
            if self.store_user_data:
                msg["user_data"] = self.user_data
            packed = srsly_msgpack_dumps(msg)
            del msg
            return zlib.compress(packed)

    from srsly import msgpack_dumps as srsly_msgpack_dumps

    return FastDocBin


@lru_cache(maxsize=1)
def _conll_attr_ids() -> list[int]:
    from spacy.attrs import ENT_IOB, ENT_TYPE, IDX, IS_SPACE, LENGTH

    return [IDX, LENGTH, IS_SPACE, ENT_IOB, ENT_TYPE]


def _conll_lines(doc: Any) -> list[str]:
    """`token _ _ tag` lines of one Doc, read from `to_array` rather than Token objects (those
    cost more than the rest of the release). A blank line stands for a paragraph break: a
    whitespace token holding a newline."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    text = doc.text
    strings = doc.vocab.strings
    types: dict[int, str] = {}
    pending_break = False
    for idx, length, is_space, iob, ent_type in doc.to_array(_conll_attr_ids()).tolist():
        token = text[idx : idx + length]
        if is_space:
            pending_break = pending_break or "\n" in token
            continue
        if pending_break and lines[-1] != "":
            lines.append("")
        pending_break = False
        if iob == 1 or iob == 3:  # IOB_STRINGS: "", "I", "O", "B"
            label = types.get(ent_type)
            if label is None:
                label = types[ent_type] = strings[ent_type]
            lines.append(f"{token} _ _ {'I' if iob == 1 else 'B'}-{label}")
        else:
            lines.append(f"{token} _ _ O")
    if lines[-1] != "":
        lines.append("")
    return lines


def write_spacy_and_conll(records: list[dict[str, Any]]) -> tuple[bytes, bytes, int]:
    """The DocBin bytes, the CoNLL bytes, and how many overlapping entities neither holds.

    DocBin: entities in `doc.ents`, stance evidence in `doc.spans["stance"]` (stance label as
    the span label, target as `kb_id_`), record fields in `doc.user_data`.
    CoNLL-2003 layout: `token POS chunk NER` (POS and chunk are `_`), IOB2 tags, a
    `-DOCSTART-` line before each document (same order as corpus.jsonl), a blank line at each
    paragraph break."""
    db = _fast_docbin_class()(store_user_data=True)
    conll: list[str] = []  # one string per document: millions of line strings cost GBs
    dropped = 0
    with _cached_msgpack_encoders():
        for record in records:
            doc, n = _spacy_doc(record)
            dropped += n
            db.add(doc)
            conll.append("\n".join(_conll_lines(doc)))
    # DocBin keeps its strings in a set; sort them so equal input gives equal bytes in any
    # process (joining a claimed version relies on that).
    db.strings = sorted(db.strings)  # type: ignore[assignment]
    return bytes(db.to_bytes()), ("\n".join(conll) + "\n").encode("utf-8"), dropped


def write_docbin(records: list[dict[str, Any]]) -> tuple[bytes, int]:
    docbin, _, dropped = write_spacy_and_conll(records)
    return docbin, dropped


def write_conll(records: list[dict[str, Any]]) -> bytes:
    return write_spacy_and_conll(records)[1]


def _parquet_schema() -> Any:
    import pyarrow as pa

    evidence = pa.list_(pa.struct([("start", pa.int64()), ("end", pa.int64())]))
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("text", pa.string()),
            ("source", pa.string()),
            ("review_status", pa.string()),
            ("layer", pa.string()),
            ("split", pa.string()),
            ("model_version", pa.string()),
            ("annotators", pa.list_(pa.string())),
            (
                "entities",
                pa.list_(
                    pa.struct(
                        [
                            ("start", pa.int64()),
                            ("end", pa.int64()),
                            ("label", pa.string()),
                            ("text", pa.string()),
                            ("score", pa.float64()),
                        ]
                    )
                ),
            ),
            (
                "stances",
                pa.list_(
                    pa.struct(
                        [
                            ("target", pa.string()),
                            ("label", pa.string()),
                            ("score", pa.float64()),
                            ("evidence", evidence),
                        ]
                    )
                ),
            ),
            ("metadata_json", pa.string()),
        ]
    )


def write_parquet(records: list[dict[str, Any]]) -> bytes:
    """One row per document; entities and stances as nested lists; metadata as a JSON string
    (its keys differ between sources)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "doc_id": r["doc_id"],
            "text": r["text"],
            "source": r.get("source"),
            "review_status": r["review_status"],
            "layer": r["layer"],
            "split": r["split"],
            "model_version": r.get("model_version"),
            "annotators": r["annotators"],
            "entities": [
                {k: e.get(k) for k in ("start", "end", "label", "text", "score")}
                for e in r["entities"]
            ],
            "stances": [
                {k: s.get(k) for k in ("target", "label", "score", "evidence")}
                for s in r["stances"]
            ],
            "metadata_json": _json_line(r["metadata"]),
        }
        for r in records
    ]
    table = pa.Table.from_pylist(rows, schema=_parquet_schema())
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """Documents, mentions and stances, and documents by review status, layer and split (every
    status, layer and split listed, zeros included, so readers need not guess)."""
    counts: Counter[str] = Counter()
    counts["documents"] = len(records)
    counts["entities"] = counts["stances"] = 0
    for key in (
        *(f"status_{s}" for s in REVIEW_STATUSES),
        "layer_gold",
        "layer_silver",
        *(f"split_{name}" for name, _ in SPLITS),
    ):
        counts[key] = 0
    for r in records:
        counts[f"status_{r['review_status']}"] += 1
        counts[f"layer_{r['layer']}"] += 1
        counts[f"split_{r['split']}"] += 1
        counts["entities"] += len(r["entities"])
        counts["stances"] += len(r["stances"])
    return dict(sorted(counts.items()))


def _table(header: tuple[str, str], rows: Iterable[tuple[object, object]]) -> list[str]:
    out = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    out += [f"| {a} | {b} |" for a, b in rows]
    return out


def write_datasheet(
    records: list[dict[str, Any]],
    *,
    version: str,
    previous: str | None,
    content_hash_: str,
    code_version: str,
    model_versions: list[str],
    dropped_overlaps: int,
) -> bytes:
    counts = _counts(records)
    status = Counter(r["review_status"] for r in records)
    entity_labels = Counter(e["label"] for r in records for e in r["entities"])
    stance_labels = Counter(s["label"] for r in records for s in r["stances"])
    sources: dict[str, set[str]] = {}
    for r in records:
        rights = (r["metadata"] or {}).get("rights") or "not stated"
        origin = (r["metadata"] or {}).get("source_url") or r.get("source") or "unknown"
        sources.setdefault(str(rights), set()).add(str(origin))
    lines = [
        f"# corpusflow corpus {version}",
        "",
        f"Content hash `{content_hash_}`; built by corpusflow `{code_version}`"
        + (f" on top of {previous}." if previous else " (first release)."),
        "",
        "## Contents",
        "",
        *_table(("review status", "documents"), ((s, status.get(s, 0)) for s in REVIEW_STATUSES)),
        "",
        f"{counts['documents']} documents, {counts.get('entities', 0)} entity mentions, "
        f"{counts.get('stances', 0)} stances. Layers: gold "
        f"{counts.get('layer_gold', 0)} (reviewed or adjudicated by people), silver "
        f"{counts.get('layer_silver', 0)} (machine labels: not yet or not fully reviewed, or "
        "disputed and held from gold). "
        f"Splits by a hash of doc_id (stable across versions): train "
        f"{counts.get('split_train', 0)}, dev {counts.get('split_dev', 0)}, test "
        f"{counts.get('split_test', 0)}.",
        "",
        "### Entity labels",
        "",
        *_table(("label", "mentions"), sorted(entity_labels.items())),
        "",
        "### Stance labels",
        "",
        *_table(("label", "stances"), sorted(stance_labels.items())),
        "",
        "## Sources and rights",
        "",
        "Each document keeps its own rights notice in `metadata.rights`; respect it when reusing "
        "text. Grouped by notice:",
        "",
    ]
    for rights in sorted(sources):
        origins = sorted(sources[rights])
        shown = ", ".join(origins[:10]) + (
            f" and {len(origins) - 10} more" if len(origins) > 10 else ""
        )
        lines.append(f"- **{rights}** ({len(origins)}): {shown}")
    lines += [
        "",
        "## How it was built",
        "",
        "Sources were partitioned and cleaned (banners, embeds, captions, running headers and "
        "page numbers removed, paragraphs re-joined), annotated by machine "
        f"({', '.join(model_versions) or 'no model recorded'}), reviewed in Label Studio where "
        "review was configured, and adjudicated (strict majority; an adjudicator's decision is "
        "final). `review_status` says how far each document got.",
        "",
        "## Files",
        "",
        "- `corpus.jsonl`: one document per line, sorted by doc_id; the reference format.",
        "- `corpus.parquet`: the same rows; entities and stances as nested lists, metadata as "
        "JSON text in `metadata_json`.",
        "- `corpus.spacy`: a spaCy DocBin (tokenised with `spacy.blank('en')`); entities in "
        "`doc.ents`; stance evidence in `doc.spans['stance']` with the stance as the span "
        "label and the target as `span.kb_id_`; `doc.user_data` holds doc_id, review_status, "
        "layer, split, source, model_version and every stance (also those without evidence).",
        "- `corpus.conll`: CoNLL-2003 columns `token _ _ IOB2-tag`, one `-DOCSTART-` per "
        "document in corpus.jsonl order.",
        "- `labels.json`: the label schema; `agreement.json`: inter-annotator agreement.",
        "- `manifest.json`: sha256 and size of every file; `NOTES.md`: changes since the "
        "previous version.",
        "",
        "## Limitations",
        "",
        "- Silver documents carry machine labels only; their errors are the models' errors.",
        "- Disputed documents are in the silver layer with `review_status: disputed`; "
        "documents that fewer annotators than the overlap setting have labelled are there with "
        "`review_status: in_review` and their machine labels.",
        f"- spaCy and CoNLL cannot hold overlapping entities: {dropped_overlaps} overlapping "
        "mention(s) were left out of those two files (kept in JSONL and Parquet); entity "
        "boundaries are widened to whole tokens there.",
        "- Offsets index the cleaned text, not the original source.",
        "- The label set annotators worked with is in `labels.json`.",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _record_digests(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    return {r["doc_id"]: sha256_hex(_json_line(r).encode("utf-8")) for r in records}


def write_notes(
    version: str,
    previous: str | None,
    current: dict[str, str],
    before: dict[str, str],
) -> bytes:
    added = sorted(current.keys() - before.keys())
    removed = sorted(before.keys() - current.keys())
    changed = sorted(k for k in current.keys() & before.keys() if current[k] != before[k])
    lines = [
        f"# Release notes {version}",
        "",
        f"Compared with {previous}." if previous else "First release: every document is new.",
        "",
        f"{len(added)} added, {len(changed)} changed, {len(removed)} removed, "
        f"{len(current) - len(added) - len(changed)} unchanged.",
        "",
    ]
    for title, ids in (("Added", added), ("Changed", changed), ("Removed", removed)):
        lines += [f"## {title}", ""]
        lines += [f"- `{i}`" for i in ids] or ["(none)"]
        lines.append("")
    return "\n".join(lines).encode("utf-8")


# ---------------------------------------------------------------- publishing


def read_latest(store: Store) -> tuple[dict[str, Any] | None, str | None]:
    """The latest pointer and its etag (None, None when nothing was published yet)."""
    try:
        data, etag = store.get_with_etag(LATEST_KEY)
    except NotFound:
        return None, None
    try:
        pointer = LatestPointer.model_validate_json(data)
    except ValidationError as e:
        raise StoreError(
            f"{store.url}/{LATEST_KEY} is not a valid pointer: {_explain(e)}"
        ) from None
    return pointer.model_dump(mode="json"), etag


def read_manifest(store: Store, version: str, expected_sha256: str | None = None) -> Manifest:
    data = store.get_bytes(release_key(version, "manifest.json"))
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
        raise VerificationFailed(
            f"{release_key(version, 'manifest.json')}: sha256 {sha256_hex(data)} is not "
            f"{expected_sha256} recorded in {LATEST_KEY}"
        )
    return Manifest.model_validate_json(data)


def _previous_digests(store: Store, version: str | None) -> dict[str, str]:
    if version is None:
        return {}
    data = store.get_bytes(release_key(version, "corpus.jsonl"))
    return _record_digests(json.loads(line) for line in data.decode("utf-8").splitlines() if line)


def _put_once(store: Store, key: str, data: bytes, content_type: str) -> None:
    """Create `key`; if it exists already it must hold exactly `data` (a joined version)."""
    try:
        store.put_if_absent(key, data, content_type=content_type)
    except PreconditionFailed:
        if sha256_hex(store.get_bytes(key)) != sha256_hex(data):
            raise
    return None


class _Diverged(Exception):
    """A joined version holds other bytes than ours: leave it, try the next number."""


_CONTENT_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".conll": "text/plain; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
    ".spacy": "application/octet-stream",
}


def _content_type(name: str) -> str:
    return _CONTENT_TYPES["." + name.rsplit(".", 1)[-1]]


def publish(
    store: Store,
    records: Iterable[dict[str, Any]],
    *,
    label_schema: dict[str, Any],
    agreement: dict[str, Any],
    code_version: str,
    model_versions: list[str],
    notes_extra: dict[str, Any] | None = None,
    max_attempts: int = 8,
) -> PublishResult:
    """Publish `records` as the next version, or nothing when `latest` has the same content."""
    canon = canonical_records(records)
    corpus_jsonl = _jsonl(canon)
    chash = sha256_hex(corpus_jsonl)
    fixed_files: dict[str, bytes] | None = None
    dropped = 0
    publisher = uuid.uuid4().hex
    diverged: set[str] = set()

    for _attempt in range(max_attempts):
        latest, latest_etag = read_latest(store)
        if latest is not None and latest.get("content_hash") == chash:
            manifest = read_manifest(store, latest["version"], latest.get("manifest_sha256"))
            return PublishResult(version=latest["version"], created=False, manifest=manifest)
        previous = latest["version"] if latest else None

        if fixed_files is None:  # built once, only when there is something to publish
            docbin, conll, dropped = write_spacy_and_conll(canon)
            fixed_files = {
                "corpus.jsonl": corpus_jsonl,
                "corpus.spacy": docbin,
                "corpus.conll": conll,
                "corpus.parquet": write_parquet(canon),
                "labels.json": encode_json(label_schema),
                "agreement.json": encode_json(agreement),
            }

        version = _claim(store, publisher, chash, previous, skip=diverged)
        if version is None:
            continue  # latest moved while we looked for a number
        before = _previous_digests(store, previous)
        files = dict(fixed_files)
        files["README.md"] = write_datasheet(
            canon,
            version=version,
            previous=previous,
            content_hash_=chash,
            code_version=code_version,
            model_versions=model_versions,
            dropped_overlaps=dropped,
        )
        notes = write_notes(version, previous, _record_digests(canon), before)
        if notes_extra:
            notes += b"## Details\n\n```json\n" + encode_json(notes_extra) + b"```\n"
        files["NOTES.md"] = notes
        try:
            manifest, manifest_bytes = _write_version(
                store,
                version,
                files,
                chash=chash,
                code_version=code_version,
                model_versions=model_versions,
                counts=_counts(canon),
                previous=previous,
            )
        except _Diverged:
            diverged.add(version)
            continue
        pointer = LatestPointer(
            version=version,
            manifest_sha256=sha256_hex(manifest_bytes),
            content_hash=chash,
            previous=previous,
            published_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ).model_dump(mode="json")
        try:
            if latest_etag is None:
                store.put_json(LATEST_KEY, pointer, if_absent=True)
            else:
                store.put_json(LATEST_KEY, pointer, if_match=latest_etag)
        except PreconditionFailed:
            continue  # someone published in between; our version is an orphan, start over
        return PublishResult(version=version, created=True, manifest=manifest)
    raise PublishError(f"gave up publishing to {store.url} after {max_attempts} lost races")


def _claim(
    store: Store, publisher: str, chash: str, previous: str | None, *, skip: set[str]
) -> str | None:
    """Create or join the claim of the next version built on `previous`; None when latest
    moved on while we searched (the caller starts over)."""
    n = version_number(previous) + 1 if previous else 1
    while True:
        version = version_name(n)
        if version in skip:
            n += 1
            continue
        claim = {
            "version": version,
            "content_hash": chash,
            "previous": previous,
            "publisher": publisher,
            "claimed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:
            store.put_json(release_key(version, "claim.json"), claim, if_absent=True)
            return version
        except PreconditionFailed:
            pass
        try:
            other = store.get_json(release_key(version, "claim.json"))
        except NotFound:
            continue  # deleted by hand in between; try the same number again
        if other.get("content_hash") == chash and other.get("previous") == previous:
            return version  # same input on the same base: join (or resume) that version
        latest, _ = read_latest(store)
        if (latest["version"] if latest else None) != previous:
            return None
        n += 1


def _write_version(
    store: Store,
    version: str,
    files: dict[str, bytes],
    *,
    chash: str,
    code_version: str,
    model_versions: list[str],
    counts: dict[str, int],
    previous: str | None,
) -> tuple[Manifest, bytes]:
    for name in DATA_FILES:
        try:
            _put_once(store, release_key(version, name), files[name], _content_type(name))
        except PreconditionFailed as e:
            raise _Diverged(version) from e
    manifest = Manifest(
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        content_hash=chash,
        code_version=code_version,
        model_versions=list(model_versions),
        counts=counts,
        files=[
            ManifestFile(path=name, sha256=sha256_hex(files[name]), size=len(files[name]))
            for name in DATA_FILES
        ],
        previous=previous,
    )
    manifest_bytes = encode_json(manifest.model_dump(mode="json"))
    manifest_key = release_key(version, "manifest.json")
    try:
        store.put_if_absent(manifest_key, manifest_bytes, content_type="application/json")
    except PreconditionFailed:
        # joined: another publisher wrote the manifest first; theirs stands if it lists our files
        manifest_bytes = store.get_bytes(manifest_key)
        theirs = Manifest.model_validate_json(manifest_bytes)
        if theirs.files != manifest.files or theirs.content_hash != chash:
            raise _Diverged(version) from None
        manifest = theirs
    _verify(store, version, manifest)
    return manifest, manifest_bytes


def _verify(store: Store, version: str, manifest: Manifest) -> None:
    for f in manifest.files:
        data = store.get_bytes(release_key(version, f.path))
        if len(data) != f.size or sha256_hex(data) != f.sha256:
            raise VerificationFailed(
                f"{store.url}/{release_key(version, f.path)}: read back {len(data)} bytes with "
                f"sha256 {sha256_hex(data)}, wrote {f.size} bytes with {f.sha256}"
            )


def list_versions(store: Store) -> Iterator[str]:
    """Versions that have a manifest, oldest first (orphans of lost races included)."""
    for key in store.list(f"{RELEASES}/v"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "manifest.json":
            yield parts[1]
