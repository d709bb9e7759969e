"""What a push costs in a project that already holds N tasks, for this client (a chunk of
documents at a time, asking the server only for their tasks: review.client `PUSH_CHUNK`,
`id_pattern`) and, in the same run against the same server and projects, the client it
replaced (read from git, `--old`, default 8827cf8: every push listed every task of the project
and read every prediction). Both clients alternate, each run in this process.

    .venv/bin/python -m bench.push                    # N = 2,000 and 8,000; starts Label Studio
    .venv/bin/python -m bench.push --n 1000 4000 16000

For each N, one project of N tasks (the synthetic documents of bench/review.py, pushed once),
then per client, `--repeat` times, alternating:
- nothing: a push of no documents (what an unchanged run's push is handed);
- 1% changed: N/100 documents with a new prediction and N/100 new documents; each round
  changes other documents, so both clients find real work.
Figures: seconds (best of the rounds), the tasks the server handed over (counted in the
client's task pager), prediction requests, and the push's Python peak (tracemalloc, traced
from the push's start, so the documents handed in are not counted).

Measured 2026-12-04 (`--n 2000 8000 32000 --repeat 2`, Label Studio 1.23.2 on SQLite, this
2-core machine, nothing else running), best of 2, before (8827cf8) / now:

| N | step | seconds | tasks listed | prediction reads | Python peak MB |
|---|---|---|---|---|---|
| 2,000 | nothing | 1.75 / 0.00 | 2,040 / 0 | 1 / 0 | 22.1 / 0.0 |
| 2,000 | 1% changed | 6.47 / 3.69 | 4,100 / 40 | 1 / 0 | 30.9 / 0.8 |
| 8,000 | nothing | 7.16 / 0.00 | 8,160 / 0 | 1 / 0 | 85.3 / 0.0 |
| 8,000 | 1% changed | 25.89 / 14.97 | 16,240 / 160 | 1 / 0 | 102.7 / 2.8 |
| 32,000 | nothing | 28.44 / 0.00 | 32,640 / 0 | 1 / 0 | 341.8 / 0.0 |
| 32,000 | 1% changed | 103.94 / 57.25 | 64,960 / 640 | 1 / 0 | 359.0 / 10.9 |

The projects of 2,000 / 8,000 / 32,000 tasks were made (a first push, this client) in 3 / 13 /
60 s. (With the predictions read one task a request instead of coming with the task list, the
1% pushes took 5.2 / 19.2 / 76.4 s.)
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
import uuid
from typing import Any

from bench.review import git_module, synthetic_doc, with_label_studio
from review.client import LabelStudioClient
from review.config import label_config
from schemas.records import AnnotatedDocument

OLD_COMMIT = "8827cf8"  # the last commit whose push listed the whole project


def old_client_class(commit: str) -> Any:
    """review/client.py as it was at `commit` (the modules it imports are today's; what it
    uses of them did not change)."""
    return git_module(commit, "bench_old_review_client", "review/client.py").LabelStudioClient


class Counted:
    """Counts, on one client object (this one only: its methods are replaced), the task
    listings it asks for, the tasks they yield and its prediction reads."""

    def __init__(self, client: Any) -> None:
        self.requests = self.tasks = self.prediction_reads = 0
        pages, get_json = client._tasks_pages, client._get_json

        def counted_pages(*args: Any, **kw: Any) -> Any:
            self.requests += 1
            for task in pages(*args, **kw):
                self.tasks += 1
                yield task

        def counted_json(what: str, path: str, params: dict[str, Any]) -> Any:
            if path.startswith("api/predictions"):
                self.prediction_reads += 1
            return get_json(what, path, params)

        client._tasks_pages = counted_pages
        client._get_json = counted_json

    def reset(self) -> None:
        self.requests = self.tasks = self.prediction_reads = 0


def changed_docs(n: int, round_: int, rng: random.Random) -> list[AnnotatedDocument]:
    """N/100 existing documents with a new prediction (other ones each round), N/100 new."""
    k = max(1, n // 100)
    out = []
    for j in range(k):
        doc = synthetic_doc((round_ * k + j) % n, rng)
        doc.entities[0] = doc.entities[0].model_copy(update={"score": 0.5 + round_ / 100})
        out.append(doc)
    out += [synthetic_doc(n + round_ * k + j, rng) for j in range(k)]
    return out


def measure(url: str, token: str, ns: list[int], repeat: int, old_commit: str) -> None:
    old_cls = old_client_class(old_commit)
    clients = {
        "this": LabelStudioClient(url, token, timeout=600),
        "old": old_cls(url, token, timeout=600),
    }
    counters = {name: Counted(c) for name, c in clients.items()}
    rng = random.Random(11)
    tag = uuid.uuid4().hex[:6]
    print(
        f"| {'N':>6} | {'step':<11} | {'client':<6} | {'seconds':>7} | {'tasks listed':>12} | "
        f"{'prediction reads':>16} | {'Python peak MB':>14} |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in ns:
        project = clients["this"].ensure_project(f"bench-push-{n}-{tag}", label_config())
        started = time.perf_counter()
        created = clients["this"].push(project, [synthetic_doc(i, rng) for i in range(n)]).created
        print(f"(project of {created} tasks made in {time.perf_counter() - started:.0f} s)")
        best: dict[tuple[str, str], tuple[float, int, int, float]] = {}
        for round_ in range(repeat):
            order = ["this", "old"] if round_ % 2 == 0 else ["old", "this"]
            for k, name in enumerate(order):
                client, counter = clients[name], counters[name]
                for step in ("nothing", "1% changed"):
                    docs = [] if step == "nothing" else changed_docs(n, 2 * round_ + k, rng)
                    counter.reset()
                    tracemalloc.start()
                    t0 = time.perf_counter()
                    report = client.push(project, docs)
                    seconds = time.perf_counter() - t0
                    peak = tracemalloc.get_traced_memory()[1] / 2**20
                    tracemalloc.stop()
                    if step != "nothing":
                        k_docs = len(docs) // 2
                        assert (report.created, report.updated) == (k_docs, k_docs), report
                    got = (seconds, counter.tasks, counter.prediction_reads, peak)
                    if (name, step) not in best or seconds < best[(name, step)][0]:
                        best[(name, step)] = got
        for step in ("nothing", "1% changed"):
            for name in ("old", "this"):
                seconds, tasks, reads, peak = best[(name, step)]
                print(
                    f"| {n:>6} | {step:<11} | {name:<6} | {seconds:7.2f} | {tasks:>12} | "
                    f"{reads:>16} | {peak:>14.1f} |",
                    flush=True,
                )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--old", default=OLD_COMMIT, help="the commit of the client compared")
    parser.add_argument("--url", help="use this running Label Studio instead of starting one")
    parser.add_argument("--token", default=None, help="its admin token (with --url)")
    args = parser.parse_args(argv)
    if args.url:
        if not args.token:
            parser.error("--url needs --token")
        measure(args.url, args.token, args.n, args.repeat, args.old)
        return
    with_label_studio(
        "bench-push-", lambda url, token: measure(url, token, args.n, args.repeat, args.old)
    )


if __name__ == "__main__":
    main()
