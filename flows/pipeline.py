"""The main flow: ingest -> annotate -> push -> collect -> adjudicate (disputes go on to the
adjudication project) -> publish, once, incremental and idempotent. Thin orchestration: the
work is in flows/tasks.py; what an operator sees (the report, progress) is made here."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterable
from importlib.metadata import version as package_version
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from corpus.lease import Lease, LeaseHeld
from corpus.stagestore import forget_cached_indexes
from flows.failure import record_failure
from flows.tasks import (
    IngestOutcome,
    Pseudonyms,
    adjudicate_all,
    annotate_batch,
    annotate_todo,
    batched,
    collect_review,
    commit_stage,
    discover,
    ingest_batch,
    ingest_todo,
    migrate_stages,
    pseudonymize_agreement,
    publish_release,
    push_adjudication,
    push_review,
    store_for,
    write_run_report,
)
from ingest.sources import printable
from schemas.settings import SECRET_FIELDS, Settings

REPORT_KEY = "corpusflow-run-report"
QUARANTINE_KEY = "corpusflow-quarantine"
PROGRESS_KEY = "corpusflow-run-progress"


@functools.cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim, looked up once (find_library runs ldconfig); None elsewhere."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Give the memory freed by the stage just ended back to the system, with glibc's
    `malloc_trim(0)`; True when it was called, False where the C library has none (macOS,
    musl: a no-op). A stage frees most of what it built (the import files' tasks, the shards
    read, the rows of a batch), but glibc keeps freed chunks below the top of its heap, so the
    next stage started from the last one's high-water mark: measured with
    `bench.scale --n 2000 8000 --fresh` (local store, fast path), a first run's peak RSS went
    from 464 / 491 MB to 428 / 458 MB (see the README, *Scale*). A call takes 0.06 ms with
    nothing to give back, 50 ms to give back 380 MB; a few a run: unlike a low
    `MALLOC_TRIM_THRESHOLD_` (see local_cluster), it does not trim at every free."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def arrow_on_system_malloc() -> str:
    """Make the C library's malloc the allocator of pyarrow's buffers in this process (publish
    builds its Parquet shards and indexes with pyarrow), unless the operator chose one with
    `ARROW_DEFAULT_MEMORY_POOL`; returns the pool's backend. pyarrow's default, mimalloc, keeps
    what publish frees (to reuse it, and in pages it only marks free, which count as resident
    until the kernel wants them), so a stage after publish, or a publish that frees and builds
    again, started from its high-water mark; glibc's freed chunks `release_freed_memory` gives
    back. `bench.scale --n 2000 8000 --skip-s3 --annotate-docs 0 --fresh`, peak RSS, mimalloc /
    system (chosen by the variable): first run 431 / 419 and 460 / 446 MB, unchanged re-run
    383 / 373 and 412 / 396 MB, 1% changed 410 / 396 and 492 / 444 MB (the 1% run's slope 14.1
    / 8.2 KiB a document); publish times the same within this machine's noise. Switched here
    by the flow: the 1% run at 8k 461 MB."""
    import pyarrow as pa

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())
    return str(pa.default_memory_pool().backend_name)


class SettingsMismatch(RuntimeError):
    """The run's settings lack what its deployment expects (CORPUSFLOW_EXPECT)."""


def code_version() -> str:
    return f"corpusflow {package_version('corpusflow')}"


def run_settings(store: str | None = None) -> Settings:
    """The settings of a flow run: the environment (and `store`, if given), secrets the
    environment lacks read from the Prefect Secret blocks CORPUSFLOW_SECRET_BLOCKS names; then
    checked against CORPUSFLOW_EXPECT, so that a run which would quietly fall back to embedded
    mode fails here, naming what is missing."""
    settings = Settings() if store is None else Settings(store=store)
    if settings.secret_blocks:
        found = {}
        for suffix, name in SECRET_FIELDS.items():
            if getattr(settings, name) is None:
                value = _secret(f"{settings.secret_blocks}-{suffix}")
                if value:
                    found[name] = value
        settings = settings.model_copy(update=found)
    missing = settings.unmet_expectations()
    if missing:
        raise SettingsMismatch(
            f"this run expects {', '.join(settings.expect)} (CORPUSFLOW_EXPECT), but "
            + "; ".join(missing)
            + ". Deploy with them set (`make serve` deploys prefect.yaml with .services/env and "
            "creates the Secret blocks), or give them to the worker's environment"
        )
    return settings


def _secret(name: str) -> str | None:
    from prefect.blocks.system import Secret

    try:
        block = Secret.load(name)
    except ValueError:  # no such block: the expectation check names it
        return None
    return str(block.get())  # type: ignore[union-attr]


class Progress:
    """A Prefect progress artifact moved on after each batch and step of a run."""

    def __init__(self, total: int, description: str) -> None:
        self.done, self.total = 0, max(total, 1)
        self.id: UUID = create_progress_artifact(  # type: ignore[assignment]
            progress=0.0, key=PROGRESS_KEY, description=description
        )

    def step(self, n: int = 1, *, total: int | None = None) -> None:
        self.done += n
        if total is not None:
            self.total = max(total, self.done, 1)
        update_progress_artifact(
            artifact_id=self.id, progress=round(100.0 * min(self.done / self.total, 1.0), 1)
        )


def task_runner_for(settings: Settings, *, default_workers: int | None = None) -> TaskRunner[Any]:
    """Where ingest and annotate batches run: on the Dask scheduler at `dask_address`; else on
    a local Dask cluster of `workers` processes (one thread and one spaCy model each, loaded
    once per process by annotators.pipeline.load_nlp); with 1 worker in this process, one
    batch at a time (spaCy pipelines are not shared across threads)."""
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    workers = settings.workers or default_workers or os.cpu_count() or 1
    if workers == 1:
        return ThreadPoolTaskRunner(max_workers=1)
    return DaskTaskRunner(
        cluster_class=local_cluster,
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True},
    )


def local_cluster(**kwargs: Any) -> Any:
    """A distributed.LocalCluster whose worker processes report task runs to this process's
    Prefect API. In the ephemeral mode that is the temporary server this run started: without
    its address each worker would start a temporary server of its own (~30 s each).

    distributed logs at INFO by default, to stderr: at the cluster's shutdown after a failed
    run that was a "Batched Comm Closed" traceback under the one-line failure (flows/failure.py),
    seen in CI. Its warnings and errors still show, in this process and in the workers.

    The workers start without distributed's default `MALLOC_TRIM_THRESHOLD_=65536` (an
    operator's own value in the environment stands): with it glibc hands freed memory back to
    the system at every turn, and on the annotate stage the workers spent 3x the system time
    (20 against 6 CPU-s) and took about 40% longer: 50-57 s against 36-41 s for 128 documents
    in bench/parallel.py's 2-worker pass."""
    import logging

    import dask
    from distributed import LocalCluster
    from prefect.settings import get_current_settings

    logging.getLogger("distributed").setLevel(logging.WARNING)
    # the worker processes read it when they import distributed (an operator's value stands)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

    api = get_current_settings().api.url
    if not api:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()  # the process's one temporary server (a singleton)
        server.start()
        api = server.api_url
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ")}
    environ["MALLOC_TRIM_THRESHOLD_"] = None  # None: the nanny does not set it
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(**kwargs, env={"PREFECT_API_URL": str(api)})


# The flow's own runner is read from the environment when this module is imported (what a
# deployment's flow-run process does): CORPUSFLOW_DASK_ADDRESS or CORPUSFLOW_WORKERS > 1 make
# it Dask, else one batch at a time in-process. `corpusflow run` picks at call time instead
# (with_options), defaulting to one process per core.
@flow(
    name="corpusflow-run",
    log_prints=True,
    task_runner=task_runner_for(Settings(), default_workers=1),  # type: ignore[arg-type]
)
def corpus_pipeline(sources: str = "corpus/samples/", store: str | None = None) -> dict[str, Any]:
    """Run every stage once over `sources` (a folder, a file, or s3://bucket/prefix), holding
    the store's lease: a second run at the same time waits (CORPUSFLOW_LEASE_WAIT) or stops
    with a message naming the holder."""
    settings = run_settings(store)
    run_id = uuid.uuid4().hex[:12]
    try:
        with hold_store(settings, run_id, wait=settings.lease_wait) as lease:
            return run_stages(sources, settings, run_id, lease)
    except LeaseHeld:
        raise  # another run's: nothing of this one started
    except Exception as exc:  # the report says what was done; a service's failure is one line
        down = record_failure(settings, run_id, exc, {"sources": sources}, review=False)
        if down is None:
            raise  # not a service's: a bug keeps its traceback
        raise down from exc


def hold_store(settings: Settings, run_id: str, *, wait: float) -> Lease:
    """The store's run lease, taken (corpus.lease); `with` releases it."""
    lease = Lease(store_for(settings), run_id, ttl=settings.lease_ttl)
    lease.acquire(wait=wait)
    get_run_logger().info("run %s holds the lease of %s", run_id, settings.store)
    return lease


def run_stages(sources: str, settings: Settings, run_id: str, lease: Lease) -> dict[str, Any]:
    logger = get_run_logger()
    refs = discover(sources, settings)
    logger.info("run %s: %d inputs from %s into %s", run_id, len(refs), sources, settings.store)

    migrate_stages(settings)  # a store of the one-file-per-document layout, packed once
    to_ingest, unchanged = ingest_todo(settings, refs)  # unchanged sources: no task, no read
    batches = batched(to_ingest, settings.batch_size)
    tail_steps = 4  # push, collect + adjudicate, adjudication push, publish
    progress = Progress(2 * len(batches) + tail_steps, f"corpusflow run {run_id}")
    ingested = [IngestOutcome([], unchanged, [], [])]
    for ingest_future in ingest_batch.map(
        batches,
        settings=unmapped(settings),
        run_id=unmapped(run_id),
        index=range(len(batches)),
        total=unmapped(len(batches)),
    ):
        ingested.append(ingest_future.result())
        progress.step()
    # the batches' cached indexes are of no further use (commit reads the index afresh):
    # ~0.5 KB a document each, held beside the index commit reads and the entries it merges
    forget_cached_indexes()
    commit_stage(settings, "clean", [e for out in ingested for e in out.entries])
    for out in ingested:  # committed: ~0.5 KB a document, held (by the futures too) to the end
        out.entries = []
    # the sources' refs (~330 B a document) are not needed past ingest: only their count
    inputs, ingest_batches = len(refs), len(batches)
    del refs, to_ingest, batches
    release_freed_memory()
    doc_ids = [d for out in ingested for d in out.processed + out.unchanged]
    todo, kept = annotate_todo(settings, doc_ids)  # from the indexes: unchanged ones map no task
    doc_batches = batched(todo, settings.batch_size)
    progress.step(0, total=ingest_batches + len(doc_batches) + tail_steps)
    annotated: list[dict[str, Any]] = [{"annotated": 0, "unchanged": kept}]
    for annotate_future in annotate_batch.map(
        doc_batches,
        settings=unmapped(settings),
        index=range(len(doc_batches)),
        total=unmapped(len(doc_batches)),
    ):
        annotated.append(annotate_future.result())
        progress.step()
    forget_cached_indexes()
    commit_stage(settings, "machine", [e for a in annotated for e in a.get("entries", [])])
    for a in annotated:
        a.pop("entries", None)
    del doc_ids, todo, doc_batches
    release_freed_memory()

    lease.ensure_held()  # pushing makes tasks: only the run that holds the store may
    pushed = push_review(settings)
    release_freed_memory()
    progress.step()
    tail = collect_adjudicate_publish(settings, progress, lease)

    report = {
        "run_id": run_id,
        "sources": sources,
        "store": settings.store,
        "inputs": inputs,
        "ingest": {
            "cleaned": sum(len(o.processed) for o in ingested),
            "unchanged": sum(len(o.unchanged) for o in ingested),
            "skipped": [{"source": s, "reason": r} for o in ingested for s, r in o.skipped],
            "quarantined": [{"source": s, "reason": r} for o in ingested for s, r in o.quarantined],
        },
        "annotate": {
            "annotated": sum(a["annotated"] for a in annotated),
            "unchanged": sum(a["unchanged"] for a in annotated),
        },
    }
    tail["review"] = {"push": pushed, **tail["review"]}
    report.update(tail)
    add_links(report, settings)
    store_ = store_for(settings)
    report["report_key"] = write_run_report(store_, run_id, report)
    publish_artifacts(report, Pseudonyms(store_))
    return report


def collect_adjudicate_publish(
    settings: Settings, progress: Progress | None = None, lease: Lease | None = None
) -> dict[str, Any]:
    """The review half of a run: collect what annotators and adjudicators did, adjudicate, send
    disputes to the adjudication project, publish if the content changed."""
    collected = collect_review(settings)
    adjudicated = adjudicate_all(settings)
    if progress:
        progress.step()
    to_adjudicate = push_adjudication(settings, adjudicated["disputed"])
    if progress:
        progress.step()
    if lease is not None:
        lease.ensure_held()  # a run that lost its lease (stalled past its TTL) publishes nothing
    arrow_on_system_malloc()
    release_freed_memory()
    release = publish_release(settings, code_version())
    release_freed_memory()
    if progress:
        progress.step()
    return {
        "review": {"collect": collected, "adjudication": to_adjudicate},
        "adjudication": adjudicated["counts"],
        "agreement": adjudicated["agreement"],
        "release": release,
    }


@flow(name="corpusflow-review", log_prints=True)
def review_cycle(store: str | None = None) -> dict[str, Any]:
    """Collect, adjudicate, send disputes on and publish, without ingesting or annotating:
    what the webhook receiver starts when annotators work (deployment `corpusflow-review/
    review`). Documents are pushed to Label Studio by `corpus_pipeline`."""
    settings = run_settings(store)
    run_id = uuid.uuid4().hex[:12]
    # started by the webhook while a whole run may be going on: it waits for that run (up to a
    # lease's TTL) rather than failing
    try:
        with hold_store(settings, run_id, wait=settings.lease_wait or settings.lease_ttl) as lease:
            return review_stages(settings, run_id, lease)
    except LeaseHeld:
        raise
    except Exception as exc:
        down = record_failure(settings, run_id, exc, {}, review=True)
        if down is None:
            raise
        raise down from exc


def review_stages(settings: Settings, run_id: str, lease: Lease) -> dict[str, Any]:
    progress = Progress(3, f"corpusflow review {run_id}")
    report: dict[str, Any] = {"run_id": run_id, "store": settings.store}
    report.update(collect_adjudicate_publish(settings, progress, lease))
    add_links(report, settings)
    store_ = store_for(settings)
    report["report_key"] = write_run_report(store_, run_id, report)
    publish_artifacts(report, Pseudonyms(store_))
    return report


# ---------------------------------------------------------------- what the operator sees


def add_links(report: dict[str, Any], settings: Settings) -> None:
    """Where to look: the release under the store's URL, the Label Studio project."""
    version = report["release"].get("version")
    report["release_url"] = f"{settings.store.rstrip('/')}/releases/{version}/" if version else None
    push = report.get("review", {}).get("push") or {}
    project_id = push.get("project_id")
    if project_id is None and settings.review_enabled:
        state = _review_state(settings)
        project_id = state.get("project_id")
    report["label_studio_project_url"] = (
        f"{settings.label_studio_url}/projects/{project_id}"
        if settings.label_studio_url and project_id is not None
        else None
    )


def _review_state(settings: Settings) -> dict[str, Any]:
    from flows.tasks import keys

    store = store_for(settings)
    return dict(store.get_json(keys.review_state)) if store.head(keys.review_state) else {}


def publish_artifacts(report: dict[str, Any], names: Pseudonyms) -> None:
    """The run report (markdown) and the quarantined inputs (a table) as Prefect artifacts;
    annotators appear under their pseudonyms (the report in the store keeps their emails)."""
    is_run = "ingest" in report
    create_markdown_artifact(
        key=REPORT_KEY if is_run else "corpusflow-review-report",
        markdown=render_markdown(report, names),
        description=f"corpusflow {'run' if is_run else 'review'} {report['run_id']}",
    )
    if is_run:
        rows = [
            {"source": q["source"], "reason": q["reason"]} for q in report["ingest"]["quarantined"]
        ]
        create_table_artifact(
            key=QUARANTINE_KEY,
            table=rows or [{"source": "(none)", "reason": "no input was quarantined"}],
            description=f"inputs quarantined by run {report['run_id']}",
        )


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _counts(counts: dict[str, Any], *skip: str) -> str:
    """{"created": 2, "unchanged": 3} -> "2 created, 3 unchanged" (zeros and `skip` left out)."""
    parts = [
        f"{v} {k.replace('_', ' ')}"
        for k, v in counts.items()
        if k not in skip and isinstance(v, int) and not isinstance(v, bool)
    ]
    return ", ".join(parts) or "nothing"


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out


_DUPLICATE_COUNTS = (
    "duplicates_found",
    "duplicates_merged",
    "annotations_moved",
    "duplicates_left",
)


def stage_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(stage, result) lines of a run report, shared by the artifact and the terminal."""
    rows: list[tuple[str, str]] = []
    if "ingest" in report:
        ing, ann = report["ingest"], report["annotate"]
        rows.append(("inputs", f"{report['inputs']} from {report['sources']}"))
        rows.append(
            (
                "ingest",
                f"{ing['cleaned']} cleaned, {ing['unchanged']} unchanged, "
                f"{len(ing['skipped'])} skipped, {len(ing['quarantined'])} quarantined",
            )
        )
        rows.append(("annotate", f"{ann['annotated']} annotated, {ann['unchanged']} unchanged"))
        push = report["review"]["push"]
        if push.get("mode") == "embedded":
            rows.append(
                (
                    "push",
                    f"embedded: Label Studio import files in {push['import_file']} "
                    f"({push.get('written', 0)} of {push.get('files', 1)} written)",
                )
            )
        else:
            rows.append(
                (
                    "push",
                    f"Label Studio project {push.get('project_id')}: "
                    + _counts(push, "project_id", "tasks", *_DUPLICATE_COUNTS),
                )
            )
    review = report["review"]
    rows.append(("collect", _counts(review["collect"], *_DUPLICATE_COUNTS)))
    # duplicate tasks (a re-import, a race): always shown, so "0 found" is a statement too
    for stage in ("push", "collect"):
        dup = review.get(stage) or {}
        if "duplicates_found" in dup:
            rows.append(
                (
                    f"duplicates ({stage})",
                    f"{dup['duplicates_found']} found, {dup['duplicates_merged']} merged, "
                    f"{dup['annotations_moved']} annotations moved, "
                    f"{dup.get('duplicates_left', 0)} left (human work that could not be moved)",
                )
            )
    rows.append(("adjudicate", _counts(report["adjudication"])))
    rows.append(("disputes", _counts(review["adjudication"], "project_id")))
    # documents whose source was edited under human work: every one, with its fate
    for stage in ("push", "adjudication"):
        for edit in (review.get(stage) or {}).get("edited") or []:
            where = printable(f"{edit['source'] or edit['doc_id']} (doc {edit['doc_id']})")
            what = f"{edit['action']}, {printable(edit['reason'])}"
            rows.append(
                ("edited", f"{where}: {what}" + (" (adjudication)" if stage != "push" else ""))
            )
    rel = report["release"]
    if rel.get("version") is None:
        rows.append(("release", f"none: no document in {report['store']} yet"))
    else:
        fate = "new" if rel["created"] else "unchanged, nothing published"
        rows.append(
            (
                "release",
                f"{rel['version']} ({fate}) at {report.get('release_url') or report['store']}",
            )
        )
    return rows


def render_markdown(report: dict[str, Any], names: Pseudonyms | None = None) -> str:
    title = "run" if "ingest" in report else "review"
    lines = [f"# corpusflow {title} {report['run_id']}", ""]
    lines.append(f"Store `{report['store']}`")
    if report.get("label_studio_project_url"):
        url = report["label_studio_project_url"]
        lines.append(f"· Label Studio project [{url}]({url})")
    if report.get("release_url"):
        lines.append(f"· release `{report['release_url']}`")
    lines += ["", *_table(("stage", "result"), stage_rows(report))]
    if "ingest" in report:
        for kind in ("quarantined", "skipped"):
            items = report["ingest"][kind]
            if items:
                lines += ["", f"## {kind.capitalize()} inputs", ""]
                lines += _table(("source", "reason"), ((i["source"], i["reason"]) for i in items))
    agreement = report.get("agreement") or {}
    if names is not None:
        agreement = pseudonymize_agreement(agreement, names)
    lines += ["", "## Agreement", ""]
    if not agreement.get("annotators"):
        lines.append("No human annotation collected yet.")
    else:
        lines.append(
            f"{agreement.get('documents_with_overlap', 0)} documents with two or more "
            f"annotators; entity F1 exact {_fmt(agreement.get('entity_f1_exact'))}, "
            f"overlapping {_fmt(agreement.get('entity_f1_overlap'))}."
        )
        per_label = agreement.get("entity_f1_exact_per_label") or {}
        if per_label:
            lines += ["", *_table(("label", "entity F1 (exact)"), per_label.items())]
        lines += [
            "",
            *_table(
                ("annotator", "documents", "entities", "stances", "mean F1 vs others"),
                (
                    (name, s["documents"], s["entities"], s["stances"], s["mean_f1_vs_others"])
                    for name, s in agreement["annotators"].items()
                ),
            ),
        ]
        kappas = agreement.get("stance_kappa_pairwise") or {}
        if kappas:
            lines += ["", *_table(("annotator pair", "stance kappa"), kappas.items())]
    return "\n".join(lines) + "\n"
