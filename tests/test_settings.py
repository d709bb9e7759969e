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


@pytest.mark.parametrize(
    ("raw", "delays"),
    [
        (None, [2.0, 10.0, 30.0]),
        ("", [2.0, 10.0, 30.0]),  # empty counts as unset, as for the other settings
        ("0.5,0.5,0.5", [0.5, 0.5, 0.5]),
        (" 5 ", [5.0]),  # one retry
        ("0", [0.0]),
    ],
)
def test_settings_retry_delays_one_per_retry(raw: str | None, delays: list[float]) -> None:
    from schemas.settings import retry_delays

    env = {} if raw is None else {"CORPUSFLOW_RETRY_DELAYS": raw}
    assert retry_delays(env) == delays


@pytest.mark.parametrize("raw", ["2,ten", "2,,3", "-1", "4000", "nan"])
def test_settings_retry_delays_refuses_what_is_not_seconds(raw: str) -> None:
    from schemas.settings import retry_delays

    with pytest.raises(ValueError, match=f"CORPUSFLOW_RETRY_DELAYS={raw!r}: expected seconds"):
        retry_delays({"CORPUSFLOW_RETRY_DELAYS": raw})


@pytest.mark.parametrize(("raw", "attempts"), [(None, 6), ("", 6), ("2", 2)])
def test_settings_s3_client_takes_aws_max_attempts(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, attempts: int
) -> None:
    from corpus.store import s3_client

    if raw is None:
        monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    else:
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", raw)
    client = s3_client(endpoint_url="http://127.0.0.1:9", access_key="k", secret_key="s")
    assert client.meta.config.retries["total_max_attempts"] == attempts  # the first included


def test_settings_s3_client_refuses_a_bad_aws_max_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    from corpus.store import s3_client

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="AWS_MAX_ATTEMPTS='0'"):
        s3_client(endpoint_url="http://127.0.0.1:9", access_key="k", secret_key="s")
