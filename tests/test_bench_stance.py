"""bench.stance's row for the workers' shape (two single-thread processes) labels every pair as
the one-process row does, in the same order: it measures the same model, not a shuffled one.
The pairs are a NewsMTSC-shaped folder written here (`NEWSMTSC_DIR`), so the test needs no
eval data beside the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import annotators.finetune as finetune
from annotators.stance_model import DEFAULT_MODEL_DIR, MODEL_FILE
from bench import stance as bench_stance

pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / MODEL_FILE).is_file(), reason="the shipped stance model is missing"
)

SENTENCES = [  # (sentence, mention, polarity -1/0/1)
    ("Critics accused Senator Blake of lying to voters and wasting public money.", "Blake", -1),
    ("Mayor Ortiz was praised for her brave and generous response to the flood.", "Ortiz", 1),
    ("Governor Lee will travel to Boston on Tuesday.", "Lee", 0),
    ("Protesters denounced President Haldor as a corrupt and cruel tyrant.", "Haldor", -1),
    ("Analysts hailed Minister Varga's reforms as a remarkable success.", "Varga", 1),
    ("Judge Park was appointed to the court in 2014.", "Park", 0),
    ("Voters were furious that Councillor Reyes broke every promise he made.", "Reyes", -1),
    ("Fans cheered as coach Diaz led the team to a stunning victory.", "Diaz", 1),
    ("Ambassador Kim met the delegation at noon.", "Kim", 0),
]


def _hf_row(sentence: str, mention: str, polarity: int) -> str:
    start = sentence.index(mention)
    return json.dumps(
        {"sentence": sentence, "mention": mention, "polarity": polarity,
         "from": start, "to": start + len(mention)}
    )  # fmt: skip


@pytest.fixture
def pairs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "newsmtsc"
    sentence, mention, _ = SENTENCES[2]
    start = sentence.index(mention)
    target = {"from": start, "to": start + len(mention), "mention": mention, "polarity": 4.0}
    train = {"sentence_normalized": sentence, "targets": [target]}
    root.mkdir()
    (root / "train.jsonl").write_text(json.dumps(train) + "\n", encoding="utf8")
    for name, rows in (("rw", SENTENCES), ("mt", SENTENCES[::-1])):
        (root / "hf_splits" / name).mkdir(parents=True)
        lines = "\n".join(_hf_row(*row) for row in rows) + "\n"
        (root / "hf_splits" / name / "test.jsonl").write_text(lines, encoding="utf8")
    monkeypatch.setenv("NEWSMTSC_DIR", str(root))  # the children read it
    monkeypatch.setattr(finetune, "NEWSMTSC", root)  # this process read it at import
    return root


def test_two_single_thread_processes_give_the_one_process_labels_in_order(pairs_dir):
    limit = len(SENTENCES)  # odd: the two parts differ in length
    one = bench_stance.run_system("transformer-int8", limit, DEFAULT_MODEL_DIR)
    two = bench_stance.run_parts("transformer-int8", limit, DEFAULT_MODEL_DIR, 2)
    _, data = bench_stance.load(limit)
    assert [p.target for p in data["rw"]] == [m for _, m, _ in SENTENCES]
    for name, pairs in data.items():
        assert len(two["preds"][name]) == len(pairs) == limit
        assert two["preds"][name] == one["preds"][name]
    assert len(set(one["preds"]["rw"])) > 1  # not one label for all
    assert one["preds"]["mt"] == one["preds"]["rw"][::-1]
    assert two["pairs_per_s"] > 0 and two["peak_mb"] > 0
    assert two["version"] == one["version"]
