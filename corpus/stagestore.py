"""Per-stage document stores laid out for millions: the documents a batch writes go into one
compressed JSONL shard (`<stage>/shards/<time>-<id>.jsonl.gz`), and one index per stage
(`<stage>/index.json.gz`: doc_id -> shard, line, content hash, version) is read once by a run.
An unchanged run reads the index and touches no document.

The shards describe themselves (each line is the whole document), so the index can always be
rebuilt from them: a shard the index does not list yet (a crash between writing the shard and
writing the index) is read and merged at the next load, the newer shard winning. Stores of the
layout before shards (`<stage>/<doc_id>.json`, one file per document) are read as they are, and
packed into shards by `migrate`, which the flow runs when it commits a stage."""

from __future__ import annotations

import codecs
import gzip
import json
import struct
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from corpus.store import NotFound, Store, StoreError

INDEX_FORMAT = 1
SHARD_SUFFIX = ".jsonl.gz"
# which field of a stage's documents records the code that made them
VERSION_FIELDS = {"clean": "cleaner_version", "machine": "model_version"}
MIGRATE_DOCS = 256  # documents of the old layout per shard when packing them


@dataclass(frozen=True, slots=True)
class Entry:
    """Where a document is and what made it. `line` -1: a file of the old layout (`shard` is
    its key; hash and versions are known once it is read). `source_sig`: what discovery saw of
    the source the document was cleaned from (ingest.sources.SourceRef.signature), so that an
    unchanged source is not read again; "" when unknown (an index rebuilt from shards)."""

    shard: str
    line: int
    content_hash: str
    version: str
    source_sha256: str = ""
    source_sig: str = ""

    @property
    def legacy(self) -> bool:
        return self.line < 0


_HEAD = struct.Struct("<IiIB")  # shard no, line, version no, which hashes are packed hex


def _hex32(digest: str) -> bytes | None:
    """The 32 bytes of a lower-case sha256 hex digest; None for anything else."""
    if len(digest) != 64:
        return None
    try:
        packed = bytes.fromhex(digest)
    except ValueError:
        return None
    return packed if packed.hex() == digest else None


class Entries(MutableMapping[str, Entry]):
    """doc_id -> Entry, each entry held as one bytes object (shard and version as numbers into
    tables of the strings, the two sha256 hex digests as their 32 bytes, the signature as
    UTF-8), about half what a dict of Entry objects takes: an index is in memory for the
    whole of a stage, one per stage, so at a million documents that is ~250 MB an index
    saved (`python -m bench.index`). An Entry is built again on each access."""

    __slots__ = ("_rows", "_strings", "_numbers")

    def __init__(self, items: Iterable[tuple[str, Entry]] = ()) -> None:
        self._rows: dict[str, bytes] = {}
        self._strings: list[str] = []  # shard keys and versions, each once
        self._numbers: dict[str, int] = {}
        for doc_id, entry in items:
            self[doc_id] = entry

    def _number(self, text: str) -> int:
        no = self._numbers.get(text)
        if no is None:
            no = self._numbers[text] = len(self._strings)
            self._strings.append(text)
        return no

    def _pack(self, e: Entry) -> bytes:
        return self._pack_fields(
            e.shard, e.line, e.content_hash, e.version, e.source_sha256, e.source_sig
        )

    def _pack_fields(
        self, shard: str, line: int, content_hash: str, version: str, source: str, sig: str
    ) -> bytes:
        flags, parts = 0, []
        for bit, digest in ((1, content_hash), (2, source)):
            packed = _hex32(digest)
            if packed is not None:
                flags |= bit
                parts.append(packed)
            else:
                raw = digest.encode("utf-8")
                parts.append(struct.pack("<I", len(raw)) + raw)
        head = _HEAD.pack(self._number(shard), line, self._number(version), flags)
        return b"".join((head, *parts, sig.encode("utf-8")))

    def put(
        self,
        doc_id: str,
        shard: str,
        line: int,
        content_hash: str,
        version: str,
        source_sha256: str = "",
        source_sig: str = "",
    ) -> None:
        """`self[doc_id] = Entry(...)` without building the Entry (an index load)."""
        self._rows[doc_id] = self._pack_fields(
            shard, line, content_hash, version, source_sha256, source_sig
        )

    def _unpack(self, row: bytes) -> Entry:
        shard, line, version, flags = _HEAD.unpack_from(row)
        at, digests = _HEAD.size, []
        for bit in (1, 2):
            if flags & bit:
                digests.append(row[at : at + 32].hex())
                at += 32
            else:
                (size,) = struct.unpack_from("<I", row, at)
                digests.append(row[at + 4 : at + 4 + size].decode("utf-8"))
                at += 4 + size
        strings = self._strings
        return Entry(
            strings[shard], line, digests[0], strings[version], digests[1], row[at:].decode()
        )

    def __getitem__(self, doc_id: str) -> Entry:
        return self._unpack(self._rows[doc_id])

    def get(self, doc_id: str, default: Any = None) -> Any:  # type: ignore[override]
        row = self._rows.get(doc_id)
        return default if row is None else self._unpack(row)

    def __setitem__(self, doc_id: str, entry: Entry) -> None:
        self._rows[doc_id] = self._pack(entry)

    def __delitem__(self, doc_id: str) -> None:
        del self._rows[doc_id]

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"Entries({len(self)} documents)"


@dataclass
class StageIndex:
    """doc_id -> Entry for one stage, and the shards the stored index already covers."""

    stage: str
    docs: Entries = field(default_factory=Entries)
    shards: set[str] = field(default_factory=set)
    etag: str | None = None  # of the stored index this was read from (None: there was none)
    recovered: list[str] = field(default_factory=list)  # shards merged that it did not list
    old_files: list[str] = field(default_factory=list)  # of the one-file-per-document layout
    dirty: bool = False  # differs from what is stored

    def legacy_ids(self) -> list[str]:
        return sorted(d for d, e in self.docs.items() if e.legacy)


def encode_shard(docs: Iterable[dict[str, Any]]) -> bytes:
    lines = [json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":")) for d in docs]
    # mtime 0: the same documents give the same bytes
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=6, mtime=0)


def decode_shard(data: bytes) -> list[str]:
    return gzip.decompress(data).decode("utf-8").splitlines()


class StageStore:
    """The documents of one stage (`clean` or `machine`) in a store."""

    def __init__(self, store: Store, stage: str, *, cache_shards: int = 8) -> None:
        if stage not in VERSION_FIELDS:
            raise ValueError(f"unknown stage {stage!r}; known: {', '.join(VERSION_FIELDS)}")
        self.store = store
        self.stage = stage
        self.version_field = VERSION_FIELDS[stage]
        self.index_key = f"{stage}/index.json.gz"
        self.shard_prefix = f"{stage}/shards/"
        self._cache: OrderedDict[str, list[str]] = OrderedDict()
        self._cache_size = cache_shards
        self._lock = threading.Lock()

    # ------------------------------------------------------------ the index

    def entry(self, doc: dict[str, Any], shard: str, line: int, source_sig: str = "") -> Entry:
        return Entry(
            shard=shard,
            line=line,
            content_hash=str(doc.get("content_hash") or ""),
            version=str(doc.get(self.version_field) or ""),
            source_sha256=str(doc.get("source_sha256") or ""),
            source_sig=source_sig,
        )

    def _read_index(self) -> StageIndex:
        try:
            data, etag = self.store.get_with_etag(self.index_key)
        except NotFound:
            return StageIndex(self.stage)
        try:
            head, rows = _index_rows_of(data)
            if head.get("format") != INDEX_FORMAT or head.get("stage") != self.stage:
                raise ValueError(f"format {head.get('format')!r} of stage {head.get('stage')!r}")
            shards: list[str] = head["shards"]
            versions: list[str] = head["versions"]
            docs = Entries()
            # rows of 6 fields were written before source signatures (read as "": unknown)
            for row in rows:
                docs.put(
                    row[0], shards[row[1]], row[2], row[3], versions[row[4]], row[5], *row[6:7]
                )
        except (
            OSError,
            EOFError,
            zlib.error,
            struct.error,
            ValueError,
            LookupError,
            TypeError,
            AttributeError,
        ) as e:
            # the shards hold everything the index says: rebuild it from them
            index = StageIndex(self.stage, etag=etag, dirty=True)
            index.recovered.append(f"{self.index_key} unreadable ({e}), rebuilt")
            return index
        return StageIndex(self.stage, docs, set(shards), etag)

    def load(self) -> StageIndex:
        """The index, read once, completed with what it does not cover yet: shards written
        after it (merged, the newer shard winning: shard names sort by time) and documents of
        the old one-file-per-document layout that no shard holds. One GET and one LIST page
        per thousand shards, plus a GET per shard the index missed."""
        index = self._read_index()
        orphans: list[str] = []
        legacy: list[str] = []
        for key in self.store.list(f"{self.stage}/"):
            rest = key[len(self.stage) + 1 :]
            if rest.startswith("shards/"):
                if key.endswith(SHARD_SUFFIX) and key not in index.shards:
                    orphans.append(key)
            elif "/" not in rest and rest.endswith(".json"):
                legacy.append(key)
        for key in sorted(orphans):
            for line_no, line in enumerate(self._shard_lines(key)):
                doc = json.loads(line)
                current = index.docs.get(doc["doc_id"])
                if current is None or current.legacy or current.shard < key:
                    index.docs[doc["doc_id"]] = self.entry(doc, key, line_no)
            index.shards.add(key)
            index.recovered.append(key)
            index.dirty = True
        for key in legacy:
            doc_id = key[len(self.stage) + 1 : -len(".json")]
            if doc_id not in index.docs:  # else a shard holds a newer copy (see migrate)
                index.docs[doc_id] = Entry(key, -1, "", "", "")
        index.old_files = legacy
        return index

    def commit(self, index: StageIndex, entries: Iterable[tuple[str, Entry]] = ()) -> bool:
        """Merge what batches wrote into `index` and store it, if anything changed; True when
        written. The run holds the store's lease, so one writer commits at a time."""
        for doc_id, entry in entries:
            if index.docs.get(doc_id) != entry:
                index.docs[doc_id] = entry
                index.dirty = True
            if not entry.legacy and entry.shard not in index.shards:
                index.shards.add(entry.shard)
                index.dirty = True
        if not index.dirty:
            return False
        shards = sorted(index.shards)
        shard_no = {s: i for i, s in enumerate(shards)}
        versions = sorted({e.version for e in index.docs.values() if not e.legacy})
        version_no = {v: i for i, v in enumerate(versions)}
        data = _index_bytes(
            {"format": INDEX_FORMAT, "stage": self.stage, "shards": shards, "versions": versions},
            _index_rows(index.docs, shard_no, version_no),
        )
        index.etag = self.store.put_bytes(self.index_key, data, content_type="application/gzip")
        index.dirty = False
        index.recovered = []
        return True

    def migrate(self, index: StageIndex, chunk: int = MIGRATE_DOCS) -> int:
        """Pack the documents of the old layout into shards, store the index, then delete the
        old files (a crash in between leaves files whose documents a shard already holds: the
        next load prefers the shard, the next migrate deletes them). Returns how many."""
        ids = index.legacy_ids()
        entries: list[tuple[str, Entry]] = []
        for i in range(0, len(ids), chunk):
            docs = [self.store.get_json(index.docs[d].shard) for d in ids[i : i + chunk]]
            entries += self.write_shard(docs)
        self.commit(index, entries)
        for key in index.old_files:
            self.store.delete(key)
        index.old_files = []
        return len(ids)

    # ------------------------------------------------------------ shards

    def write_shard(
        self, docs: list[dict[str, Any]], source_sigs: Sequence[str] = ()
    ) -> list[tuple[str, Entry]]:
        """One object for the documents of a batch; their entries, for `commit`.
        `source_sigs`, one per document where given: the signatures of their sources."""
        if not docs:
            return []
        sigs = list(source_sigs) or [""] * len(docs)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        key = f"{self.shard_prefix}{stamp}-{uuid.uuid4().hex[:12]}{SHARD_SUFFIX}"
        self.store.put_bytes(key, encode_shard(docs), content_type="application/gzip")
        return [
            (d["doc_id"], self.entry(d, key, i, sig))
            for i, (d, sig) in enumerate(zip(docs, sigs, strict=True))
        ]

    def _shard_lines(self, key: str) -> list[str]:
        with self._lock:
            lines = self._cache.get(key)
            if lines is not None:
                self._cache.move_to_end(key)
                return lines
        try:
            lines = decode_shard(self.store.get_bytes(key))
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise StoreError(f"{self.store.url}/{key}: not a readable shard ({e})") from e
        with self._lock:
            self._cache[key] = lines
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return lines

    def read(self, index: StageIndex, doc_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The documents named (each once), shard by shard (each shard read once, in key
        order, by line), not in the order given; a missing doc_id raises NotFound."""
        wanted: set[str] = set()
        for doc_id in doc_ids:
            if doc_id not in index.docs:
                raise NotFound(f"{self.stage}/{doc_id}", self.store.url)
            wanted.add(doc_id)
        yield from self._read_lines(index, wanted, wanted)

    def read_all(self, index: StageIndex) -> Iterator[dict[str, Any]]:
        """Every document of `index`, as `read(index, index.docs)` gives them, without a set
        of every doc_id: a publish reads every document this way."""
        return self._read_lines(index, index.docs, None)

    def _read_lines(
        self, index: StageIndex, doc_ids: Iterable[str], wanted: set[str] | None
    ) -> Iterator[dict[str, Any]]:
        """`doc_ids` (all placed by `index`; none twice) shard by shard, holding a bit a line
        to know which lines to read rather than a (line, doc_id) pair a document. A line
        must hold a document the index places there (and, with `wanted`, one of those)."""
        live: dict[str, bytearray] = {}
        legacy: list[tuple[str, str]] = []
        for doc_id in doc_ids:
            entry = index.docs[doc_id]
            if entry.legacy:  # the old layout: the key is the document's own file
                legacy.append((entry.shard, doc_id))
                continue
            flags = live.setdefault(entry.shard, bytearray())
            if len(flags) <= entry.line:
                flags.extend(bytes(entry.line + 1 - len(flags)))
            if flags[entry.line]:  # each line holds one document: else one is missed
                raise StoreError(
                    f"the index of {self.stage} places {doc_id!r} and another document on "
                    f"line {entry.line} of {self.store.url}/{entry.shard}"
                )
            flags[entry.line] = 1
        legacy.sort()
        at = 0
        for shard in sorted(live):
            while at < len(legacy) and legacy[at][0] < shard:
                yield self.store.get_json(legacy[at][0])
                at += 1
            flags = live.pop(shard)
            lines = self._shard_lines(shard)
            for line_no in (i for i, flag in enumerate(flags) if flag):
                if line_no >= len(lines):
                    raise StoreError(
                        f"{self.store.url}/{shard} has {len(lines)} lines, the index of "
                        f"{self.stage} names line {line_no}"
                    )
                doc = json.loads(lines[line_no])
                doc_id = doc.get("doc_id")
                placed = index.docs.get(doc_id)
                if (
                    placed is None
                    or (placed.shard, placed.line) != (shard, line_no)
                    or (wanted is not None and doc_id not in wanted)
                ):
                    raise StoreError(
                        f"{self.store.url}/{shard} line {line_no} holds {doc_id!r}, "
                        f"which the index of {self.stage} does not place there"
                    )
                yield doc
        for key, _doc_id in legacy[at:]:
            yield self.store.get_json(key)


def _index_rows(
    docs: Mapping[str, Entry], shard_no: dict[str, int], version_no: dict[str, int]
) -> Iterator[list[Any]]:
    """The index's rows in doc_id order (sorting the ids only, not (id, entry) pairs); files of
    the old layout are left out: they are found by listing."""
    for d in sorted(docs):
        e = docs[d]
        if not e.legacy:
            yield [
                d,
                shard_no[e.shard],
                e.line,
                e.content_hash,
                version_no[e.version],
                e.source_sha256,
                e.source_sig,
            ]


_ROWS_START = ',"docs":['


def _index_rows_of(data: bytes, chunk: int = 1 << 18) -> tuple[dict[str, Any], Iterator[list[Any]]]:
    """The head of a stored index and an iterator over its rows, decompressed and decoded a
    chunk at a time: `json.loads` of the whole held every row as a list beside the entries
    built from them (a load peaked at 1.6x what the index then holds). The index must be laid
    out as `_index_bytes` writes it (the head's fields, then "docs"); another layout of the
    same JSON is read whole. Damage raises ValueError, EOFError or zlib.error."""
    inflate = zlib.decompressobj(31)
    text = codecs.getincrementaldecoder("utf-8")()
    pieces = iter(range(0, len(data), chunk))
    buf = ""

    def more() -> bool:
        nonlocal buf
        start = next(pieces, None)
        if start is None:
            if not inflate.eof:
                raise EOFError("the index ends early")
            return False
        buf += text.decode(inflate.decompress(data[start : start + chunk]))
        return True

    while _ROWS_START not in buf:
        if not more():  # not the layout written here: all at once
            whole = json.loads(buf)
            if not isinstance(whole, dict):
                raise ValueError("not an index")
            return whole, iter(whole["docs"])
    at = buf.index(_ROWS_START)
    head = json.loads(buf[:at] + "}")
    if not isinstance(head, dict) or "docs" in head:
        raise ValueError("not an index")
    buf = buf[at + len(_ROWS_START) :]

    def rows() -> Iterator[list[Any]]:
        # the rows up to the last "],[" of what is decompressed so far, parsed as one JSON
        # list; the last rows are what is left before the closing "]}". The cut can fall
        # inside a string (a doc id holding "],["): the text before it then ends in an open
        # string and does not parse, and the rest is read from the whole index at once.
        nonlocal buf
        done = 0
        while True:
            cut = buf.rfind("],[")
            if cut < 0 and more():
                continue
            text = buf[: cut + 1] if cut >= 0 else buf.rstrip()[:-2]
            try:
                if cut < 0 and not buf.rstrip().endswith("]}"):
                    raise json.JSONDecodeError("the index ends inside a row", buf, len(buf))
                part = json.loads("[" + text + "]")
            except json.JSONDecodeError:
                part = json.loads(gzip.decompress(data))["docs"][done:]
                cut = -1
            buf = buf[cut + 2 :] if cut >= 0 else ""
            for row in part:
                if not isinstance(row, list):
                    raise ValueError(f"an index row is {type(row).__name__}, not a list")
                done += 1
                yield row
            if cut < 0:
                return
            more()

    return head, rows()


def _index_bytes(head: dict[str, Any], rows: Iterable[list[Any]], chunk: int = 4096) -> bytes:
    """`gzip.compress(json.dumps({**head, "docs": list(rows)}, separators=(",", ":")), 6,
    mtime=0)`, byte for byte, without the list of rows or its JSON text in memory: the rows
    are encoded and compressed `chunk` at a time (one gzip member, as gzip.compress writes
    it with mtime=0: zlib's output does not depend on how its input is split)."""
    encode = json.JSONEncoder(separators=(",", ":")).encode
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    out = [packer.compress(encode(head)[:-1].encode("utf-8") + b',"docs":[')]
    rows, sep = iter(rows), ""
    while part := list(islice(rows, chunk)):
        out.append(packer.compress((sep + ",".join(map(encode, part))).encode()))
        sep = ","
    out.append(packer.compress(b"]}"))
    out.append(packer.flush())
    return b"".join(out)


# ---------------------------------------------------------------- what the stages decide


def clean_store(store: Store) -> StageStore:
    return StageStore(store, "clean")


def machine_store(store: Store) -> StageStore:
    return StageStore(store, "machine")


_INDEXES: dict[tuple[str, str, str], StageIndex] = {}
_INDEXES_LOCK = threading.Lock()


def cached_index(stage: StageStore, token: str | None = None) -> StageIndex:
    """The stage's index, read once per process: per `token` (a run's id: the index does not
    change while the batches of one stage run), else per stored etag (one HEAD to check)."""
    if token is None:
        info = stage.store.head(stage.index_key)
        token = f"etag:{info.etag if info else None}"
    ident = (stage.store.url, stage.stage, token)
    with _INDEXES_LOCK:
        index = _INDEXES.get(ident)
    if index is None:
        index = stage.load()
        with _INDEXES_LOCK:
            # one index per stage, of one store: an older one, or another store's (a worker
            # that served an earlier run), is of no further use and holds ~0.5 KB a document
            for old in [k for k in _INDEXES if k[0] != ident[0] or k[1] == ident[1]]:
                del _INDEXES[old]
            _INDEXES[ident] = index
    return index


def forget_cached_indexes() -> int:
    """Drop the indexes `cached_index` holds in this process; returns how many. The flow's own
    process calls it when the batches of a stage are done, before the stage's commit (with the
    in-process runner its batches filled the cache): an index, ~0.5 KB a document, was
    otherwise held beside the one the commit reads, and the clean index on through push and
    publish and after the run. A Dask worker keeps its own for the next batch."""
    with _INDEXES_LOCK:
        count = len(_INDEXES)
        _INDEXES.clear()
    return count


def unchanged_source(entry: Entry | None, source_sha256: str, cleaner_version: str) -> bool:
    """Whether a source needs no cleaning: its clean document is stored, made from the same
    bytes by the same cleaners."""
    return (
        entry is not None
        and not entry.legacy
        and entry.source_sha256 == source_sha256
        and entry.version == cleaner_version
    )


def unchanged_signature(entry: Entry | None, source_sig: str, cleaner_version: str) -> bool:
    """Whether a source needs neither cleaning nor reading: discovery saw it as it was when
    its clean document was made (same size and mtime, or ETag), by the same cleaners. An
    unknown signature ("") is never unchanged."""
    return (
        bool(source_sig)
        and entry is not None
        and not entry.legacy
        and entry.source_sig == source_sig
        and entry.version == cleaner_version
    )


def to_annotate(
    clean: StageIndex, machine: StageIndex, doc_ids: Iterable[str], model_version: str
) -> tuple[list[str], int]:
    """The documents whose machine annotations are missing or stale (another clean text,
    another model), and how many are up to date; decided from the two indexes alone."""
    todo: list[str] = []
    kept = 0
    for doc_id in doc_ids:
        c, m = clean.docs.get(doc_id), machine.docs.get(doc_id)
        if (
            c is not None
            and m is not None
            and not c.legacy
            and not m.legacy
            and m.content_hash == c.content_hash
            and m.version == model_version
        ):
            kept += 1
        else:
            todo.append(doc_id)
    return todo, kept


# ---------------------------------------------------------------- garbage


GC_GRACE_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Garbage:
    key: str
    size: int
    age_seconds: float


def shard_time(key: str) -> datetime | None:
    """When a shard was written, from its name (`<stage>/shards/<%Y%m%dT%H%M%S%f>-<id>...`,
    the writer's clock); None for a name of another form (never collected)."""
    stamp = key.rsplit("/", 1)[-1].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def unreferenced_shards(
    stage: StageStore, index: StageIndex, *, grace_seconds: float, now: datetime | None = None
) -> list[Garbage]:
    """The shards of a stage that no document of `index` points to any more (every document
    they held was written again, into a newer shard), written more than `grace_seconds` ago.
    A shard younger than that is kept whatever the index says: a run may have written it and
    not committed it yet. Only keys under `<stage>/shards/` are ever named."""
    now = now or datetime.now(UTC)
    live = {e.shard for e in index.docs.values()}
    out = []
    for info in stage.store.list_info(stage.shard_prefix):
        if not info.key.startswith(stage.shard_prefix) or info.key in live:
            continue
        written = shard_time(info.key)
        if written is None:
            continue
        age = (now - written).total_seconds()
        if age > grace_seconds:
            out.append(Garbage(info.key, info.size, age))
    return out


def collect_garbage(
    store: Store, *, grace_seconds: float = GC_GRACE_SECONDS, dry_run: bool = False
) -> list[Garbage]:
    """Delete (or, `dry_run`, only name) the unreferenced stage shards older than the grace
    period, in the clean and machine stages. The caller holds the store's run lease (no run
    can commit meanwhile); an index the load completed (shards a crashed run left) is stored
    first, so that what is deleted is unreferenced in the stored index too. Nothing outside
    `<stage>/shards/` is touched: releases, human work and the ledger are never garbage (the
    ledger is compacted, not collected: corpus.ledger.compact_ledger)."""
    found: list[Garbage] = []
    for stage in (clean_store(store), machine_store(store)):
        index = stage.load()
        if index.dirty and not dry_run:
            stage.commit(index)
        garbage = unreferenced_shards(stage, index, grace_seconds=grace_seconds)
        if not dry_run and garbage:
            for g in garbage:
                stage.store.delete(g.key)
            index.shards -= {g.key for g in garbage}  # the index stops listing them
            index.dirty = True
            stage.commit(index)
        found += garbage
    return found
