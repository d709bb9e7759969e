"""A pulled release loads in the tools downstream projects use: pandas, pyarrow's JSON and
Parquet readers, and Hugging Face `datasets` (tests/test_release_readers.py reads the Parquet
shards with datasets, DuckDB and Polars from a folder and straight from S3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus.pull import pull
from corpus.store import LocalStore
from tests.test_release import do_publish, make_records
from tests.test_release_schema import pipeline_record


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("formats")
    store = LocalStore(tmp / "store")
    do_publish(store, [*make_records(), pipeline_record()])
    return pull(store, dest=tmp / "pulled")


def test_release_formats_jsonl_reads_with_pyarrow_json(folder: Path) -> None:
    import pyarrow.json as pj

    table = pj.read_json(folder / "corpus.jsonl")
    assert table.num_rows == 4
    assert set(table.column_names) >= {"doc_id", "text", "entities", "stances", "layer", "split"}
    rows = {r["doc_id"]: r for r in table.to_pylist()}
    assert rows["doc-p"]["disputes"][0]["votes"] == {"FAVOR": 1, "AGAINST": 1}
    assert rows["doc-b"]["stances"][0]["evidence"] == [{"start": 17, "end": 38}]


def test_release_formats_jsonl_and_parquet_with_pandas(folder: Path) -> None:
    import pandas as pd

    jsonl = pd.read_json(folder / "corpus.jsonl", lines=True)
    parquet = pd.read_parquet(folder / "parquet")
    assert list(jsonl["doc_id"]) == list(parquet["doc_id"])
    assert sorted(jsonl["doc_id"]) == ["doc-a", "doc-b", "doc-c", "doc-p"]
    assert list(jsonl["layer"]) == list(parquet["layer"])
    assert list(jsonl["split"]) == list(parquet["split"])
    meta = json.loads(parquet.set_index("doc_id").loc["doc-p", "metadata_json"])
    assert meta["extra_key"] == 1


def test_release_formats_parquet_with_pyarrow_dataset(folder: Path) -> None:
    import pyarrow.dataset as ds

    table = ds.dataset(folder / "parquet", format="parquet").to_table(
        filter=ds.field("layer") == "gold"
    )
    assert table.column("doc_id").to_pylist() == ["doc-a"]


def test_release_formats_load_with_hf_datasets(folder: Path) -> None:
    import datasets

    for builder, name in (("parquet", "parquet/*.parquet"), ("json", "corpus.jsonl")):
        data = datasets.load_dataset(
            builder, data_files=str(folder / name), split="train", cache_dir=str(folder / ".hf")
        )
        assert sorted(data["doc_id"]) == ["doc-a", "doc-b", "doc-c", "doc-p"]
