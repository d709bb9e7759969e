"""flows.pipeline.release_freed_memory: memory a stage freed goes back to the system between
stages, pyarrow's buffers included once publish has put them on malloc
(`arrow_on_system_malloc`). Run in child processes, so that this process's heap does not
decide the outcome."""

from __future__ import annotations

import os
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


def _child(script: str, env: dict[str, str] | None = None) -> list[str]:
    """What `script` prints, run by this interpreter in a child with the checkout as argv[1]."""
    return subprocess.run(
        [sys.executable, "-c", script, str(ROOT)],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.split()  # fmt: skip


def test_release_freed_memory_gives_a_freed_heap_back_to_the_system() -> None:
    out = _child(CHILD)
    called, before, after = out[0] == "True", float(out[1]), float(out[2])
    assert called, "glibc's malloc_trim was not found on this Linux machine"
    # without the call the freed blocks stay resident: RSS would not move
    assert before - after > 100, f"RSS {before:.0f} -> {after:.0f} MB"


ARROW_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from bench.memory import _vm
from flows.pipeline import arrow_on_system_malloc, release_freed_memory
import pyarrow as pa

backend = arrow_on_system_malloc()

def rss_mb():
    return _vm("VmRSS") / 2**20

# string columns built and dropped, as publish builds its shards; one in 64 kept alive
arrays = [pa.array([f"{i:08d}" * 8] * 2000) for i in range(1500)]
kept = arrays[::64]
del arrays
before = rss_mb()
release_freed_memory()
after = rss_mb()
print(backend, round(before), round(after), len(kept))
"""


def test_arrow_buffers_publish_freed_go_back_to_the_system() -> None:
    """With pyarrow's default pool (mimalloc) the same child kept its ~200 MB of freed
    buffers: 502 -> 490 MB, checked; on malloc, trimmed, 434 -> 237 MB."""
    out = _child(
        ARROW_CHILD, {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    )
    backend, before, after = out[0], float(out[1]), float(out[2])
    assert backend == "system"
    assert before - after > 100, f"RSS {before:.0f} -> {after:.0f} MB"


def test_arrow_pool_chosen_by_the_operator_is_kept() -> None:
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from flows.pipeline import arrow_on_system_malloc; print(arrow_on_system_malloc())"
    )
    assert _child(script, {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}) == ["mimalloc"]
