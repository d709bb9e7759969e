"""The records a release holds (one per document, as in corpus.jsonl), a version's manifest and
the `latest` pointer. `publish` validates every record against `ReleaseRecord` before writing
anything."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.records import Agreement, Dispute, ReviewStatus, StanceValue

Layer = Literal["gold", "silver"]
Split = Literal["train", "dev", "test"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReleaseEntity(_Strict):
    """An entity mention; `score` only for machine labels, `target` when linked to a stance
    target. Offsets index `text` of the record (code points)."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str = Field(min_length=1)
    text: str | None = None
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    target: str | None = None


class ReleaseEvidence(_Strict):
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class ReleaseStance(_Strict):
    target: str
    label: StanceValue
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    evidence: list[ReleaseEvidence] = Field(default_factory=list)


class Provenance(BaseModel):
    """Where the clean text came from and what was cut from the source."""

    model_config = ConfigDict(extra="allow")

    source_sha256: str | None = None
    content_hash: str | None = None
    cleaner_version: str | None = None
    removed: list[dict[str, Any]] = Field(default_factory=list)


class ReleaseRecord(_Strict):
    """One document of a release. `layer` and `split` are derived by the publisher (gold =
    reviewed or adjudicated; split from a hash of doc_id) and may be absent on input."""

    doc_id: str = Field(min_length=1)
    text: str
    entities: list[ReleaseEntity] = Field(default_factory=list)
    stances: list[ReleaseStance] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    review_status: ReviewStatus = "machine"
    layer: Layer | None = None
    split: Split | None = None
    disputes: list[Dispute] = Field(default_factory=list)
    agreement: Agreement | None = None
    source: str | None = None
    annotators: list[str] = Field(default_factory=list)  # pseudonyms, never names or emails
    model_version: str | None = None
    provenance: Provenance = Field(default_factory=Provenance)

    @field_validator("entities", "stances", "annotators", "disputes", mode="before")
    @classmethod
    def _none_is_no_items(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("metadata", "provenance", mode="before")
    @classmethod
    def _none_is_nothing_known(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("annotators")
    @classmethod
    def _pseudonyms_only(cls, value: list[str]) -> list[str]:
        # an email or a "First Last" name must never reach a release
        for name in value:
            if "@" in name or any(c.isspace() for c in name) or not name:
                raise ValueError(
                    f"annotator {name!r} looks like an email or a name; releases carry "
                    "pseudonyms only (see flows.tasks.pseudonym)"
                )
        return value

    @model_validator(mode="after")
    def _offsets_inside_text(self) -> ReleaseRecord:
        n = len(self.text)
        for e in self.entities:
            if not e.start < e.end <= n:
                raise ValueError(f"entity offsets {e.start}:{e.end} out of range (text has {n})")
        for s in self.stances:
            for v in s.evidence:
                if not v.start <= v.end <= n:
                    raise ValueError(
                        f"stance evidence {v.start}:{v.end} for {s.target!r} out of range "
                        f"(text has {n})"
                    )
        return self


class LatestPointer(BaseModel):
    """`releases/latest.json`: the newest version, the sha256 of its manifest (so a reader can
    trust the manifest, and through it every file) and its content hash (unchanged input
    publishes nothing)."""

    model_config = ConfigDict(extra="ignore")  # readers of older code tolerate new fields

    version: str = Field(pattern=r"^v\d{4,}$")
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    previous: str | None = None
    published_at: str | None = None


class ReleaseFile(_Strict):
    """One stored object of a version. `path` is where `pull` puts it; entries that share a
    path are the parts of one file, concatenated in manifest order (corpus.jsonl and
    corpus.conll). `object` is its store key: a content-addressed key under
    `releases/objects/` (layout 2), or None for layout 1, where the file is
    `releases/<version>/<path>`."""

    path: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    object: str | None = None


class ReleaseShard(_Strict):
    """A range of the shard key (the first 8 bytes of sha256(doc_id)) from `start` up to the
    next shard's start, and the sha256 of each format's object for the documents in it (none
    when the range is empty). The next version keeps these ranges, so an unchanged range
    names the same objects again. `documents` counts the rows stored, live or not (layout 3:
    the live index says which are live)."""

    start: str = Field(pattern=r"^[0-9a-f]{16}$")
    documents: int = Field(ge=0)
    dropped_overlaps: int = Field(default=0, ge=0)
    formats: dict[str, str] = Field(default_factory=dict)  # format -> sha256 of its object


class ReleaseUpdate(_Strict):
    """An update part (layout 3): documents added or changed since the base shards were
    written, in shard-key order, named by the sha256 of their JSONL (so the name sorts after
    every base shard's start). The live index says which of its rows are still live."""

    name: str = Field(pattern=r"^update-[0-9a-f]{16}$")
    documents: int = Field(ge=1)
    dropped_overlaps: int = Field(default=0, ge=0)
    formats: dict[str, str] = Field(default_factory=dict)  # format -> sha256 of its object


class ReleaseManifest(_Strict):
    """`releases/<version>/manifest.json`. Layout 1 (the first releases) has whole files
    under the version's folder and no shards; layout 2 lists content-addressed shards that
    versions share; layout 3 adds update parts over the base shards and the live index
    (`live.parquet`: the row_id of every live row), read merge-on-read. Readers accept all
    three."""

    layout: Literal[1, 2, 3] = 1
    version: str
    created_at: str
    content_hash: str
    code_version: str
    model_versions: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    files: list[ReleaseFile]
    previous: str | None = None
    format_version: int | None = None  # of the shard writers; shards are reused only if equal
    shard_docs: int | None = None  # documents per shard aimed at
    shards: list[ReleaseShard] = Field(default_factory=list)
    # layout 3: the update parts after the base shards (sorted by name), and how many rows
    # of the base shards and updates are no longer live (superseded or removed documents)
    updates: list[ReleaseUpdate] = Field(default_factory=list)
    dead_rows: int = Field(default=0, ge=0)
