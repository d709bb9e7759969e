"""bench.stance's row for the workers' shape (two single-thread processes) labels every pair as
the one-process row does, in the same order: it measures the same model, not a shuffled one."""

from __future__ import annotations

import pytest

from annotators.stance_model import DEFAULT_MODEL_DIR, MODEL_FILE
from bench import stance as bench_stance

pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / MODEL_FILE).is_file(), reason="the shipped stance model is missing"
)


def test_two_single_thread_processes_give_the_one_process_labels_in_order():
    limit = 9  # odd: the two parts differ in length
    one = bench_stance.run_system("transformer-int8", limit, DEFAULT_MODEL_DIR)
    two = bench_stance.run_parts("transformer-int8", limit, DEFAULT_MODEL_DIR, 2)
    _, data = bench_stance.load(limit)
    for name, pairs in data.items():
        assert len(two["preds"][name]) == len(pairs) == limit
        assert two["preds"][name] == one["preds"][name]
    assert len(set(one["preds"]["rw"] + one["preds"]["mt"])) > 1  # not one label for all
    assert two["pairs_per_s"] > 0 and two["peak_mb"] > 0
    assert two["version"] == one["version"]
