"""Review-loop throughput against a real Label Studio, for the SDK-based client (review/) and,
in the same run against the same server, the hand-written HTTP client it replaced (read from
git, commit ff44639, `annotators/labelstudio.py`): push N tasks with predictions and collect N
human annotations.

    .venv/bin/python -m bench.review            # N = 10,000; starts its own Label Studio
    .venv/bin/python -m bench.review --n 2000 --url http://127.0.0.1:PORT   # reuse a server

How each figure is made (all against the same server, in the same run):
- push, batched: `push` (the pipeline's call) of N new documents, 500 a request, each client
  into its own new project (old first, then the SDK client).
- re-push: the same N documents again: nothing to create or change (the idempotence check).
- push, one task per call: one import request per document (data + prediction), SDK client,
  timed on a sample (`--sample`, default 200) in its own project and extrapolated to N.
- annotations in: N annotations have to exist before they can be collected. The fastest real
  way is Label Studio's import of tasks that carry their annotations (`completed_by` an annotator
  user), 500 a request, timed as "annotations, bulk import". As a person submits them (one POST
  /api/tasks/<id>/annotations/ each, with the annotator's own token) they are timed on the sample
  and extrapolated.
- collect, full: `collect` of all N annotated tasks (paged, 500 a page), both clients on the same
  project, alternating, `--repeat` times each (default 2), best time kept; collect, incremental:
  the next `collect` from its cursor when nothing changed.

Batching of our own on the SDK client: the SDK sends an import in one request with whatever it
is given, so `push` cuts imports into batches itself; `tasks.list`'s iterator asks for one page
past the last (and takes the 404 as the end), so the client pages by hand and stops at `total`.

Measured 2026-12-01, N = 10,000, Label Studio 1.23.2 (SQLite), a 2-core machine shared with
other jobs (load 10+), both clients in one run, best of 2 with the order swapped:

| step                             | old s | SDK s | SDK/old |
|----------------------------------|-------|-------|---------|
| push, batched import (500/req)   | 21.79 | 21.97 |    1.01 |
| re-push, nothing changed         | 15.03 | 14.28 |    0.95 |
| collect, full (500 a page)       | 19.27 | 18.63 |    0.97 |
| collect, incremental (no change) |  0.23 |  0.19 |    0.81 |

One task per call ~1384 s (7/s, from 20); annotations by bulk import 28.2 s against one submit
per call ~2126 s (from 20). The SDK client's own CPU time is higher (push 3.3 s against 0.7 s,
re-push 2.8 against 1.6, collect 2.2 against 1.3: typed models and the SDK's JSON encoder) but
the server's time dominates. Before the predictions read became plain JSON, re-push measured
1.2-1.6 times the old client's. Single runs on this machine vary by 30 % or more: compare only
the alternated best-of figures.
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from review.client import LabelStudioClient
from review.config import label_config
from review.results import to_import_task, to_result
from schemas.records import AnnotatedDocument, DocumentMetadata, Entity, Evidence, Stance
from services.labelstudio import LabelStudioService

T = TypeVar("T")
OLD_COMMIT = "ff44639"  # the last commit with the hand-written client

_NAMES = ("Angela Merkel", "Emmanuel Macron", "Olaf Scholz", "Ursula von der Leyen", "Joe Biden")
_ORGS = ("European Union", "NATO", "United Nations", "World Bank", "Bundestag")
_PLACES = ("Berlin", "Paris", "Brussels", "Washington", "Madrid")


def synthetic_doc(i: int, rng: random.Random) -> AnnotatedDocument:
    """A news-like document with three entities and one stance (evidence: first sentence)."""
    person, org, place = rng.choice(_NAMES), rng.choice(_ORGS), rng.choice(_PLACES)
    first = f"{person} praised the {org} on day {i}."
    text = f"{first} Critics in {place} attacked the plan. " + "More context follows. " * 20
    p0 = 0
    o0 = first.index(org)
    g0 = text.index(place, len(first))
    return AnnotatedDocument(
        source=f"bench/{i}.txt",
        doc_id=f"bench-{i:06d}",
        text=text,
        metadata=DocumentMetadata(title=f"Bench {i}"),
        content_hash=f"h{i}",
        entities=[
            Entity(start=p0, end=len(person), label="PERSON", text=person, score=0.9),
            Entity(start=o0, end=o0 + len(org), label="ORG", text=org, score=0.8),
            Entity(start=g0, end=g0 + len(place), label="GPE", text=place, score=0.95),
        ],
        stances=[
            Stance(
                target=org, label="FAVOR", score=0.7, evidence=[Evidence(start=0, end=len(first))]
            )
        ],
        model_version="bench-m1",
    )


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


CPU: dict[str, float] = {}  # step -> this process's CPU seconds (the client's own work)


def cpu_timed(key: str, fn: Callable[[], T]) -> tuple[T, float]:
    """Like timed, keeping the best CPU time of `key` too: the server's time and a loaded
    machine's noise drop out of it, the client's own cost (building, parsing) stays."""
    cpu = time.process_time()
    value, seconds = timed(fn)
    spent = time.process_time() - cpu
    CPU[key] = min(CPU.get(key, spent), spent)
    return value, seconds


def batches(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git_module(commit: str, name: str, path: str) -> ModuleType:
    """The file `path` of this repository as it was at `commit`, run as the module `name`
    (registered in sys.modules; what it imports is today's code)."""
    source = subprocess.run(
        ["git", "show", f"{commit}:{path}"],
        cwd=Path(__file__).resolve().parents[1],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = ModuleType(name)
    module.__file__ = f"<git {commit}:{path}>"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102
    return module


def old_client_module(commit: str = OLD_COMMIT) -> ModuleType:
    """The hand-written HTTP client as it was at `commit`, loaded from git with the labeling
    config module it imported (both moved or rewritten since)."""
    git_module(commit, "schemas.labelstudio_config", "schemas/labelstudio_config.py")
    return git_module(commit, "bench_old_labelstudio", "annotators/labelstudio.py")


Row = tuple[str, int, float | None, float, str]  # step, tasks, old seconds, SDK seconds, note


def run(
    client: LabelStudioClient, old: Any, n: int, sample: int, batch: int, repeat: int
) -> list[Row]:
    rng = random.Random(7)
    docs = [synthetic_doc(i, rng) for i in range(n)]
    tag = uuid.uuid4().hex[:6]
    rows: list[Row] = []

    def project(name: str) -> int:
        return client.ensure_project(f"bench-{name}-{tag}", label_config(), overlap=1)

    # push: each client into its own new project (with the labeling config it came with),
    # `repeat` rounds, the order of the two clients swapped every round, best time kept
    old_config = sys.modules["schemas.labelstudio_config"].label_config()
    pushes: dict[str, float] = {}
    for round_ in range(repeat):
        contenders = [("old", old), ("sdk", client)]
        for name, who in contenders if round_ % 2 == 0 else contenders[::-1]:
            config = old_config if name == "old" else label_config()
            target = who.ensure_project(f"bench-push-{name}-{round_}-{tag}", config, overlap=1)
            report, seconds = cpu_timed(
                f"push {name}",
                partial(who.push, target, docs, batch_size=batch),
            )
            assert report.created == n, report
            pushes[f"push {name}"] = min(pushes.get(f"push {name}", seconds), seconds)
            report, seconds = cpu_timed(
                f"re-push {name}",
                partial(who.push, target, docs, batch_size=batch),
            )
            assert report.created == 0 and report.unchanged == n, report
            pushes[f"re-push {name}"] = min(pushes.get(f"re-push {name}", seconds), seconds)
    note = f"best of {repeat}, order swapped"
    rows.append(
        (
            "push, batched import",
            n,
            pushes["push old"],
            pushes["push sdk"],
            f"{batch} a request, {note}",
        )
    )
    rows.append(("re-push, nothing changed", n, pushes["re-push old"], pushes["re-push sdk"], note))

    single = project("single")
    few = docs[: min(sample, n)]

    def one_per_call() -> None:
        for doc in few:
            client.sdk.projects.import_tasks(single, request=[to_import_task(doc)])  # type: ignore[list-item]

    if few:
        _, seconds = timed(one_per_call)
        rows.append(
            (
                "push, one task per call",
                n,
                None,
                seconds * n / len(few),
                f"SDK, extrapolated from {len(few)}",
            )
        )

    # annotations in
    email, password = f"bench-{tag}@example.org", f"pw-{uuid.uuid4().hex}"
    annotator = client.create_user(email, password, first_name="bench")
    annotated = project("collect")

    def with_annotation(doc: AnnotatedDocument) -> dict[str, Any]:
        task = to_import_task(doc)
        task["annotations"] = [
            {
                "result": to_result(doc.text, doc.entities[:2], doc.stances),
                "completed_by": annotator,
                "lead_time": 12.5,
            }
        ]
        return task

    def bulk_annotations() -> None:
        for chunk in batches(docs, batch):
            client.sdk.projects.import_tasks(
                annotated,
                request=[with_annotation(d) for d in chunk],  # type: ignore[misc]
            )

    _, seconds = timed(bulk_annotations)
    rows.append(("annotations, bulk import", n, None, seconds, "tasks carrying annotations"))

    if few:
        ids = client.push(single, few).task_ids  # the sample's tasks already exist: ids only

        def submit_each() -> None:
            for doc in few:
                result = to_result(doc.text, doc.entities[:2], doc.stances)
                client.submit_annotation(ids[doc.doc_id], result, email=email, password=password)

        _, seconds = timed(submit_each)
        rows.append(
            (
                "annotations, one submit per call",
                n,
                None,
                seconds * n / len(few),
                f"SDK, extrapolated from {len(few)}",
            )
        )

    # collect: both clients on the same project, alternating, best of `repeat`
    best: dict[str, float] = {}
    cursors: dict[str, str | None] = {}
    for _ in range(repeat):
        for name, who in (("old", old), ("sdk", client)):
            collected, seconds = cpu_timed(
                f"collect {name}", partial(who.collect, annotated, page_size=batch)
            )
            assert len(collected) == n and all(t.done for t in collected), len(collected)
            best[name] = min(best.get(name, seconds), seconds)
            cursors[name] = collected.cursor
    rows.append(("collect, full", n, best["old"], best["sdk"], f"{batch} a page, best of {repeat}"))
    nothing_old, old_s = timed(lambda: old.collect(annotated, since=cursors["old"]))
    nothing_new, new_s = timed(lambda: client.collect(annotated, since=cursors["sdk"]))
    assert len(nothing_old) == len(nothing_new) == 0
    rows.append(("collect, incremental (no change)", 0, old_s, new_s, "from the cursor"))
    return rows


def print_table(rows: list[Row]) -> None:
    print(
        f"| {'step':<34} | {'tasks':>6} | {'old s':>8} | {'SDK s':>8} | {'SDK tasks/s':>11} "
        f"| {'SDK/old':>7} | note"
    )
    print(f"|{'-' * 36}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 13}|{'-' * 9}|------")
    for step, n, old_s, new_s, note in rows:
        rate = f"{n / new_s:11.1f}" if new_s > 0 and n else f"{'-':>11}"
        old = f"{old_s:8.2f}" if old_s is not None else f"{'-':>8}"
        ratio = f"{new_s / old_s:7.2f}" if old_s else f"{'-':>7}"
        print(f"| {step:<34} | {n:>6} | {old} | {new_s:8.2f} | {rate} | {ratio} | {note}")
    print("\nclient CPU seconds (this process; best of the runs):")
    for step in ("push", "re-push", "collect"):
        old_cpu, new_cpu = CPU.get(f"{step} old"), CPU.get(f"{step} sdk")
        if old_cpu is not None and new_cpu is not None:
            print(f"  {step:<8} old {old_cpu:6.2f}  SDK {new_cpu:6.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Label Studio push/collect throughput")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=200, help="one-per-call sample size")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2, help="full collects per client")
    parser.add_argument("--url", help="use this running Label Studio instead of starting one")
    parser.add_argument("--token", default=None, help="its admin token (with --url)")
    args = parser.parse_args(argv)
    old_module = old_client_module()

    def measure(url: str, token: str) -> None:
        client = LabelStudioClient(url, token, timeout=600)
        old = old_module.LabelStudioClient(url, token, timeout=600)
        print_table(run(client, old, args.n, args.sample, args.batch, args.repeat))

    if args.url:
        if not args.token:
            parser.error("--url needs --token (no Label Studio has a default token)")
        measure(args.url, args.token)
        return
    with_label_studio("bench-review-", measure)


def with_label_studio(prefix: str, measure: Callable[[str, str], None]) -> None:
    """`measure(url, admin token)` against a Label Studio of its own, in a temporary folder,
    stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        service = LabelStudioService(data_dir=Path(tmp) / "labelstudio", port=free_port())
        started = time.perf_counter()
        service.start(timeout=600)
        print(f"Label Studio {service.url} up in {time.perf_counter() - started:.0f} s")
        try:
            measure(service.url, service.token)
        finally:
            service.stop()


if __name__ == "__main__":
    main()
