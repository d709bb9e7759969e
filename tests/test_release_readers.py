"""Downstream readers that need no corpusflow: the one-line recipes the datasheet gives (pandas,
Hugging Face datasets, DuckDB, Polars, spaCy) run as written, from a pulled folder and straight
from the real SeaweedFS with the read-only identity."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from corpus.pull import load, pull, read_release_file
from corpus.store import LocalStore
from services.seaweedfs import SeaweedService
from tests.s3_fixtures import TEST_BUCKET, make_s3_store
from tests.test_release import do_publish
from tests.test_release_shards import many_records

N = 40


def recipes(readme: str) -> dict[str, str]:
    """tool -> the one line the datasheet's table gives for it."""
    rows = re.findall(r"^\| ([^|]+) \| `(.+)` \|$", readme, flags=re.M)
    return {tool.strip(): line for tool, line in rows}


def s3_block(readme: str) -> list[str]:
    [block] = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    return [line for line in block.splitlines() if line.strip()]


def rows_of(result: Any) -> list[str]:
    """doc_ids of whatever a reader returned."""
    if hasattr(result, "to_pandas"):  # Polars DataFrame, datasets Dataset
        result = result.to_pandas()
    elif hasattr(result, "df"):  # DuckDB relation
        result = result.df()
    return list(result["doc_id"])


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("readers")
    store = LocalStore(tmp / "store")
    do_publish(store, many_records(N), shard_docs=8)
    return pull(store, dest=tmp / "data")


def test_release_readers_folder_recipes_run_as_written(
    pulled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb
    import pandas as pd
    import polars as pl
    import spacy
    from datasets import load_dataset
    from spacy.tokens import DocBin

    readme = (pulled / "README.md").read_text()
    lines = recipes(readme)
    assert set(lines) == {"pandas", "Hugging Face datasets", "DuckDB", "Polars", "JSONL", "spaCy"}
    assert len(list((pulled / "parquet").glob("*.parquet"))) == 5
    expected = [r["doc_id"] for r in load(pulled)]  # corpus.jsonl order, as the shards go
    assert sorted(expected) == sorted(r["doc_id"] for r in many_records(N))
    monkeypatch.chdir(pulled.parent.parent)  # the recipes name data/<version>/...
    monkeypatch.setenv("HF_DATASETS_CACHE", str(pulled.parent.parent / "hf-cache"))
    scope = {
        "pd": pd,
        "pl": pl,
        "duckdb": duckdb,
        "load_dataset": load_dataset,
        "DocBin": DocBin,
        "Path": Path,
        "nlp": spacy.blank("en"),
    }
    for tool, line in lines.items():
        if tool == "spaCy":
            exec(line, scope)
            assert [d.user_data["doc_id"] for d in scope["docs"]] == expected
            continue
        got = rows_of(eval(line, scope))
        # glob readers order files by name, which is the shard order
        assert got == expected, tool


@pytest.mark.integration
def test_release_readers_s3_recipes_with_readonly_keys(
    seaweed: SeaweedService, tmp_path: Path
) -> None:
    import duckdb
    import polars as pl
    import s3fs
    from datasets import load_dataset

    prefix = f"readers-{uuid.uuid4().hex[:8]}"
    admin = make_s3_store(seaweed, prefix)
    do_publish(admin, many_records(N), shard_docs=8)
    reader = make_s3_store(seaweed, prefix, readonly=True)
    readme = read_release_file(reader, "latest", "README.md").decode()
    block = s3_block(readme)
    assert f"s3://{TEST_BUCKET}/{prefix}/releases/v0001/manifest.json" in block[0]

    key, secret, endpoint = (
        seaweed.readonly_access_key,
        seaweed.readonly_secret_key,
        seaweed.endpoint_url,
    )
    fs = s3fs.S3FileSystem(key=key, secret=secret, endpoint_url=endpoint)
    opts = {"key": key, "secret": secret, "endpoint_url": endpoint}
    scope: dict[str, Any] = {"fs": fs, "opts": opts, "json": json}
    exec(block[0], scope)  # files = [...] from the manifest
    files = scope["files"]
    assert len(files) == 5 and all(f.startswith(f"s3://{TEST_BUCKET}/{prefix}/") for f in files)
    expected = [r["doc_id"] for r in load(reader)]

    data = load_dataset(
        "parquet",
        data_files=files,
        storage_options=opts,
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert rows_of(data) == expected
    con = duckdb.connect()
    con.register_filesystem(fs)
    assert rows_of(con.read_parquet(files)) == expected
    polars_opts = {
        "aws_access_key_id": key,
        "aws_secret_access_key": secret,
        "aws_endpoint_url": endpoint,
        "aws_region": seaweed.region,
        "aws_allow_http": "true",  # the local SeaweedFS speaks plain HTTP
    }
    assert rows_of(pl.read_parquet(files, storage_options=polars_opts)) == expected
    # the lines of the datasheet, as written (polars' options filled in)
    assert block[1].startswith("load_dataset(") and "duckdb.read_parquet(files)" in block[2]
    assert block[3].startswith("pl.read_parquet(files, storage_options=")
    # and the read-only keys stay read-only through s3fs too
    with pytest.raises(PermissionError):
        fs.pipe(files[0], b"overwritten")
