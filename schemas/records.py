"""The records stages exchange through the store, and the JSON shapes of the CLI contracts
(see DESIGN.md). Offsets are Python string indices (code points)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

StanceValue = Literal["FAVOR", "AGAINST", "NEUTRAL"]
STANCE_LABELS: tuple[StanceValue, ...] = ("FAVOR", "AGAINST", "NEUTRAL")
# machine: no human work yet; in_review: some annotators submitted, fewer than the overlap asks
# for (machine labels still stand); reviewed / adjudicated / disputed: see the adjudication rules;
# source_changed: the source was edited after review, the human work is on the old text (kept in
# history/) and the new text's task is not reviewed yet (machine labels stand)
ReviewStatus = Literal[
    "machine", "in_review", "reviewed", "adjudicated", "disputed", "source_changed"
]
Role = Literal["annotator", "adjudicator"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- ingest


class RemovedSpan(_Record):
    """A piece of the decoded source text that is not in the clean text."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    kind: str


class Repair(_Record):
    """A source span replaced by other text: a re-joined paragraph, a de-hyphenated word,
    an unescaped character. `start`/`end` index the source, `replacement` is what the clean
    text has instead."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    kind: str
    replacement: str


class OffsetSegment(_Record):
    """`length` characters of clean text from `clean_start` copy source text from `source_start`."""

    clean_start: int = Field(ge=0)
    source_start: int = Field(ge=0)
    length: int = Field(ge=0)


class DocumentMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    title: str | None = None
    authors: list[str] = Field(default_factory=list)
    published: str | None = None
    source_url: str | None = None
    rights: str | None = None


class CleanDocument(_Record):
    source: str
    doc_id: str
    text: str
    metadata: DocumentMetadata = Field(default_factory=DocumentMetadata)
    removed: list[RemovedSpan] = Field(default_factory=list)
    repairs: list[Repair] = Field(default_factory=list)
    offset_map: list[OffsetSegment] = Field(default_factory=list)
    media_type: str = "text/plain"
    source_sha256: str = ""
    content_hash: str = ""
    cleaner_version: str = ""


class InputError(_Record):
    kind: str
    message: str


class FailedInput(_Record):
    source: str
    error: InputError


# ---------------------------------------------------------------- annotate


class Entity(_Record):
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str
    text: str
    score: float = Field(ge=0.0, le=1.0)
    target: str | None = None  # canonical entity this mention belongs to


class Evidence(_Record):
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Stance(_Record):
    target: str
    label: StanceValue
    score: float = Field(ge=0.0, le=1.0)
    evidence: list[Evidence] = Field(default_factory=list)


class AnnotatedDocument(_Record):
    source: str
    doc_id: str
    text: str
    metadata: DocumentMetadata = Field(default_factory=DocumentMetadata)
    removed: list[RemovedSpan] = Field(default_factory=list)
    repairs: list[Repair] = Field(default_factory=list)
    offset_map: list[OffsetSegment] = Field(default_factory=list)
    media_type: str = "text/plain"
    source_sha256: str = ""
    content_hash: str = ""
    cleaner_version: str = ""
    entities: list[Entity] = Field(default_factory=list)
    stances: list[Stance] = Field(default_factory=list)
    model_version: str = ""

    @classmethod
    def from_clean(cls, doc: CleanDocument, **annotations: object) -> AnnotatedDocument:
        return cls.model_validate({**doc.model_dump(), **annotations})


class StanceRequest(_Record):
    text: str
    target: str


class StanceResult(_Record):
    label: StanceValue
    score: float


# ---------------------------------------------------------------- review and adjudication


class SpanLabel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    start: int
    end: int
    label: str


class StanceLabel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    target: str
    label: StanceValue
    evidence: tuple[Evidence, ...] = ()


class HumanAnnotation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    annotator: str
    role: Role = "annotator"
    entities: list[SpanLabel] = Field(default_factory=list)
    stances: list[StanceLabel] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    lead_time: float | None = None
    updated_at: str | None = None


class AdjudicationInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    doc_id: str
    text: str = ""
    annotations: list[HumanAnnotation] = Field(default_factory=list)


class Dispute(_Record):
    kind: Literal["entity", "stance"]
    # entity disputes: the span; stance disputes: the target
    start: int | None = None
    end: int | None = None
    target: str | None = None
    votes: dict[str, int]  # label -> number of annotators who gave it
    annotators: int


class Agreement(_Record):
    entity_f1: float | None
    stance_kappa: float | None


class AdjudicationResult(_Record):
    doc_id: str
    status: ReviewStatus
    entities: list[SpanLabel]
    stances: list[StanceLabel]
    disputes: list[Dispute]
    agreement: Agreement


# ---------------------------------------------------------------- ledger and releases


class LedgerEntry(_Record):
    """The fate of one input: processed, skipped (with why) or quarantined (with the reason)."""

    source: str
    doc_id: str | None = None
    source_sha256: str | None = None
    status: Literal["processed", "skipped", "quarantined"]
    stage: str
    reason: str | None = None
    error_kind: str | None = None
    cleaner_version: str | None = None
    run_id: str
    at: str


class ManifestFile(_Record):
    path: str
    sha256: str
    size: int


class Manifest(_Record):
    version: str
    created_at: str
    content_hash: str
    code_version: str
    model_versions: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    files: list[ManifestFile]
    previous: str | None = None
