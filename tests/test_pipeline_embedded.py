"""The whole flow with nothing configured: local store, Label Studio import files, machine layer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from corpus.pull import pull
from corpus.store import open_store

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.model
def test_pipeline_embedded_run_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    from flows.pipeline import corpus_pipeline

    sources = tmp_path / "sources"
    shutil.copytree(ROOT / "corpus" / "samples", sources)
    (sources / "empty.txt").write_bytes(b"")
    (sources / "notes.xyz").write_text("not a supported type")
    monkeypatch.chdir(tmp_path)
    store_url = f"file://{tmp_path / 'store'}"

    first = corpus_pipeline(sources=str(sources), store=store_url)
    assert first["inputs"] == 7
    assert first["ingest"]["cleaned"] == 5
    assert [q["source"] for q in first["ingest"]["quarantined"]] == ["empty.txt"]
    assert [s["source"] for s in first["ingest"]["skipped"]] == ["notes.xyz"]
    assert first["review"]["push"]["mode"] == "embedded"
    import_dir = Path(first["review"]["push"]["import_file"])  # one file per machine shard
    tasks = [t for f in sorted(import_dir.glob("*.json")) for t in json.loads(f.read_text())]
    assert len(tasks) == 5 and all(t["predictions"] for t in tasks)
    assert first["release"]["created"] is True
    # the flow's process holds no stage index once its run is done (~0.5 KB a document each)
    import gc

    from corpus.stagestore import _INDEXES, StageIndex

    gc.collect()
    assert _INDEXES == {}
    assert not [o for o in gc.get_objects() if type(o) is StageIndex]

    second = corpus_pipeline(sources=str(sources), store=store_url)
    assert second["ingest"]["cleaned"] == 0 and second["ingest"]["unchanged"] == 5
    assert second["annotate"]["annotated"] == 0
    assert second["review"]["push"]["written"] == 0  # no import file rewritten

    # one source edited: only the import files of the shards it left and joined are written
    edited = sorted(sources.glob("*.txt"))[0]
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA correction.\n", encoding="utf-8")
    edit_run = corpus_pipeline(sources=str(sources), store=store_url)
    assert edit_run["ingest"]["cleaned"] == 1 and edit_run["annotate"]["annotated"] == 1
    push = edit_run["review"]["push"]
    assert push["written"] <= 2 and push["tasks"] == 5
    tasks = [t for f in sorted(import_dir.glob("*.json")) for t in json.loads(f.read_text())]
    assert len(tasks) == 5 and len({t["data"]["doc_id"] for t in tasks}) == 5
    assert any("A correction." in t["data"]["text"] for t in tasks)
    assert second["release"] == {"version": first["release"]["version"], "created": False}

    store = open_store(store_url)
    dest = pull(store, "latest", dest=tmp_path / "pulled")
    rows = [json.loads(x) for x in (dest / "corpus.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    assert {r["review_status"] for r in rows} == {"machine"}
    assert all(r["entities"] for r in rows)
    # nothing is lost: the quarantined input is kept with its reason
    reasons = [k for k in store.list("quarantine/") if k.endswith("reason.json")]
    assert len(reasons) == 1

    # an operator trains the stance classifier on labelled pairs; the next run re-annotates
    # every document with it and records its version
    from annotators.train import TrainedStance
    from flows.cli import main as cli_main
    from flows.tasks import keys

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps(
            {
                "text": "Ankara has condemned Russia's invasion.",
                "target": "Russia",
                "label": "AGAINST",
            }
        )
        + "\n"
    )
    assert cli_main(["train", "stance", "--from", str(gold), "--store", store_url]) == 0
    current = store.get_json(keys.stance_model_current)
    trained = TrainedStance.from_bytes(store.get_bytes(current["key"]))
    assert current["version"] == trained.version
    # training on the same examples again makes the same model: nothing new, no error
    assert cli_main(["train", "stance", "--from", str(gold), "--store", store_url]) == 0
    assert len(list(store.list("models/stance/"))) == 2  # the model and the current pointer

    third = corpus_pipeline(sources=str(sources), store=store_url)
    assert third["annotate"]["annotated"] == 5
    assert third["release"]["created"] is True
    manifest = json.loads(store.get_bytes(f"releases/{third['release']['version']}/manifest.json"))
    assert any(trained.version in v for v in manifest["model_versions"])
