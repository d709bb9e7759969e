"""flows.pipeline.release_freed_memory: memory a stage freed goes back to the system between
stages. Run in a child process, so that this process's heap does not decide the outcome."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from bench.memory import _vm
from flows.pipeline import release_freed_memory

def rss_mb():
    return _vm("VmRSS") / 2**20

# 1 KB blocks come from malloc's heap (not Python's arenas); keeping one in 64 alive pins the
# heap's top, so freeing the rest leaves ~190 MB of free chunks that glibc keeps by itself
blocks = [bytes(1000) for _ in range(200_000)]
kept = blocks[::64]
del blocks
before = rss_mb()
called = release_freed_memory()
after = rss_mb()
print(called, round(before), round(after), len(kept))
"""


def test_release_freed_memory_gives_a_freed_heap_back_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT)], capture_output=True, text=True, check=True
    ).stdout.split()
    called, before, after = out[0] == "True", float(out[1]), float(out[2])
    assert called, "glibc's malloc_trim was not found on this Linux machine"
    # without the call the freed blocks stay resident: RSS would not move
    assert before - after > 100, f"RSS {before:.0f} -> {after:.0f} MB"
