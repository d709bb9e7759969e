"""bench/scale.py's `--cold` rows: the re-runs in processes of their own, on the store the first
run wrote, each reporting what its run did (so the benchmark cannot print figures of runs that
did nothing, or of the first run's process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_scale_cold_reruns_are_new_processes_on_the_first_runs_store(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--n", "40", "--skip-s3", "--annotate-docs", "0",
         "--cold"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stderr.strip().splitlines()[-1])
    local = [r for r in rows if r["target"] == "local"]
    assert [r["step"].split(" ", 1)[0] for r in local] == ["(a)", "(b)", "(c)"]
    first, unchanged, changed = local
    assert "new process" not in first["step"]
    assert "annotated 40" in first["note"] and "v0001 new" in first["note"]
    # the unchanged re-run, in its own process: nothing cleaned, the release kept
    assert unchanged["step"] == "(b) unchanged, new process"
    assert "cleaned 0, annotated 0" in unchanged["note"] and "v0001 unchanged" in unchanged["note"]
    assert "process" in unchanged["note"] and "imports included" in unchanged["note"]
    # 1% of 40 is one source changed: one document cleaned and annotated again, a new version
    assert changed["step"] == "(c) 1 changed, new process"
    assert "cleaned 1, annotated 1" in changed["note"] and "v0002 new" in changed["note"]
    assert "publish wrote" in changed["note"]
    for row in local:
        assert row["rss"] and row["rss"] > 50 * 2**20  # a Python process with the stack loaded
        assert row["seconds"] > 0
