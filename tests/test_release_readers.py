"""Downstream readers that need no corpusflow: the one-line recipes the datasheet gives (pandas,
Hugging Face datasets, DuckDB, Polars, spaCy) run as written, from a pulled folder and straight
from the real SeaweedFS with the read-only identity, and give exactly the live rows of a version
whose Parquet and spaCy parts still hold a changed document's old row and a removed one's."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from corpus.pull import load, pull, read_release_file
from corpus.release import PublishResult
from corpus.store import LocalStore
from services.seaweedfs import SeaweedService
from tests.s3_fixtures import TEST_BUCKET, make_s3_store
from tests.test_release import do_publish
from tests.test_release_shards import many_records

N = 40
CHANGED, REMOVED = "doc-00011", "doc-00023"


def changed_records() -> list[dict[str, Any]]:
    """The second version's input: one document reviewed (every format changes), one gone."""
    records = [r for r in many_records(N) if r["doc_id"] != REMOVED]
    [doc] = [r for r in records if r["doc_id"] == CHANGED]
    doc["review_status"] = "reviewed"
    doc["entities"] = doc["entities"][:1]
    return records


EXPECTED = sorted(
    (r["doc_id"], r.get("review_status", "machine"), len(r["entities"])) for r in changed_records()
)


def publish_two_versions(store: Any) -> PublishResult:
    do_publish(store, many_records(N), shard_docs=8)
    second = do_publish(store, changed_records(), shard_docs=8)
    # the overlay this file is about: base shards kept, one update, two dead rows
    assert len(second.manifest.updates) == 1 and second.manifest.dead_rows == 2
    return second


def live_rows(result: Any) -> list[tuple[str, str, int]]:
    """(doc_id, review_status, entities) of whatever a reader returned, in its order."""
    if hasattr(result, "to_pandas"):  # Polars DataFrame, datasets Dataset
        result = result.to_pandas()
    elif hasattr(result, "df"):  # DuckDB relation
        result = result.df()
    return [
        (d, s, len(e))
        for d, s, e in zip(
            result["doc_id"], result["review_status"], result["entities"], strict=True
        )
    ]


def recipes(readme: str) -> dict[str, str]:
    """tool -> the one line the datasheet's table gives for it."""
    rows = re.findall(r"^\| ([^|]+) \| `(.+)` \|$", readme, flags=re.M)
    return {tool.strip(): line for tool, line in rows}


def s3_block(readme: str) -> list[str]:
    [block] = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("readers")
    store = LocalStore(tmp / "store")
    publish_two_versions(store)
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
    assert set(lines) == {
        "live rows (for datasets and spaCy)",
        "pandas",
        "Hugging Face datasets",
        "DuckDB",
        "Polars",
        "JSONL",
        "spaCy",
    }
    assert len(list((pulled / "parquet").glob("*.parquet"))) == 5 + 1  # base shards, update
    # corpus.jsonl order, as the parts go (the update's name sorts after every shard's start)
    in_order = [(r["doc_id"], r["review_status"], len(r["entities"])) for r in load(pulled)]
    assert sorted(in_order) == EXPECTED
    # the parts still hold the dead rows: without the live index a reader gets them too
    stored = live_rows(pd.read_parquet(pulled / "parquet"))
    assert len(stored) == N + 1 and REMOVED in [d for d, _, _ in stored]
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
    exec(lines.pop("live rows (for datasets and spaCy)"), scope)
    assert len(scope["live"]) == N - 1
    for tool, line in lines.items():
        if tool == "spaCy":
            exec(line, scope)
            got = [
                (d.user_data["doc_id"], d.user_data["review_status"], len(d.ents))
                for d in scope["docs"]
            ]
            # a DocBin cannot hold overlapping entities: compare ids and statuses there
            assert [g[:2] for g in got] == [e[:2] for e in in_order]
            continue
        got = live_rows(eval(line, scope))
        assert sorted(got) == EXPECTED, tool
        if tool != "DuckDB":  # glob readers order files by name, which is the release order
            assert got == in_order, tool


@pytest.mark.integration
def test_release_readers_s3_recipes_with_readonly_keys(
    seaweed: SeaweedService, tmp_path: Path
) -> None:
    import duckdb
    import pandas as pd
    import polars as pl
    import s3fs
    from datasets import load_dataset

    prefix = f"readers-{uuid.uuid4().hex[:8]}"
    admin = make_s3_store(seaweed, prefix)
    publish_two_versions(admin)
    reader = make_s3_store(seaweed, prefix, readonly=True)
    readme = read_release_file(reader, "latest", "README.md").decode()
    block = s3_block(readme)
    assert f"s3://{TEST_BUCKET}/{prefix}/releases/v0002/manifest.json" in block[0]

    key, secret, endpoint = (
        seaweed.readonly_access_key,
        seaweed.readonly_secret_key,
        seaweed.endpoint_url,
    )
    fs = s3fs.S3FileSystem(key=key, secret=secret, endpoint_url=endpoint)
    opts = {"key": key, "secret": secret, "endpoint_url": endpoint}
    popts = {
        "aws_access_key_id": key,
        "aws_secret_access_key": secret,
        "aws_endpoint_url": endpoint,
        "aws_region": seaweed.region,
        "aws_allow_http": "true",  # the local SeaweedFS speaks plain HTTP
    }
    scope: dict[str, Any] = {"fs": fs, "opts": opts, "popts": popts, "json": json, "pd": pd}
    exec(block[0], scope)  # files = [...] and index from the manifest
    files, index = scope["files"], scope["index"]
    assert len(files) == 5 + 1 and all(
        f.startswith(f"s3://{TEST_BUCKET}/{prefix}/releases/objects/") for f in [*files, index]
    )
    in_order = [(r["doc_id"], r["review_status"], len(r["entities"])) for r in load(reader)]
    assert sorted(in_order) == EXPECTED
    exec(block[1], scope)  # live = {...} from the index
    assert len(scope["live"]) == N - 1

    # the lines of the datasheet, as written (datasets' cache kept in tmp_path)
    assert block[2].startswith("load_dataset(") and block[2].endswith(" in live)")
    data = eval(
        block[2].replace("split=", f"cache_dir={str(tmp_path / 'hf')!r}, split="),
        {**scope, "load_dataset": load_dataset},
    )
    assert live_rows(data) == in_order
    con = duckdb.connect()
    duck_line = block[3].split("; ", 1)[1]
    assert duck_line.startswith("duckdb.read_parquet(files)")
    con.register_filesystem(fs)
    got = live_rows(eval(duck_line.replace("duckdb.", "con."), {**scope, "con": con}))
    assert sorted(got) == EXPECTED
    assert block[4].startswith("pl.read_parquet(files, storage_options=")
    polars_line = block[4].split("  #", 1)[0]
    got = live_rows(eval(polars_line, {**scope, "pl": pl}))
    assert got == in_order
    # and the read-only keys stay read-only through s3fs too
    with pytest.raises(PermissionError):
        fs.pipe(files[0], b"overwritten")
