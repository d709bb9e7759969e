"""The command-line contracts of DESIGN.md, run as a user would: the installed `corpusflow`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "corpus" / "samples").glob("*.txt"))
CLI = [sys.executable, "-m", "flows.cli"]


def run_cli(*args: str, stdin: str | None = None) -> tuple[int, list[dict], str]:
    proc = subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, lines, proc.stderr


def test_cli_clean_prints_contract_objects_and_reports_bad_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 8)
    code, out, _ = run_cli("clean", str(SAMPLES[0]), str(empty), str(binary), str(SAMPLES[1]))
    assert code == 1, "an input failed, so the exit status is 1"
    assert [o["source"] for o in out] == [str(SAMPLES[0]), str(empty), str(binary), str(SAMPLES[1])]
    good, bad_empty, bad_binary, good2 = out
    for doc in (good, good2):
        assert {"source", "doc_id", "text", "metadata", "removed"} <= set(doc)
        assert {"title", "authors", "published", "source_url", "rights"} <= set(doc["metadata"])
        for span in doc["removed"]:
            assert 0 <= span["start"] <= span["end"] and span["kind"]
    assert bad_empty["error"]["kind"] == "empty"
    assert bad_binary["error"]["kind"] in {"binary", "undecodable"}
    assert str(binary) in bad_binary["error"]["message"]


def test_cli_clean_exit_zero_when_all_inputs_clean() -> None:
    code, out, _ = run_cli("clean", str(SAMPLES[2]))
    assert code == 0 and len(out) == 1 and out[0]["text"]


def test_cli_adjudicate_contract(tmp_path: Path) -> None:
    rows = [
        {
            "doc_id": "a",
            "text": "Putin met Xi.",
            "annotations": [
                {
                    "annotator": "u1",
                    "role": "annotator",
                    "entities": [{"start": 0, "end": 5, "label": "PERSON"}],
                    "stances": [],
                },
                {
                    "annotator": "u2",
                    "role": "annotator",
                    "entities": [{"start": 0, "end": 5, "label": "PERSON"}],
                    "stances": [],
                },
            ],
        },
        {
            "doc_id": "b",
            "text": "x",
            "annotations": [
                {
                    "annotator": "u1",
                    "role": "annotator",
                    "entities": [],
                    "stances": [{"target": "Xi", "label": "FAVOR"}],
                }
            ],
        },
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    code, out, _ = run_cli("adjudicate", "--jsonl", str(src))
    assert code == 1, "the malformed line makes the exit status 1"
    assert out[0]["status"] == "adjudicated" and out[0]["agreement"]["entity_f1"] == 1.0
    assert out[1]["status"] == "reviewed"
    assert out[1]["stances"][0]["label"] == "FAVOR"
    assert "in.jsonl:3" in out[2]["error"]["message"]


@pytest.mark.model
def test_cli_stance_contract(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps(
            {"text": "Ankara has condemned Russia's invasion of Ukraine.", "target": "Russia"}
        )
        + "\n"
        + json.dumps({"text": "The summit was held in Samarkand.", "target": "Samarkand"})
        + "\n"
    )
    code, out, _ = run_cli("stance", "--jsonl", str(src))
    assert code == 0 and len(out) == 2
    for row in out:
        assert row["label"] in {"FAVOR", "AGAINST", "NEUTRAL"} and 0.0 <= row["score"] <= 1.0
    assert out[0]["label"] == "AGAINST"


@pytest.mark.model
def test_cli_annotate_adds_entities_and_stances() -> None:
    code, out, _ = run_cli("annotate", str(SAMPLES[1]))
    assert code == 0
    (doc,) = out
    text = doc["text"]
    assert doc["entities"], "the RFE/RL sample names people and places"
    for ent in doc["entities"]:
        assert text[ent["start"] : ent["end"]] == ent["text"]
        assert 0.0 <= ent["score"] <= 1.0
    for stance in doc["stances"]:
        assert stance["label"] in {"FAVOR", "AGAINST", "NEUTRAL"}
        for ev in stance["evidence"]:
            assert 0 <= ev["start"] < ev["end"] <= len(text)


def test_cli_train_refuses_clearly_when_there_is_nothing_to_train_on(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    code, _, err = run_cli("train", "stance", "--from", "latest", "--store", store)
    assert code == 2 and "no release in" in err and "Traceback" not in err
    silver = tmp_path / "silver.jsonl"
    silver.write_text(json.dumps({"doc_id": "d", "text": "x", "review_status": "machine"}) + "\n")
    code, _, err = run_cli("train", "stance", "--from", str(silver), "--store", store)
    assert code == 2 and "no labelled stances" in err and "Traceback" not in err
    code, _, err = run_cli("train", "stance", "--from", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no such file" in err


def test_cli_review_only_on_an_empty_store_publishes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = subprocess.run(
        [*CLI, "run", "--review-only", "--store", f"file://{store}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "corpusflow review" in proc.stdout and "release    none" in proc.stdout
    assert not (store / "releases").exists()
    assert len(list((store / "runs").glob("*.json"))) == 1  # the run is still reported


def test_cli_webhook_takes_its_options_and_serves(tmp_path: Path) -> None:
    import time

    import requests

    from services.seaweedfs import free_port

    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "webhook", "--port", str(port), "--secret", "s3cret", "--debounce", "60"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/hooks/labelstudio"
    try:
        for _ in range(200):
            try:
                assert requests.get(url, timeout=2).json() == {"events": 0, "runs": 0}
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.communicate()[1][-2000:]
                time.sleep(0.1)
        event: dict[str, Any] = {"action": "ANNOTATION_CREATED", "project": {"id": 1}}
        assert requests.post(url, json=event, timeout=5).status_code == 403
        signed = {"X-Corpusflow-Secret": "s3cret"}
        answer = requests.post(url, json=event, headers=signed, timeout=5)
        assert answer.status_code == 202
        assert requests.get(url, timeout=2).json() == {"events": 1, "runs": 0}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cli_train_from_a_release_nobody_reviewed_says_so(tmp_path: Path) -> None:
    from corpus.store import LocalStore
    from tests.test_release import do_publish, make_records

    store = LocalStore(tmp_path / "store")
    silver = [r for r in make_records() if r["review_status"] not in ("reviewed", "adjudicated")]
    do_publish(store, silver)
    code, _, err = run_cli("train", "stance", "--from", "latest", "--store", store.url)
    assert code == 2 and "Traceback" not in err
    assert "nobody has reviewed anything yet" in err and "v0001" in err
    assert "/release/" not in err, "no temporary folder is named"


def test_cli_clean_into_a_closed_pipe_ends_quietly() -> None:
    """`corpusflow clean … | head -c 2000`: the reader leaves early, corpusflow stops quietly."""
    proc = subprocess.Popen(
        [*CLI, "clean", *map(str, SAMPLES * 20)],  # far more output than a pipe buffer holds
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(2000)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 0, err
    assert len(head) == 2000 and "Traceback" not in err and "BrokenPipe" not in err


def test_cli_services_outside_the_checkout_refuse_without_writing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "services", "status"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2 and "not inside a corpusflow checkout" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / ".services").exists()


def test_cli_services_from_a_subfolder_use_the_checkouts_services() -> None:
    sub = ROOT / "flows"
    proc = subprocess.run(
        [*CLI, "services", "status"], capture_output=True, text=True, cwd=sub, timeout=120
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: the services are not running
    states = json.loads(proc.stdout)
    assert set(states) == {"labelstudio", "seaweedfs", "prefect"}
    assert states["prefect"]["home"] == str(ROOT / ".services" / "prefect")
    assert not (sub / ".services").exists()


def test_cli_status_of_an_empty_store(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*CLI, "status", "--store", f"file://{tmp_path / 'store'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "inputs       0" in proc.stdout and "release      none yet" in proc.stdout


def test_cli_status_counts_a_run(tmp_path: Path) -> None:
    """After an embedded run: the ledger's fates, documents per stage, the release."""
    from corpus.ledger import Ledger
    from corpus.store import LocalStore
    from flows.tasks import keys
    from tests.test_release import do_publish

    store = LocalStore(tmp_path / "store")
    ledger = Ledger(store, "run-1")
    ledger.record("a.txt", "processed", "ingest", doc_id="a")
    ledger.record("b.bin", "skipped", "ingest", reason="unsupported")
    ledger.quarantine("c.txt", b"", stage="ingest", kind="empty", message="c.txt: empty")
    ledger.flush()
    store.put_json(keys.clean("a"), {})
    store.put_json(keys.machine("a"), {})
    store.put_json(keys.adjudicated("a"), {"status": "machine"})
    do_publish(store)
    proc = subprocess.run(
        [*CLI, "status", "--store", store.url], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "inputs       3: 1 processed (ingest), 1 quarantined (ingest), 1 skipped (ingest)" in out
    assert "cleaned      1" in out and "annotated    1" in out and "quarantined  1" in out
    assert "adjudicated  1 machine" in out
    assert f"release      v0001 at {store.url}/releases/v0001/" in out


def test_cli_run_names_an_unreachable_prefect_server(tmp_path: Path) -> None:
    from services.seaweedfs import free_port

    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    proc = subprocess.run(
        [*CLI, "run", "--store", f"file://{tmp_path / 'store'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and "does not answer" in proc.stderr
    assert env["PREFECT_API_URL"] in proc.stderr and "Traceback" not in proc.stderr


def _a_report() -> dict:
    return {
        "run_id": "abc",
        "sources": "corpus/samples/",
        "store": "s3://b/store",
        "inputs": 3,
        "ingest": {
            "cleaned": 1,
            "unchanged": 0,
            "skipped": [{"source": "x.bin", "reason": "unsupported file type .bin"}],
            "quarantined": [{"source": "e.txt", "reason": "empty: e.txt is empty"}],
        },
        "annotate": {"annotated": 1, "unchanged": 0},
        "review": {
            "push": {"mode": "label-studio", "project_id": 7, "created": 1, "updated": 0},
            "collect": {"collected": 1, "cancelled": 0},
            "adjudication": {"disputed": 0, "pushed": 0},
        },
        "adjudication": {"reviewed": 1},
        "agreement": {
            "documents_with_overlap": 1,
            "entity_f1_exact": 0.5,
            "entity_f1_overlap": 0.75,
            "entity_f1_exact_per_label": {"PERSON": 1.0, "GPE": 0.0},
            "stance_kappa_pairwise": {"ann1@x.org~ann2@x.org": 0.4},
            "annotators": {
                "ann1@x.org": {
                    "documents": 1,
                    "entities": 2,
                    "stances": 1,
                    "mean_f1_vs_others": 0.5,
                },
                "ann2@x.org": {
                    "documents": 1,
                    "entities": 1,
                    "stances": 1,
                    "mean_f1_vs_others": 0.5,
                },
            },
        },
        "release": {"version": "v0002", "created": True},
        "release_url": "s3://b/store/releases/v0002/",
        "label_studio_project_url": "http://ls:8080/projects/7",
        "report_key": "runs/abc.json",
    }


def test_cli_summary_is_readable_lines() -> None:
    from flows.cli import summary

    text = summary(_a_report())
    assert "{" not in text, "no raw dicts"
    assert text.splitlines() == [
        "corpusflow run abc: 3 inputs from corpus/samples/",
        "  ingest     1 cleaned, 0 unchanged, 1 skipped, 1 quarantined",
        "  annotate   1 annotated, 0 unchanged",
        "  push       Label Studio project 7: 1 created, 0 updated",
        "  collect    1 collected, 0 cancelled",
        "  adjudicate 1 reviewed",
        "  disputes   0 disputed, 0 pushed",
        "  release    v0002 (new) at s3://b/store/releases/v0002/",
        "  review at  http://ls:8080/projects/7",
        "  skipped    x.bin: unsupported file type .bin",
        "  quarantined e.txt: empty: e.txt is empty",
        "  report     s3://b/store/runs/abc.json",
    ]


def test_cli_run_report_markdown_names_pseudonyms_links_and_reasons(tmp_path: Path) -> None:
    from corpus.store import LocalStore
    from flows.pipeline import render_markdown
    from flows.tasks import Pseudonyms

    names = Pseudonyms(LocalStore(tmp_path / "store"))
    md = render_markdown(_a_report(), names)
    assert "{'" not in md and "@x.org" not in md, "annotators appear under pseudonyms"
    assert f"| {names('ann1@x.org')} | 1 | 2 | 1 | 0.500 |" in md
    assert "| PERSON | 1.000 |" in md and "| GPE | 0.000 |" in md
    assert "| e.txt | empty: e.txt is empty |" in md
    assert "[http://ls:8080/projects/7](http://ls:8080/projects/7)" in md
    assert "s3://b/store/releases/v0002/" in md
    assert "| ingest | 1 cleaned, 0 unchanged, 1 skipped, 1 quarantined |" in md
