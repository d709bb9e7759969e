"""The whole flow with nothing configured: local store, Label Studio import file, machine layer."""

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
    import_file = Path(first["review"]["push"]["import_file"])
    tasks = json.loads(import_file.read_text())
    assert len(tasks) == 5 and all(t["predictions"] for t in tasks)
    assert first["release"]["created"] is True

    second = corpus_pipeline(sources=str(sources), store=store_url)
    assert second["ingest"]["cleaned"] == 0 and second["ingest"]["unchanged"] == 5
    assert second["annotate"]["annotated"] == 0
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
