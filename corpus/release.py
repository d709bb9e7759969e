"""Publish a versioned release to the store as content-addressed parts that versions share, read
merge-on-read: a new version keeps the previous version's parts and writes only what was added
or changed, and `releases/latest.json` moves only after the new version's manifest is written
and every object it names is checked.

Layout 3 (layout-1 releases, whole files under `releases/<version>/`, and layout-2 releases,
shards without updates, still read):

- `releases/objects/<sha256[:2]>/<sha256>.<ext>`: every file of every version, named by its
  content, written create-only and never changed: JSONL, CoNLL, Parquet and spaCy DocBin parts,
  each version's live index, and the small files (labels, agreement, datasheet, notes).
- `releases/<version>/claim.json` and `releases/<version>/manifest.json`: the version's claim
  and its manifest, listing each object with its sha256 and size, its base shards and updates.

Base shards hold the documents by ranges of a shard key, the first 8 bytes of sha256(doc_id).
A version on top of a layout-3 version keeps all of its base shards and updates as they are and
writes the documents added or changed since in new update parts (`update-<sha256[:16]>`, in key
order, `shard_docs` a part), plus its live index (`live.parquet`): one row per live document
naming the part and position of its row. A changed document's old row and a removed document's
row stay where they are, dead: the readers (`corpus.pull`, and the datasheet's one-liners
through `row_id`) keep only the rows the index names. When the dead rows would pass
COMPACT_DEAD_SHARE of the live ones (or the updates MAX_UPDATES), the version is compacted
instead: base shards throughout, over the previous ranges (a range grown past twice `shard_docs`
split), a range whose documents did not change holding the same bytes and naming the same
objects. A publish spills the canonical records to temporary files by key, then builds one part
at a time, so memory holds one part's formats (and a few hundred bytes a document of digests
and index), not the corpus.

How concurrent publishers are kept apart (all through conditional writes, no locks):

1. Read `releases/latest.json` and its etag. Same content hash as ours: nothing to publish.
2. Claim the next number after latest: create `releases/<version>/claim.json` (create-only),
   holding our content hash and the version we build on. If the claim exists already and names
   the same content hash and the same previous version, we *join* it: the version's objects
   are deterministic for a given input and base, so whoever writes an object first wins and
   the others check that the stored bytes are theirs. This is also how a publish that crashed
   half-way is resumed by the next run. A claim for other content (or another base) makes us
   try the next number.
   (The parts and the index are written just before the claim, as they depend only on the
   base version.)
3. Write the parts, the index and small files (create-only, content-addressed), reading each
   back to check its sha256; then `manifest.json`, create-only.
4. Move `latest.json` with If-Match on the etag read in step 1 (create-only when there was none).
   Losing that race means someone else published in between: start again from step 1; our
   version stays behind as an orphan that `latest` never names. History stays linear: every
   version `latest` has named built on the version named before it.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import heapq
import io
import json
import math
import tempfile
import threading
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import ValidationError

from corpus.store import NotFound, PreconditionFailed, Store, StoreError, encode_json
from schemas.release import (
    LatestPointer,
    ReleaseFile,
    ReleaseManifest,
    ReleaseRecord,
    ReleaseShard,
    ReleaseUpdate,
)

RELEASES = "releases"
LATEST_KEY = f"{RELEASES}/latest.json"
OBJECTS = f"{RELEASES}/objects"
LAYOUT: Literal[3] = 3
# Bump when a shard writer changes its bytes for the same records: shards are then rebuilt
# instead of reused from a version the older writers made. 2: the row_id of every row in the
# Parquet shards and in the DocBins' user_data (what the live index names).
FORMAT_VERSION = 2
# The live index: one row per live document (row_id, doc_id, part, position in the part,
# sha256 of its JSONL line and of its CoNLL block), in release order.
INDEX_PATH = "live.parquet"
# Compaction. Rows no longer live (superseded or removed documents) stay in the base shards and
# earlier updates, and every reader downloads and drops them; a version whose dead rows would
# pass this share of its live rows rewrites the affected ranges as fresh base shards instead.
# At 15% a reader never fetches more than 1.15x the live rows, and at 1% changed per version
# a compaction (which rewrites about every range) comes every ~15 versions: writes average
# about 1% + 100%/15 of a full version, against 47% for rewriting touched shards each time.
COMPACT_DEAD_SHARE = 0.15
# ... and when the update parts would pass this many (many tiny versions each add one), so the
# objects a reader opens stay within a few dozen of the base shards.
MAX_UPDATES = 32
# Documents per shard aimed at. Fewer make a small change cheaper (a share p of documents
# changed at random touches about 1 - (1 - p) ** shard_docs of the shards), more make fewer
# objects; bench/release.py measures both sides.
DEFAULT_SHARD_DOCS = 64
KEY_SPACE = 1 << 64
REVIEW_STATUSES = ("machine", "in_review", "reviewed", "adjudicated", "disputed", "source_changed")
# Human-checked documents make the gold layer. Machine-only documents, documents still short of
# their annotators (in_review) and disputed ones (held from gold until someone decides, never
# dropped) make the silver layer.
GOLD_STATUSES = frozenset({"reviewed", "adjudicated"})
SPLITS = (("train", 80), ("dev", 10), ("test", 10))

# the shard formats, in the order the manifest lists them: extension, and where `pull` puts a
# shard (the JSONL and CoNLL shards are parts of one file each, concatenated in key order)
SHARD_FORMATS: dict[str, tuple[str, Callable[[str], str]]] = {
    "jsonl": ("jsonl", lambda start: "corpus.jsonl"),
    "conll": ("conll", lambda start: "corpus.conll"),
    "parquet": ("parquet", lambda start: f"parquet/{start}.parquet"),
    "spacy": ("spacy", lambda start: f"spacy/{start}.spacy"),
}
SMALL_FILES = ("labels.json", "agreement.json", "README.md", "NOTES.md")


class PublishError(StoreError):
    """A release could not be published (bad records, or too many lost races)."""


class VerificationFailed(PublishError):
    """An object read back from the store is not what was written."""


@dataclass(frozen=True)
class PublishResult:
    version: str
    created: bool
    manifest: ReleaseManifest


def version_name(n: int) -> str:
    return f"v{n:04d}"


def version_number(version: str) -> int:
    if not (version.startswith("v") and version[1:].isdigit()):
        raise ValueError(f"not a release version: {version!r}")
    return int(version[1:])


def release_key(version: str, name: str) -> str:
    return f"{RELEASES}/{version}/{name}"


def object_key(sha256: str, ext: str) -> str:
    return f"{OBJECTS}/{sha256[:2]}/{sha256}.{ext}"


def file_key(version: str, entry: ReleaseFile) -> str:
    """Where a manifest entry's bytes are: its object (layout 2) or the version's folder."""
    return entry.object if entry.object is not None else release_key(version, entry.path)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shard_key(doc_id: str) -> int:
    """The first 8 bytes of sha256(doc_id): where a document sits, in every version."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big")


# ---------------------------------------------------------------- records


def split_of(doc_id: str) -> str:
    """train/dev/test (80/10/10) from a hash of the doc_id alone: stable across versions."""
    bucket = shard_key(doc_id) % 100
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


# ---------------------------------------------------------------- writers


# spaCy's vocabulary and its tokenizer's cache keep every string a Doc ever held: most of what a
# publish kept per document (about 1 KB each). The blank pipeline is made anew between parts
# once its vocabulary passes this many strings; tokens do not depend on what the vocabulary held
# before, nor do the DocBins (they carry their own strings), so the bytes stay the same.
BLANK_MAX_STRINGS = 20_000


@lru_cache(maxsize=1)
def _blank_en() -> Any:
    import spacy

    return spacy.blank("en")


def _bounded_blank_en() -> None:
    if len(_blank_en().vocab.strings) > BLANK_MAX_STRINGS:
        _blank_en.cache_clear()


def _spacy_doc(record: dict[str, Any], part: str = "") -> tuple[Any, int]:
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
            "row_id": row_id(part, record["doc_id"]),
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


def write_spacy_and_conll(
    records: list[dict[str, Any]], part: str = ""
) -> tuple[bytes, bytes, int]:
    """The DocBin bytes, the CoNLL bytes, and how many overlapping entities neither holds.

    DocBin: entities in `doc.ents`, stance evidence in `doc.spans["stance"]` (stance label as
    the span label, target as `kb_id_`), record fields in `doc.user_data`.
    CoNLL-2003 layout: `token POS chunk NER` (POS and chunk are `_`), IOB2 tags, a
    `-DOCSTART-` line before each document (same order as corpus.jsonl), a blank line at each
    paragraph break. `part`: the shard or update the records go in (their row_id)."""
    docbin, blocks, dropped = _spacy_and_conll_blocks(records, part)
    return docbin, b"".join(blocks), sum(dropped)


def _spacy_and_conll_blocks(
    records: list[dict[str, Any]], part: str
) -> tuple[bytes, list[bytes], list[int]]:
    """As `write_spacy_and_conll`, with the CoNLL bytes as one block per document and the
    overlaps left out per document."""
    from spacy.tokens import DocBin

    _bounded_blank_en()
    db = DocBin(store_user_data=True)
    conll: list[bytes] = []  # one block per document, not one per line
    dropped: list[int] = []
    with _cached_msgpack_encoders():
        for record in records:
            doc, n = _spacy_doc(record, part)
            dropped.append(n)
            db.add(doc)
            conll.append(("\n".join(_conll_lines(doc)) + "\n").encode("utf-8"))
    # DocBin keeps its strings in a set; sort them so equal input gives equal bytes in any
    # process (joining a claimed version relies on that).
    db.strings = sorted(db.strings)  # type: ignore[assignment]
    return bytes(db.to_bytes()), conll, dropped


CONLL_DOCSTART = b"-DOCSTART- -X- -X- O\n"


def conll_blocks(data: bytes) -> list[bytes]:
    """A CoNLL shard cut into its documents' blocks (each from its `-DOCSTART-` line)."""
    if not data:
        return []
    cuts = [0]
    at = data.find(b"\n" + CONLL_DOCSTART)
    while at != -1:
        cuts.append(at + 1)
        at = data.find(b"\n" + CONLL_DOCSTART, at + 1)
    return [data[a:b] for a, b in zip(cuts, [*cuts[1:], len(data)], strict=True)]


def write_docbin(records: list[dict[str, Any]], part: str = "") -> tuple[bytes, int]:
    docbin, _, dropped = write_spacy_and_conll(records, part)
    return docbin, dropped


def write_conll(records: list[dict[str, Any]]) -> bytes:
    return write_spacy_and_conll(records)[1]


def row_id(part: str, doc_id: str) -> str:
    """Names one stored row: the part (a base shard's start or an update's name) holding it
    and its doc_id. A changed document's old and new rows differ in it; the live index lists
    the live ones, so a reader keeps a row when its row_id is there."""
    return f"{part}/{doc_id}"


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
            ("row_id", pa.string()),
        ]
    )


def write_parquet(records: list[dict[str, Any]], part: str = "") -> bytes:
    """One row per document; entities and stances as nested lists; metadata as a JSON string
    (its keys differ between sources); the row_id the live index names."""
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
            "row_id": row_id(part, r["doc_id"]),
        }
        for r in records
    ]
    table = pa.Table.from_pylist(rows, schema=_parquet_schema())
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


# ---------------------------------------------------------------- what the version holds


SHOWN_ORIGINS = 10  # origins the datasheet names per rights notice (the first, sorted)


@dataclass
class _Origins:
    """The distinct origins under one rights notice, in about 16 bytes a document: a 128-bit
    digest of each (their distinct number, counted at the end; a collision among a million
    has odds of about 1e-27) and the SHOWN_ORIGINS first in sort order, as strings."""

    digests: bytearray = field(default_factory=bytearray)
    first: list[str] = field(default_factory=list)

    def add(self, origin: str) -> None:
        self.digests += hashlib.blake2b(origin.encode("utf-8"), digest_size=16).digest()
        if origin in self.first:
            return
        if len(self.first) < SHOWN_ORIGINS or origin < self.first[-1]:
            bisect.insort(self.first, origin)
            del self.first[SHOWN_ORIGINS:]

    def __len__(self) -> int:
        import numpy as np

        pairs = np.frombuffer(bytes(self.digests), dtype=np.uint64).reshape(-1, 2)
        return int(len(np.unique(pairs, axis=0)))


@dataclass
class _Stats:
    """Counts for the manifest and the datasheet, gathered one record at a time."""

    counts: Counter[str] = field(default_factory=Counter)
    entity_labels: Counter[str] = field(default_factory=Counter)
    stance_labels: Counter[str] = field(default_factory=Counter)
    sources: dict[str, _Origins] = field(default_factory=dict)

    def add(self, r: dict[str, Any]) -> None:
        self.counts["documents"] += 1
        self.counts[f"status_{r['review_status']}"] += 1
        self.counts[f"layer_{r['layer']}"] += 1
        self.counts[f"split_{r['split']}"] += 1
        self.counts["entities"] += len(r["entities"])
        self.counts["stances"] += len(r["stances"])
        self.entity_labels.update(e["label"] for e in r["entities"])
        self.stance_labels.update(s["label"] for s in r["stances"])
        rights = (r["metadata"] or {}).get("rights") or "not stated"
        origin = (r["metadata"] or {}).get("source_url") or r.get("source") or "unknown"
        self.sources.setdefault(str(rights), _Origins()).add(str(origin))

    def as_counts(self) -> dict[str, int]:
        """Documents, mentions and stances, and documents by review status, layer and split
        (every status, layer and split listed, zeros included, so readers need not guess)."""
        out = {
            "documents": 0,
            "entities": 0,
            "stances": 0,
            **{f"status_{s}": 0 for s in REVIEW_STATUSES},
            "layer_gold": 0,
            "layer_silver": 0,
            **{f"split_{name}": 0 for name, _ in SPLITS},
        }
        out.update(self.counts)
        return dict(sorted(out.items()))


def _table(header: tuple[str, str], rows: Iterable[tuple[object, object]]) -> list[str]:
    out = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    out += [f"| {a} | {b} |" for a, b in rows]
    return out


def _reading_recipes(version: str, store_url: str, parquet_shards: int) -> list[str]:
    """How to read the release with common tools, one line each (the datasheet's section).
    The Parquet and spaCy parts hold every stored row, live or not (merge on read): each
    recipe keeps the rows whose `row_id` the live index lists."""
    here = f"data/{version}"
    live = f"{here}/{INDEX_PATH}"
    s3 = store_url if store_url.startswith("s3://") else "s3://BUCKET/PREFIX"
    manifest = f"{s3}/{release_key(version, 'manifest.json')}"
    return [
        "## Reading it",
        "",
        f"`corpusflow pull {version} --dest data` writes `{here}/`: `corpus.jsonl` and "
        "`corpus.conll` (the live documents only), `parquet/*.parquet` and `spacy/*.spacy` "
        f"({parquet_shards} part(s): base shards by key, then the updates made since the last "
        f"compaction), `{INDEX_PATH}` and the small files, every one checked against "
        "`manifest.json`. A document changed or removed since its base shard was written still "
        "has its old row in a base shard or an earlier update, so read the Parquet and spaCy "
        f"parts through `{INDEX_PATH}`, which lists the `row_id` (part/doc_id) of every live "
        "row: the lines below do. No corpusflow is needed:",
        "",
        "| tool | one line |",
        "|---|---|",
        f'| live rows (for datasets and spaCy) | `live = set(pd.read_parquet("{live}", '
        'columns=["row_id"])["row_id"])` |',
        f'| pandas | `pd.read_parquet("{here}/parquet").merge(pd.read_parquet("{live}", '
        'columns=["row_id"]))` |',
        f'| Hugging Face datasets | `load_dataset("parquet", data_files="{here}/parquet/*.parquet",'
        ' split="train").filter(lambda r: r["row_id"] in live)` |',
        f"| DuckDB | `duckdb.sql(\"SELECT * FROM '{here}/parquet/*.parquet' WHERE row_id IN "
        f"(SELECT row_id FROM '{live}')\")` |",
        f'| Polars | `pl.read_parquet("{here}/parquet/*.parquet").join(pl.read_parquet("{live}",'
        ' columns=["row_id"]), on="row_id", how="semi")` |',
        f'| JSONL | `load_dataset("json", data_files="{here}/corpus.jsonl", split="train")` |',
        '| spaCy | `docs = [d for p in sorted(Path("' + here + '/spacy").glob("*.spacy")) '
        'for d in DocBin().from_disk(p).get_docs(nlp.vocab) if d.user_data["row_id"] in live]` |',
        "",
        "Straight from the store with read-only keys: the Parquet parts of this version are "
        "the objects `manifest.json` lists under `parquet/`, its live index the one listed as "
        f"`{INDEX_PATH}`. With `fs = s3fs.S3FileSystem(key=..., secret=..., endpoint_url=...)` "
        "(and `opts` the same three as a dict for `storage_options`):",
        "",
        "```python",
        f'm = json.load(fs.open("{manifest}")); files = ["{s3}/" + f["object"] for f in m["files"]'
        f' if f["path"].startswith("parquet/")]; index = "{s3}/" + next(f["object"] for f in '
        f'm["files"] if f["path"] == "{INDEX_PATH}")',
        'live = set(pd.read_parquet(index, columns=["row_id"], storage_options=opts)["row_id"])',
        'load_dataset("parquet", data_files=files, storage_options=opts, split="train")'
        '.filter(lambda r: r["row_id"] in live)',
        "duckdb.register_filesystem(fs); duckdb.read_parquet(files).join("
        'duckdb.read_parquet(index).select("row_id"), "row_id", how="semi")',
        "pl.read_parquet(files, storage_options=popts).join(pl.read_parquet(index, "
        'columns=["row_id"], storage_options=popts), on="row_id", how="semi")'
        '  # popts = {"aws_access_key_id": ..., '
        '"aws_secret_access_key": ..., "aws_endpoint_url": ...}',
        "```",
        "",
    ]


def write_datasheet(
    stats: _Stats,
    *,
    version: str,
    previous: str | None,
    content_hash_: str,
    code_version: str,
    model_versions: list[str],
    dropped_overlaps: int,
    store_url: str = "",
    parquet_shards: int = 1,
) -> bytes:
    counts = stats.as_counts()
    lines = [
        f"# corpusflow corpus {version}",
        "",
        f"Content hash `{content_hash_}`; built by corpusflow `{code_version}`"
        + (f" on top of {previous}." if previous else " (first release)."),
        "",
        "## Contents",
        "",
        *_table(
            ("review status", "documents"), ((s, counts[f"status_{s}"]) for s in REVIEW_STATUSES)
        ),
        "",
        f"{counts['documents']} documents, {counts['entities']} entity mentions, "
        f"{counts['stances']} stances. Layers: gold "
        f"{counts['layer_gold']} (reviewed or adjudicated by people), silver "
        f"{counts['layer_silver']} (machine labels: not yet or not fully reviewed, or "
        "disputed and held from gold). "
        f"Splits by a hash of doc_id (stable across versions): train "
        f"{counts['split_train']}, dev {counts['split_dev']}, test "
        f"{counts['split_test']}.",
        "",
        "### Entity labels",
        "",
        *_table(("label", "mentions"), sorted(stats.entity_labels.items())),
        "",
        "### Stance labels",
        "",
        *_table(("label", "stances"), sorted(stats.stance_labels.items())),
        "",
        "## Sources and rights",
        "",
        "Each document keeps its own rights notice in `metadata.rights`; respect it when reusing "
        "text. Grouped by notice:",
        "",
    ]
    for rights in sorted(stats.sources):
        origins = stats.sources[rights]
        distinct = len(origins)
        shown = ", ".join(origins.first) + (
            f" and {distinct - SHOWN_ORIGINS} more" if distinct > SHOWN_ORIGINS else ""
        )
        lines.append(f"- **{rights}** ({distinct}): {shown}")
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
        "Documents are in base shards by a hash of doc_id (the first 8 bytes of its sha256), "
        "then in update parts for those added or changed since the shards were written; every "
        "format keeps the same order, part by part. Parts are the very objects earlier versions "
        "had; once the rows no longer live pass "
        f"{COMPACT_DEAD_SHARE:.0%} of the live ones (or there are more than {MAX_UPDATES} "
        "updates), a compaction rewrites the affected ranges as fresh base shards.",
        "",
        "- `corpus.jsonl`: one document per line; the reference format.",
        "- `parquet/*.parquet`: the same rows (and rows no longer live: see `live.parquet`); "
        "entities and stances as nested lists, metadata as JSON text in `metadata_json`, "
        "`row_id` naming the row.",
        f"- `{INDEX_PATH}`: the live index, one row per document: `row_id`, `doc_id`, the "
        "`part` and `position` of its row, the sha256 of its JSONL line and of its CoNLL block.",
        "- `spacy/*.spacy`: spaCy DocBins (tokenised with `spacy.blank('en')`); entities in "
        "`doc.ents`; stance evidence in `doc.spans['stance']` with the stance as the span "
        "label and the target as `span.kb_id_`; `doc.user_data` holds doc_id, row_id, "
        "review_status, layer, split, source, model_version and every stance (also those "
        "without evidence).",
        "- `corpus.conll`: CoNLL-2003 columns `token _ _ IOB2-tag`, one `-DOCSTART-` per "
        "document in corpus.jsonl order.",
        "- `labels.json`: the label schema; `agreement.json`: inter-annotator agreement.",
        "- `manifest.json`: sha256, size and store object of every file and shard; "
        "`NOTES.md`: changes since the previous version.",
        "",
        *_reading_recipes(version, store_url, parquet_shards),
        "## Limitations",
        "",
        "- Silver documents carry machine labels only; their errors are the models' errors.",
        "- Disputed documents are in the silver layer with `review_status: disputed`; "
        "documents that fewer annotators than the overlap setting have labelled are there with "
        "`review_status: in_review` and their machine labels; documents whose source was "
        "edited after review are there with `review_status: source_changed` and their machine "
        "labels until the new text is reviewed.",
        f"- spaCy and CoNLL cannot hold overlapping entities: {dropped_overlaps} overlapping "
        "mention(s) were left out of those two formats (kept in JSONL and Parquet); entity "
        "boundaries are widened to whole tokens there.",
        "- Offsets index the cleaned text, not the original source.",
        "- The label set annotators worked with is in `labels.json`.",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def write_notes(
    version: str,
    previous: str | None,
    *,
    documents: int,
    added: Collection[str],
    changed: Collection[str],
    removed: Collection[str],
) -> bytes:
    """The release notes. The id lists are read once, in the order given (sorted), and may be
    lazy: a first version's notes name every document, from the sorted runs on disk."""
    out = io.StringIO()
    out.write(
        "\n".join(
            [
                f"# Release notes {version}",
                "",
                f"Compared with {previous}."
                if previous
                else "First release: every document is new.",
                "",
                f"{len(added)} added, {len(changed)} changed, {len(removed)} removed, "
                f"{documents - len(added) - len(changed)} unchanged.",
                "",
            ]
        )
    )
    for title, ids in (("Added", added), ("Changed", changed), ("Removed", removed)):
        out.write(f"\n## {title}\n")
        empty = True
        for i in ids:
            out.write(f"\n- `{i}`")
            empty = False
        if empty:
            out.write("\n(none)")
        out.write("\n")
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------- spilling by shard key


class _Spill:
    """Canonical JSON lines spilled to 256 temporary files by the top byte of their shard key,
    so the shards can be built in key order while memory holds one file's lines at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[int, IO[str]] = {}

    def add(self, key: int, line: str) -> None:
        bucket = key >> 56
        f = self._files.get(bucket)
        if f is None:
            f = self._files[bucket] = open(  # noqa: SIM115 - closed in close()
                self.folder / f"{bucket:02x}.tsv", "a", encoding="utf-8"
            )
        f.write(f"{key:016x}\t{line}\n")

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __iter__(self) -> Iterator[tuple[int, str]]:
        """(key, line) in key order (a line's JSON has no raw newline or tab in it)."""
        self.close()
        for bucket in range(256):
            path = self.folder / f"{bucket:02x}.tsv"
            if not path.exists():
                continue
            with open(path, encoding="utf-8") as f:
                rows = sorted(tuple(row.rstrip("\n").split("\t", 1)) for row in f)
            for key, line in rows:
                yield int(key, 16), line


# (doc_id, line digest) pairs a publish sorts in memory before writing them to a run file:
# the runs, merged, give the documents in doc_id order for the content hash, the comparison
# with the previous live index and the notes, at about 100 bytes a pair while a run fills.
SORT_RUN_DOCS = 20_000


class _IdRuns:
    """Each document's (doc_id, line digest) in sorted run files, read back merged in doc_id
    order: UTF-8 byte order, which is code point order, the order Python sorts str in."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs: list[Path] = []
        self.n = 0
        self._buffer: list[tuple[bytes, bytes]] = []

    def add(self, doc_id: str, digest: bytes) -> None:
        self._buffer.append((doc_id.encode("utf-8"), digest))
        self.n += 1
        if len(self._buffer) >= SORT_RUN_DOCS:
            self.close()

    def close(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        path = self.folder / f"ids-{len(self.runs):05d}.run"
        with open(path, "wb") as f:
            for doc_id, digest in self._buffer:
                f.write(len(doc_id).to_bytes(4, "big") + doc_id + digest)
        self.runs.append(path)
        self._buffer = []

    @staticmethod
    def _read(path: Path) -> Iterator[tuple[bytes, bytes]]:
        with open(path, "rb", buffering=1 << 16) as f:
            while head := f.read(4):
                yield f.read(int.from_bytes(head, "big")), f.read(32)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """(doc_id, digest) in doc_id order; a doc_id given twice raises PublishError."""
        self.close()
        last = None
        for doc_id, digest in heapq.merge(*(self._read(p) for p in self.runs)):
            if doc_id == last:
                raise PublishError(
                    f"duplicate doc_id {doc_id.decode('utf-8')!r} in release records"
                )
            last = doc_id
            yield doc_id.decode("utf-8"), digest


class _Ids(Collection[str]):
    """The doc_ids of the input, sorted, read from the runs when iterated (for the notes)."""

    def __init__(self, runs: _IdRuns) -> None:
        self.runs = runs

    def __len__(self) -> int:
        return self.runs.n

    def __iter__(self) -> Iterator[str]:
        return (doc_id for doc_id, _ in self.runs)

    def __contains__(self, doc_id: object) -> bool:
        return any(d == doc_id for d in self)


@dataclass
class _Input:
    """What one pass over the records leaves, in about 50 bytes a document: the spill, the
    (doc_id, line digest) runs, the sorted shard keys (a uint64 array) and the statistics."""

    spill: _Spill
    ids: _IdRuns
    keys: Any  # numpy uint64, sorted
    stats: _Stats
    content_hash: str

    def __len__(self) -> int:
        return self.ids.n

    def by_id(self) -> Iterator[tuple[str, bytes]]:
        return iter(self.ids)


def _read_input(records: Iterable[dict[str, Any]], folder: Path) -> _Input:
    import numpy as np

    spill = _Spill(folder)
    ids = _IdRuns(folder)
    keys = array("Q")
    stats = _Stats()
    try:
        for raw in records:
            record = _canonical_record(raw)
            doc_id = record["doc_id"]
            line = _json_line(record)
            ids.add(doc_id, hashlib.sha256(line.encode("utf-8")).digest())
            key = shard_key(doc_id)
            keys.append(key)
            spill.add(key, line)
            stats.add(record)
    finally:
        spill.close()
    ids.close()
    sorted_keys = np.sort(np.frombuffer(keys, dtype=np.uint64))
    return _Input(spill, ids, sorted_keys, stats, _sorted_content_hash(ids))


def _sorted_content_hash(pairs: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for doc_id, digest in pairs:
        h.update(doc_id.encode("utf-8") + b"\0" + digest)
    return h.hexdigest()


def content_hash(digests: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> str:
    """sha256 over (doc_id, sha256 of its canonical JSON line) in doc_id order: the same for
    the same records whatever their order, the shard layout or the version."""
    pairs = digests.items() if isinstance(digests, Mapping) else digests
    return _sorted_content_hash(sorted(pairs))


def _keys_between(keys: Any, start: int, end: int) -> int:
    """How many of the sorted keys are in [start, end) (end may be KEY_SPACE, past uint64)."""
    import numpy as np

    lo = int(np.searchsorted(keys, np.uint64(start), side="left"))
    hi = len(keys) if end >= KEY_SPACE else int(np.searchsorted(keys, np.uint64(end), "left"))
    return hi - lo


def shard_starts(keys: Any, shard_docs: int, previous: ReleaseManifest | None = None) -> list[int]:
    """The first key of each shard: the previous version's ranges when it has them (even
    split into `ceil(n / shard_docs)` ranges for a first version), each range holding more
    than twice `shard_docs` documents split into equal parts. `keys`: sorted shard keys (a
    list or a uint64 array)."""
    import numpy as np

    keys = np.asarray(keys, dtype=np.uint64)
    if previous is not None and previous.shards:
        starts = [int(s.start, 16) for s in previous.shards]
    else:
        parts = max(1, math.ceil(len(keys) / shard_docs))
        starts = [i * KEY_SPACE // parts for i in range(parts)]
    out: list[int] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else KEY_SPACE
        n = _keys_between(keys, start, end)
        parts = math.ceil(n / shard_docs) if n > 2 * shard_docs else 1
        out += [start + j * (end - start) // parts for j in range(parts)]
    return out


# ---------------------------------------------------------------- writing objects


_CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "conll": "text/plain; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "spacy": "application/octet-stream",
}


def _put_object(store: Store, key: str, data: bytes, sha256: str) -> None:
    """Create a content-addressed object (or find it there already) and read it back: the
    key names the content, so a stored object that does not hash to its name is damage."""
    try:
        store.put_if_absent(key, data, content_type=_CONTENT_TYPES[key.rsplit(".", 1)[-1]])
    except PreconditionFailed:
        pass  # written by an earlier version, a joined publisher or a crashed publish
    back = store.get_bytes(key)
    if len(back) != len(data) or sha256_hex(back) != sha256:
        raise VerificationFailed(
            f"{store.url}/{key}: read back {len(back)} bytes with sha256 {sha256_hex(back)}, "
            f"wrote {len(data)} bytes with {sha256}"
        )


class _Writer:
    """Writes objects on a few threads (S3 round trips overlap) with a bounded number in
    flight, so memory holds at most `window` objects' bytes."""

    def __init__(self, store: Store, workers: int) -> None:
        self.store = store
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="publish")
        self.window = 2 * max(1, workers)
        self.pending: list[Future[None]] = []
        self.written = 0  # bytes of the objects this publish wrote or confirmed
        self.objects = 0

    def put(self, data: bytes, ext: str, path: str) -> ReleaseFile:
        sha = sha256_hex(data)
        key = object_key(sha, ext)
        while len(self.pending) >= self.window:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(_put_object, self.store, key, data, sha))
        self.written += len(data)
        self.objects += 1
        return ReleaseFile(path=path, sha256=sha, size=len(data), object=key)

    def drain(self) -> None:
        while self.pending:
            self.pending.pop(0).result()

    def close(self) -> None:
        for f in self.pending:
            f.cancel()
        self.pool.shutdown(wait=True)


# ---------------------------------------------------------------- the live index

# one live row of a part: doc_id, position in the part, sha256 of its JSONL line, sha256 of its
# CoNLL block, overlapping entities its DocBin and CoNLL leave out
_Row = tuple[str, int, bytes, bytes, int]


def _index_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("row_id", pa.string()),
            ("doc_id", pa.string()),
            ("part", pa.string()),
            ("position", pa.int32()),
            ("record_sha256", pa.binary(32)),
            ("conll_sha256", pa.binary(32)),
            ("dropped_overlaps", pa.int32()),
        ]
    )


def _rows_schema() -> Any:
    """A part's live rows as the publish holds them (a record batch, ~100 bytes a row)."""
    import pyarrow as pa

    return pa.schema([f for f in _index_schema() if f.name not in ("row_id", "part")])


def rows_batch(rows: Iterable[_Row]) -> Any:
    """Rows as a record batch of `_rows_schema`."""
    import pyarrow as pa

    schema = _rows_schema()
    columns = list(zip(*rows, strict=True)) or [() for _ in schema]
    return pa.record_batch(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def write_index(parts: Iterable[tuple[str, Any]]) -> bytes:
    """The live index of a version: its live rows part by part, in release order (each part's
    rows a record batch of `_rows_schema`, or a list of `_Row`s). Built column by column, each
    one array: the same bytes as from one `pa.table` of Python lists."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    names: list[str] = []
    batches = []
    for part, rows in parts:
        names.append(part)
        batches.append(rows if isinstance(rows, pa.RecordBatch) else rows_batch(rows))
    counts = [b.num_rows for b in batches]
    schema = _index_schema()
    if sum(counts) == 0:
        table = pa.table({name: [] for name in schema.names}, schema=schema)
    else:
        rows = pa.Table.from_batches(batches, schema=_rows_schema()).combine_chunks()
        codes = np.repeat(np.arange(len(names), dtype=np.int32), counts)
        part = pa.DictionaryArray.from_arrays(
            pa.array(codes), pa.array(names, pa.string())
        ).dictionary_decode()
        doc_ids = rows.column("doc_id").chunk(0)
        columns = {
            "row_id": pc.binary_join_element_wise(part, doc_ids, "/"),
            "part": part,
            **{name: rows.column(name).chunk(0) for name in _rows_schema().names},
        }
        table = pa.table([columns[name] for name in schema.names], schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


class LiveIndex:
    """A version's live index read back (the caller checks its sha256 first). The table stays
    columnar (about 150 bytes a row); a part's rows become Python objects when asked for."""

    def __init__(self, data: bytes) -> None:
        import numpy as np
        import pyarrow.parquet as pq

        self.table = pq.read_table(io.BytesIO(data))
        self._slices: dict[str, tuple[int, int]] = {}
        self._by_record: tuple[Any, Any, Any] | None = None
        if not self.table.num_rows:
            return
        encoded = self.table.column("part").combine_chunks().dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        cuts = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist(), len(codes)]
        for a, b in zip(cuts, cuts[1:], strict=False):
            name = encoded.dictionary[int(codes[a])].as_py()
            if name in self._slices:
                raise StoreError(f"live index lists the rows of part {name} apart")
            self._slices[name] = (a, b)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def rows(self, part: str) -> list[_Row]:
        """The live rows of one part, by position."""
        a, b = self._slices.get(part, (0, 0))
        t = self.table.slice(a, b - a)
        return list(
            zip(
                t.column("doc_id").to_pylist(),
                t.column("position").to_pylist(),
                t.column("record_sha256").to_pylist(),
                t.column("conll_sha256").to_pylist(),
                t.column("dropped_overlaps").to_pylist(),
                strict=True,
            )
        )

    def batch(self, part: str, keep: Any = None) -> Any:
        """The live rows of one part as a record batch of `_rows_schema`, by position; only
        those whose `keep` (a bool per index row) is set, when given."""
        import pyarrow as pa
        import pyarrow.compute as pc

        a, b = self._slices.get(part, (0, 0))
        t = self.table.slice(a, b - a).select(_rows_schema().names)
        if keep is not None:
            t = t.filter(pa.array(keep[a:b]))
        t = t.take(pc.sort_indices(t, [("position", "ascending")])).combine_chunks()
        return pa.RecordBatch.from_arrays(
            [
                t.column(n).chunk(0) if t.num_rows else pa.array([], f.type)
                for n, f in zip(t.column_names, _rows_schema(), strict=True)
            ],
            schema=_rows_schema(),
        )

    def parts_with(self, keep: Any) -> set[str]:
        """The parts with a row whose `keep` is set."""
        return {name for name, (a, b) in self._slices.items() if keep[a:b].any()}

    def by_id(self, chunk: int = 16384) -> Iterator[tuple[str, bytes, int]]:
        """(doc_id, record sha256, index row) of every row, in doc_id order (UTF-8 byte
        order, as `_IdRuns`), a chunk at a time."""
        import pyarrow.compute as pc

        order = pc.sort_indices(self.table.column("doc_id"))
        for at in range(0, len(order), chunk):
            rows = order.slice(at, chunk)
            yield from zip(
                self.table.column("doc_id").take(rows).to_pylist(),
                self.table.column("record_sha256").take(rows).to_pylist(),
                rows.to_pylist(),
                strict=True,
            )

    def find_records(self, digests: list[bytes]) -> list[int]:
        """The index row holding each record sha256, or -1: a sorted array of their first 8
        bytes (16 bytes a row with its order) instead of a dictionary of every digest."""
        import numpy as np

        if self._by_record is None:
            col = self.table.column("record_sha256").combine_chunks()
            raw = np.frombuffer(col.buffers()[1], dtype=np.uint8)
            raw = raw[col.offset * 32 : (col.offset + len(col)) * 32].reshape(-1, 32)
            prefix = raw[:, :8].copy().view(">u8").ravel().astype(np.uint64)
            order = np.argsort(prefix, kind="stable")
            self._by_record = (prefix[order], order, raw)
        prefixes, order, raw = self._by_record
        if not digests:
            return []
        query = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, 32)
        wanted = query[:, :8].copy().view(">u8").ravel().astype(np.uint64)
        starts: list[int] = np.searchsorted(prefixes, wanted).tolist()
        out = []
        for digest, head, at in zip(digests, wanted.tolist(), starts, strict=True):
            found = -1
            while at < len(prefixes) and int(prefixes[at]) == head:
                if raw[order[at]].tobytes() == digest:
                    found = int(order[at])
                    break
                at += 1
            out.append(found)
        return out


def release_parts(manifest: ReleaseManifest) -> list[tuple[str, dict[str, str]]]:
    """(name, format -> sha256) of every stored part in release order: the non-empty base
    shards by key, then the updates by name (the order their files sort in, too)."""
    out = [(s.start, s.formats) for s in manifest.shards if s.documents]
    return out + [(u.name, u.formats) for u in manifest.updates]


# ---------------------------------------------------------------- building parts


@dataclass
class _Built:
    """One part (a base shard or an update) as the manifest lists it, its files by format and
    its live rows."""

    name: str
    shard: ReleaseShard | ReleaseUpdate
    files: dict[str, ReleaseFile]
    rows: Any  # a record batch of `_rows_schema`


@dataclass
class _Shards:
    shards: list[ReleaseShard]  # every base range, the empty ones too
    updates: list[ReleaseUpdate]
    parts: list[_Built]  # the stored parts in release order
    # doc_ids in shards the previous version does not have (kept only where the notes need
    # them: on top of a version without a live index of today's writers)
    touched_ids: set[str]
    dead_rows: int = 0

    def files(self, fmt: str) -> list[ReleaseFile]:
        return [p.files[fmt] for p in self.parts]

    @property
    def dropped(self) -> int:
        import pyarrow.compute as pc

        return sum(pc.sum(p.rows.column("dropped_overlaps")).as_py() or 0 for p in self.parts)


@dataclass
class _Diff:
    """The input against the previous live index, from one sorted merge of the two: which
    index rows stay live, the line digests of the documents added or changed, and their ids
    (and those removed) for the notes. Holds a bit a previous row and ~100 bytes a change."""

    keep: Any  # numpy bool per previous index row: live now with the same line
    new_lines: set[bytes] = field(default_factory=set)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _diff(inp: _Input, index: LiveIndex) -> _Diff:
    import numpy as np

    out = _Diff(np.zeros(len(index), dtype=bool))
    ours, theirs = inp.by_id(), index.by_id()
    a, b = next(ours, None), next(theirs, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            out.added.append(a[0])
            out.new_lines.add(a[1])
            a = next(ours, None)
        elif a is None or b[0] < a[0]:
            out.removed.append(b[0])
            b = next(theirs, None)
        else:
            if a[1] == b[1]:
                out.keep[b[2]] = True
            else:
                out.changed.append(a[0])
                out.new_lines.add(a[1])
            a, b = next(ours, None), next(theirs, None)
    return out


def _build_part(name: str, lines: list[str], writer: _Writer) -> _Built:
    records = [json.loads(line) for line in lines]
    jsonl = "".join(line + "\n" for line in lines).encode("utf-8")
    docbin, blocks, dropped = _spacy_and_conll_blocks(records, name)
    data = {
        "jsonl": jsonl,
        "conll": b"".join(blocks),
        "parquet": write_parquet(records, name),
        "spacy": docbin,
    }
    files = {
        fmt: writer.put(data[fmt], ext, path(name)) for fmt, (ext, path) in SHARD_FORMATS.items()
    }
    formats = {fmt: f.sha256 for fmt, f in files.items()}
    shard: ReleaseShard | ReleaseUpdate
    if name.startswith("update-"):
        shard = ReleaseUpdate(
            name=name, documents=len(records), dropped_overlaps=sum(dropped), formats=formats
        )
    else:
        shard = ReleaseShard(
            start=name, documents=len(records), dropped_overlaps=sum(dropped), formats=formats
        )
    rows = rows_batch(
        (r["doc_id"], i, hashlib.sha256(line.encode("utf-8")).digest(), sha256_digest(b), n)
        for i, (r, line, b, n) in enumerate(zip(records, lines, blocks, dropped, strict=True))
    )
    return _Built(name, shard, files, rows)


def sha256_digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _reused_rows(
    store: Store,
    previous: ReleaseManifest,
    lines: list[str],
    files: dict[str, ReleaseFile],
    index: LiveIndex,
) -> Any:
    """The rows of a base shard kept from the previous version: what the previous index
    says of each line (a line's sha256 names its content, whatever part held it), or, for a
    document that was changed and changed back, read from the shard's CoNLL object."""
    digests = [hashlib.sha256(line.encode("utf-8")).digest() for line in lines]
    found = index.find_records(digests)
    hits = [j for j in found if j >= 0]
    t = index.table
    known = dict(
        zip(
            hits,
            zip(
                t.column("doc_id").take(hits).to_pylist(),
                t.column("conll_sha256").take(hits).to_pylist(),
                t.column("dropped_overlaps").take(hits).to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )
    rows: list[_Row] = []
    blocks: list[bytes] | None = None
    for i, (line, rsha, j) in enumerate(zip(lines, digests, found, strict=True)):
        if j >= 0:
            doc_id, conll_sha, n = known[j]
        else:
            if blocks is None:
                blocks = conll_blocks(_verified_object(store, previous.version, files["conll"]))
            record = json.loads(line)
            _, n = _spacy_doc(record)
            doc_id, conll_sha = record["doc_id"], sha256_digest(blocks[i])
        rows.append((doc_id, i, rsha, conll_sha, n))
    return rows_batch(rows)


def _write_shards(
    store: Store,
    inp: _Input,
    starts: list[int],
    previous: ReleaseManifest | None,
    index: LiveIndex | None,
    writer: _Writer,
    built: dict[tuple[str, str], _Built],
) -> _Shards:
    """Every base shard of the version, in key order, and no updates (a first version, one on
    top of an older layout, or a compaction): reused from the previous version (or from an
    earlier attempt of this publish) when its JSONL is the same, built and written otherwise."""
    reusable: dict[str, tuple[ReleaseShard, dict[str, ReleaseFile]]] = {}
    if previous is not None and index is not None:  # an index: the same writers made it
        by_sha = {f.sha256: f for f in previous.files}
        for s in previous.shards:
            if s.documents and all(sha in by_sha for sha in s.formats.values()):
                reusable[s.formats["jsonl"]] = (s, {f: by_sha[h] for f, h in s.formats.items()})
    # JSONL bytes the previous version has (as a shard or, in layout 1, as its one file):
    # documents elsewhere are new or changed, for the notes (which need them only when there
    # is a previous version and no live index to compare with)
    track = previous is not None and index is None
    known = (
        {f.sha256 for f in previous.files if f.path == "corpus.jsonl"}
        if previous is not None and track
        else set()
    )
    out = _Shards([], [], [], set())

    def flush(i: int, lines: list[str]) -> None:
        start = f"{starts[i]:016x}"
        if not lines:
            out.shards.append(ReleaseShard(start=start, documents=0))
            return
        sha = sha256_hex("".join(line + "\n" for line in lines).encode("utf-8"))
        part = built.get((start, sha))
        if part is None:
            old = reusable.get(sha)
            if (
                previous is not None
                and index is not None
                and old is not None
                and (old[0].start == start)
            ):
                rows = _reused_rows(store, previous, lines, old[1], index)
                part = _Built(start, old[0], old[1], rows)
            else:
                part = _build_part(start, lines, writer)
            built[(start, sha)] = part
        if track and sha not in known:
            out.touched_ids.update(part.rows.column("doc_id").to_pylist())
        assert isinstance(part.shard, ReleaseShard)
        out.shards.append(part.shard)
        out.parts.append(part)

    i, lines = 0, list[str]()
    for key, line in inp.spill:
        while i + 1 < len(starts) and key >= starts[i + 1]:
            flush(i, lines)
            i, lines = i + 1, []
        lines.append(line)
    flush(i, lines)
    for j in range(i + 1, len(starts)):
        flush(j, [])
    writer.drain()
    return out


def _write_updates(
    inp: _Input,
    previous: ReleaseManifest,
    index: LiveIndex,
    diff: _Diff,
    writer: _Writer,
    built: dict[tuple[str, str], _Built],
    shard_docs: int,
) -> _Shards | None:
    """The previous version's base shards and updates as they are, and the added and changed
    documents in new update parts (in key order, `shard_docs` a part); None when that would
    pass the compaction thresholds, so the caller rewrites the ranges instead."""
    changed = diff.new_lines
    kept = index.parts_with(diff.keep)
    base = [s for s in previous.shards if s.documents]
    updates = [u for u in previous.updates if u.name in kept]  # all-dead updates go
    live = len(inp)
    stored = sum(s.documents for s in base) + sum(u.documents for u in updates) + len(changed)
    new_parts = math.ceil(len(changed) / shard_docs)
    if stored - live > COMPACT_DEAD_SHARE * live or len(updates) + new_parts > MAX_UPDATES:
        return None

    by_sha = {f.sha256: f for f in previous.files}

    def old_part(name: str, shard: ReleaseShard | ReleaseUpdate) -> _Built:
        files = {fmt: by_sha[sha] for fmt, sha in shard.formats.items()}
        return _Built(name, shard, files, index.batch(name, diff.keep))

    by_name = {u.name: old_part(u.name, u) for u in updates}
    lines: list[str] = []

    def flush() -> None:
        sha = sha256_hex("".join(line + "\n" for line in lines).encode("utf-8"))
        name = f"update-{sha[:16]}"
        part = built.get((name, sha))
        if part is None:
            part = built[(name, sha)] = _build_part(name, lines, writer)
        # an update of the same name holds the same rows: now every one of them is live
        by_name[name] = part

    for _key, line in inp.spill:
        if hashlib.sha256(line.encode("utf-8")).digest() in changed:
            lines.append(line)
            if len(lines) == shard_docs:
                flush()
                lines = []
    if lines:
        flush()
    writer.drain()
    parts = [old_part(s.start, s) for s in base] + [by_name[n] for n in sorted(by_name)]
    new = [by_name[n].shard for n in sorted(by_name)]
    return _Shards(
        shards=list(previous.shards),
        updates=[u for u in new if isinstance(u, ReleaseUpdate)],
        parts=parts,
        touched_ids=set(),
        dead_rows=sum(p.shard.documents for p in parts) - live,
    )


def _read_index(store: Store, manifest: ReleaseManifest | None) -> LiveIndex | None:
    """The previous version's live index, when it has one made by today's writers."""
    if manifest is None or manifest.layout < 3 or manifest.format_version != FORMAT_VERSION:
        return None
    [entry] = [f for f in manifest.files if f.path == INDEX_PATH]
    return LiveIndex(_verified_object(store, manifest.version, entry))


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


def read_manifest(
    store: Store, version: str, expected_sha256: str | None = None
) -> ReleaseManifest:
    """A version's manifest, of either layout (checked against `expected_sha256`, the sha256
    latest.json records, when given)."""
    data = store.get_bytes(release_key(version, "manifest.json"))
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
        raise VerificationFailed(
            f"{release_key(version, 'manifest.json')}: sha256 {sha256_hex(data)} is not "
            f"{expected_sha256} recorded in {LATEST_KEY}"
        )
    return ReleaseManifest.model_validate_json(data)


def _verified_object(store: Store, version: str, entry: ReleaseFile) -> bytes:
    data = store.get_bytes(file_key(version, entry))
    if len(data) != entry.size or sha256_hex(data) != entry.sha256:
        raise VerificationFailed(
            f"{store.url}/{file_key(version, entry)}: {len(data)} bytes with sha256 "
            f"{sha256_hex(data)}, the manifest of {version} says {entry.size} with {entry.sha256}"
        )
    return data


def _digests_of(data: bytes) -> dict[str, bytes]:
    out = {}
    for line in data.decode("utf-8").splitlines():
        if line:
            out[json.loads(line)["doc_id"]] = hashlib.sha256(line.encode("utf-8")).digest()
    return out


def _previous_digests(
    store: Store, previous: ReleaseManifest | None, shards: _Shards
) -> dict[str, bytes]:
    """doc_id -> line digest of the previous version's documents in the shards this version
    does not share with it (all of them for a layout-1 version): the only ones that can have
    changed or gone. Only those shards are read."""
    if previous is None:
        return {}
    ours = {f.sha256 for f in shards.files("jsonl")}
    out: dict[str, bytes] = {}
    for entry in previous.files:
        if entry.path == "corpus.jsonl" and entry.sha256 not in ours:
            out.update(_digests_of(_verified_object(store, previous.version, entry)))
    return out


def _notes(
    store: Store,
    version: str,
    base: ReleaseManifest | None,
    diff: _Diff | None,
    inp: _Input,
    shards: _Shards,
) -> bytes:
    """The release notes: from the comparison with the previous live index when there is one
    (nothing else is read), else from the previous version's JSONL shards this version does
    not share (the documents of the shards it shares are unchanged)."""
    previous = base.version if base else None
    if diff is not None:
        added, changed, removed = diff.added, diff.changed, diff.removed
    elif base is None:  # a first version: every document is new
        return write_notes(
            version, None, documents=len(inp), added=_Ids(inp.ids), changed=(), removed=()
        )
    else:
        before = _previous_digests(store, base, shards)
        added, changed, still = [], [], set()
        for doc_id, digest in inp.by_id():
            old = before.get(doc_id)
            if old is not None:
                still.add(doc_id)
            if doc_id in shards.touched_ids:
                if old is None:
                    added.append(doc_id)
                elif old != digest:
                    changed.append(doc_id)
        removed = sorted(d for d in before if d not in still)
    return write_notes(
        version, previous, documents=len(inp), added=added, changed=changed, removed=removed
    )


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
    shard_docs: int = DEFAULT_SHARD_DOCS,
    workers: int = 8,
    work_dir: Path | str | None = None,
) -> PublishResult:
    """Publish `records` as the next version, or nothing when `latest` has the same content.
    `records` is read once and may be a generator; the canonical records are spilled to a
    temporary folder (in `work_dir`, default the system's) while the shards are built."""
    if shard_docs < 1:
        raise ValueError(f"shard_docs must be at least 1, not {shard_docs}")
    with tempfile.TemporaryDirectory(prefix="corpusflow-publish-", dir=work_dir) as tmp:
        inp = _read_input(records, Path(tmp))
        writer = _Writer(store, workers)
        try:
            return _publish(
                store,
                inp,
                writer,
                label_schema=label_schema,
                agreement=agreement,
                code_version=code_version,
                model_versions=model_versions,
                notes_extra=notes_extra,
                max_attempts=max_attempts,
                shard_docs=shard_docs,
            )
        finally:
            writer.close()


def _publish(
    store: Store,
    inp: _Input,
    writer: _Writer,
    *,
    label_schema: dict[str, Any],
    agreement: dict[str, Any],
    code_version: str,
    model_versions: list[str],
    notes_extra: dict[str, Any] | None,
    max_attempts: int,
    shard_docs: int,
) -> PublishResult:
    chash = inp.content_hash
    publisher = uuid.uuid4().hex
    diverged: set[str] = set()
    built: dict[tuple[str, str], _Built] = {}  # by name and JSONL sha256: a retry writes
    # nothing twice

    for _attempt in range(max_attempts):
        latest, latest_etag = read_latest(store)
        if latest is not None and latest.get("content_hash") == chash:
            manifest = read_manifest(store, latest["version"], latest.get("manifest_sha256"))
            return PublishResult(version=latest["version"], created=False, manifest=manifest)
        previous = latest["version"] if latest else None
        base = None
        if latest is not None and previous is not None:
            base = read_manifest(store, previous, latest["manifest_sha256"])

        # the parts and the live index first, the claim after: they depend on the base
        # version only, and a claim held for a short time keeps rivals from skipping numbers.
        # Updates over the base's shards when it has a live index and the overlay stays
        # small; else (first version, older layout, compaction due) base shards throughout.
        index = _read_index(store, base)
        diff = _diff(inp, index) if index is not None else None
        shards = None
        if base is not None and index is not None and diff is not None:
            shards = _write_updates(inp, base, index, diff, writer, built, shard_docs)
        if shards is None:
            starts = shard_starts(inp.keys, shard_docs, base)
            shards = _write_shards(store, inp, starts, base, index, writer, built)
        index = None  # the parts hold copies of their rows: free the previous index first
        live_index = writer.put(
            write_index((p.name, p.rows) for p in shards.parts), "parquet", INDEX_PATH
        )
        version = _claim(store, publisher, chash, previous, skip=diverged)
        if version is None:
            continue  # latest moved while we looked for a number
        readme = write_datasheet(
            inp.stats,
            version=version,
            previous=previous,
            content_hash_=chash,
            code_version=code_version,
            model_versions=model_versions,
            dropped_overlaps=shards.dropped,
            store_url=store.url,
            parquet_shards=len(shards.parts),
        )
        notes = _notes(store, version, base, diff, inp, shards)
        if notes_extra:
            notes += b"## Details\n\n```json\n" + encode_json(notes_extra) + b"```\n"
        small = {
            "labels.json": encode_json(label_schema),
            "agreement.json": encode_json(agreement),
            "README.md": readme,
            "NOTES.md": notes,
        }
        files = [f for fmt in SHARD_FORMATS for f in shards.files(fmt)] + [live_index]
        files += [writer.put(small[name], name.rsplit(".", 1)[-1], name) for name in SMALL_FILES]
        writer.drain()
        manifest = ReleaseManifest(
            layout=LAYOUT,
            version=version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            content_hash=chash,
            code_version=code_version,
            model_versions=list(model_versions),
            counts=inp.stats.as_counts(),
            files=files,
            previous=previous,
            format_version=FORMAT_VERSION,
            shard_docs=shard_docs,
            shards=shards.shards,
            updates=shards.updates,
            dead_rows=shards.dead_rows,
        )
        try:
            manifest, manifest_bytes = _write_manifest(store, manifest)
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


class _Diverged(Exception):
    """A joined version holds other files than ours: leave it, try the next number."""


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


def _write_manifest(store: Store, manifest: ReleaseManifest) -> tuple[ReleaseManifest, bytes]:
    """Create the version's manifest; a joined version keeps the one written first if it
    lists the same objects. Read back and checked either way."""
    manifest_bytes = encode_json(manifest.model_dump(mode="json"))
    key = release_key(manifest.version, "manifest.json")
    try:
        store.put_if_absent(key, manifest_bytes, content_type="application/json")
    except PreconditionFailed:
        theirs = ReleaseManifest.model_validate_json(store.get_bytes(key))
        if theirs.files != manifest.files or theirs.content_hash != manifest.content_hash:
            raise _Diverged(manifest.version) from None
        manifest, manifest_bytes = theirs, encode_json(theirs.model_dump(mode="json"))
    back = store.get_bytes(key)
    if back != manifest_bytes:
        raise VerificationFailed(f"{store.url}/{key}: read back other bytes than written")
    return manifest, manifest_bytes


def list_versions(store: Store) -> Iterator[str]:
    """Versions that have a manifest, oldest first (orphans of lost races included)."""
    for key in store.list(f"{RELEASES}/v"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "manifest.json":
            yield parts[1]
