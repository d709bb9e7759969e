"""Settings: what a deployment expects (CORPUSFLOW_EXPECT) against what a run's settings name,
and placeholders `prefect deploy` left unrendered."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.settings import Settings

S3 = {
    "CORPUSFLOW_STORE": "s3://b/p",
    "AWS_ACCESS_KEY_ID": "k",
    "AWS_SECRET_ACCESS_KEY": "s",
}
LS = {"LABEL_STUDIO_URL": "http://ls:8080", "LABEL_STUDIO_API_KEY": "t"}


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, []),  # nothing expected: embedded is fine
        ({"CORPUSFLOW_EXPECT": "label-studio,s3", **LS, **S3}, []),
        (
            {"CORPUSFLOW_EXPECT": "label-studio", "LABEL_STUDIO_API_KEY": "t"},
            ["LABEL_STUDIO_URL is not set"],
        ),
        (
            {
                "CORPUSFLOW_EXPECT": "label-studio",
                "LABEL_STUDIO_URL": "",
                "LABEL_STUDIO_API_KEY": "t",
            },
            ["LABEL_STUDIO_URL is not set"],  # an empty variable counts as unset
        ),
        (
            {
                "CORPUSFLOW_EXPECT": "label-studio",
                "LABEL_STUDIO_URL": "{{ $LABEL_STUDIO_URL }}",  # deployed while it was unset
                "LABEL_STUDIO_API_KEY": "t",
            },
            ["LABEL_STUDIO_URL is not set"],
        ),
        (
            {
                "CORPUSFLOW_EXPECT": "label-studio",
                "CORPUSFLOW_SECRET_BLOCKS": "cf",
                **{"LABEL_STUDIO_URL": "http://ls"},
            },
            ["LABEL_STUDIO_API_KEY is not set (nor the Secret block cf-label-studio-api-key)"],
        ),
        (
            {"CORPUSFLOW_EXPECT": "s3", **S3, "CORPUSFLOW_STORE": "file:///tmp/x"},
            ["CORPUSFLOW_STORE is 'file:///tmp/x', not an s3:// store"],
        ),
        (
            {"CORPUSFLOW_EXPECT": " s3 ", "CORPUSFLOW_STORE": "s3://b/p"},
            ["AWS_ACCESS_KEY_ID is not set", "AWS_SECRET_ACCESS_KEY is not set"],
        ),
    ],
)
def test_settings_unmet_expectations(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: list[str]
) -> None:
    monkeypatch.chdir("/")  # no .env of the checkout
    for name in ("CORPUSFLOW_EXPECT", "CORPUSFLOW_SECRET_BLOCKS", "LABEL_STUDIO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().unmet_expectations() == missing


def test_settings_unknown_expectation_is_refused_with_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORPUSFLOW_EXPECT", "labelstudio")
    with pytest.raises(ValidationError, match="unknown labelstudio; known: label-studio, s3"):
        Settings()


def test_settings_unrendered_placeholder_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORPUSFLOW_STORE", "{{ $CORPUSFLOW_STORE }}")
    monkeypatch.setenv("CORPUSFLOW_BATCH", "{{ $CORPUSFLOW_BATCH }}")
    s = Settings()
    assert s.store == "file://.corpusflow/store" and s.batch_size == 32
