"""The main flow: ingest -> annotate -> push -> collect -> adjudicate (disputes go on to the
adjudication project) -> publish, once, incremental and idempotent. Thin orchestration: the
work is in flows/tasks.py."""

from __future__ import annotations

import uuid
from importlib.metadata import version as package_version
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.tasks import (
    adjudicate_all,
    annotate_batch,
    batched,
    collect_review,
    discover,
    ingest_batch,
    publish_release,
    push_adjudication,
    push_review,
    store_for,
    write_run_report,
)
from schemas.settings import Settings


def code_version() -> str:
    return f"corpusflow {package_version('corpusflow')}"


@flow(
    name="corpusflow-run",
    log_prints=True,
    # spaCy pipelines are not shared across threads: one batch at a time in this process; scale
    # out with prefect-dask's DaskTaskRunner (one model per worker).
    task_runner=ThreadPoolTaskRunner(max_workers=1),  # type: ignore[arg-type]
)
def corpus_pipeline(sources: str = "corpus/samples/", store: str | None = None) -> dict[str, Any]:
    """Run every stage once over `sources` (a folder, a file, or s3://bucket/prefix)."""
    logger = get_run_logger()
    settings = Settings() if store is None else Settings(store=store)
    run_id = uuid.uuid4().hex[:12]
    refs = discover(sources, settings)
    logger.info("run %s: %d inputs from %s into %s", run_id, len(refs), sources, settings.store)

    batches = batched(refs, settings.batch_size)
    ingested = ingest_batch.map(
        batches,
        settings=unmapped(settings),
        run_id=unmapped(run_id),
        index=range(len(batches)),
        total=unmapped(len(batches)),
    ).result()
    doc_ids = [d for out in ingested for d in out.processed + out.unchanged]
    doc_batches = batched(doc_ids, settings.batch_size)
    annotated = annotate_batch.map(
        doc_batches,
        settings=unmapped(settings),
        index=range(len(doc_batches)),
        total=unmapped(len(doc_batches)),
    ).result()

    pushed = push_review(settings)
    tail = collect_adjudicate_publish(settings)

    report = {
        "run_id": run_id,
        "sources": sources,
        "store": settings.store,
        "inputs": len(refs),
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
    report["report_key"] = write_run_report(store_for(settings), run_id, report)
    create_markdown_artifact(
        key="corpusflow-run-report", markdown=render_markdown(report), description="corpusflow run"
    )
    return report


def collect_adjudicate_publish(settings: Settings) -> dict[str, Any]:
    """The review half of a run: collect what annotators and adjudicators did, adjudicate, send
    disputes to the adjudication project, publish if the content changed."""
    collected = collect_review(settings)
    adjudicated = adjudicate_all(settings)
    to_adjudicate = push_adjudication(settings, adjudicated["disputed"])
    release = publish_release(settings, code_version())
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
    settings = Settings() if store is None else Settings(store=store)
    run_id = uuid.uuid4().hex[:12]
    report: dict[str, Any] = {"run_id": run_id, "store": settings.store}
    report.update(collect_adjudicate_publish(settings))
    report["report_key"] = write_run_report(store_for(settings), run_id, report)
    rel = report["release"]
    create_markdown_artifact(
        key="corpusflow-review-report",
        markdown=(
            f"# corpusflow review {run_id}\n\n| stage | result |\n|---|---|\n"
            f"| collect | {report['review']['collect']} |\n"
            f"| adjudication | {report['adjudication']} |\n"
            f"| to adjudicators | {report['review']['adjudication']} |\n"
            f"| release | {rel['version']} ({'new' if rel['created'] else 'unchanged'}) |\n"
        ),
        description="corpusflow review cycle",
    )
    return report


def render_markdown(report: dict[str, Any]) -> str:
    ing = report["ingest"]
    lines = [
        f"# corpusflow run {report['run_id']}",
        "",
        f"Sources `{report['sources']}` → store `{report['store']}`",
        "",
        "| stage | result |",
        "|---|---|",
        f"| inputs | {report['inputs']} |",
        f"| ingest | {ing['cleaned']} cleaned, {ing['unchanged']} unchanged, "
        f"{len(ing['skipped'])} skipped, {len(ing['quarantined'])} quarantined |",
        f"| annotate | {report['annotate']['annotated']} annotated, "
        f"{report['annotate']['unchanged']} unchanged |",
        f"| push | {report['review']['push']} |",
        f"| collect | {report['review']['collect']} |",
        f"| adjudication | {report['adjudication']} |",
        f"| to adjudicators | {report['review']['adjudication']} |",
        f"| release | {report['release']['version']} "
        f"({'new' if report['release']['created'] else 'unchanged'}) |",
    ]
    for kind in ("skipped", "quarantined"):
        if ing[kind]:
            lines += ["", f"## {kind}", ""] + [
                f"- `{x['source']}`: {x['reason']}" for x in ing[kind]
            ]
    return "\n".join(lines) + "\n"
