"""`make run` runs the pipeline with its own settings of `.services/env` only: the publisher's S3
keys and the API token, never the operator's (bucket admin) or reader's keys, nor the Label
Studio admin's password."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from services import ctl
from services.common import write_env_file

ROOT = Path(__file__).resolve().parents[1]
SAVED = {
    "LABEL_STUDIO_URL": "http://127.0.0.1:18085",
    "LABEL_STUDIO_API_KEY": "token-of-the-pipeline",
    "LABEL_STUDIO_USERNAME": "admin@corpusflow.local",
    "LABEL_STUDIO_PASSWORD": "admin-password",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:18333",
    "AWS_ACCESS_KEY_ID": "cfpub-key",
    "AWS_SECRET_ACCESS_KEY": "publisher-secret",
    "AWS_REGION": "us-east-1",
    "CORPUSFLOW_STORE": "s3://corpusflow/store",
    "CORPUSFLOW_S3_READONLY_ACCESS_KEY": "cfro-key",
    "CORPUSFLOW_S3_READONLY_SECRET_KEY": "reader-secret",
    "CORPUSFLOW_S3_OPERATOR_ACCESS_KEY": "cfop-key",
    "CORPUSFLOW_S3_OPERATOR_SECRET_KEY": "operator-secret",
}


def test_services_run_gives_the_pipeline_its_keys_and_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env_file(tmp_path / "env", SAVED)
    monkeypatch.setattr(ctl, "env_file", lambda: tmp_path / "env")
    # a developer's shell: their own AWS key, and an operator key they exported once
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-their-own")
    monkeypatch.setenv("CORPUSFLOW_S3_OPERATOR_SECRET_KEY", "operator-secret")
    started: list[tuple[str, list[str], dict[str, str]]] = []
    # the run itself is not what this test is about: what it would be started with is
    monkeypatch.setattr(os, "execve", lambda path, argv, env: started.append((path, argv, env)))

    assert ctl.main(["run", "--sources", "corpus/samples/"]) == 0
    ((_, argv, env),) = started
    assert argv[1:] == ["-m", "flows.cli", "run", "--sources", "corpus/samples/"]
    assert env["AWS_ACCESS_KEY_ID"] == "cfpub-key"  # the publisher's, not the shell's
    assert env["AWS_SECRET_ACCESS_KEY"] == "publisher-secret"
    assert env["LABEL_STUDIO_API_KEY"] == "token-of-the-pipeline"
    assert env["CORPUSFLOW_STORE"] == "s3://corpusflow/store"
    assert env["PATH"] == os.environ["PATH"]  # the rest of the shell stays
    for secret in ("admin-password", "reader-secret", "operator-secret", "cfop-key", "cfro-key"):
        assert secret not in env.values(), secret


def test_services_run_without_services_up_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ctl, "env_file", lambda: tmp_path / "env")
    assert ctl.main(["run"]) == 2
    assert "make services-up" in capsys.readouterr().err


def test_services_make_run_goes_through_services_run() -> None:
    """The Makefile's `run` recipe: no `source .services/env` (it would export every secret)."""
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None
    assert "services.ctl run" in recipe[1] and "source .services/env" not in recipe[1]
