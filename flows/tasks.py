"""Prefect tasks: one logical step or one side effect each. They pass document ids and store
keys, never whole corpora; the records themselves live in the store (see `keys`)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import botocore.exceptions
import requests
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from corpus.decisions import (
    adjudicate_store,
    adjudicator_annotations,
    decide,
    human_annotations,
)
from corpus.history import current_work, keep_reviewed
from corpus.keys import keys
from corpus.ledger import Ledger
from corpus.pseudonyms import Pseudonyms, pseudonym, pseudonymize_agreement
from corpus.records import publish_store, release_record
from corpus.stagestore import (
    Entry,
    StageIndex,
    cached_index,
    clean_store,
    machine_store,
    to_annotate,
    unchanged_signature,
    unchanged_source,
)
from corpus.store import Store, open_store, open_store_from_settings
from ingest import CLEANER_VERSION, SUPPORTED_SUFFIXES, IngestError, make_doc_id
from ingest.guard import clean_guarded
from ingest.limits import Limits, check_size
from ingest.sources import (
    SourceRef,
    hidden_key,
    iter_chunks,
    object_signature,
    printable,
    read_local,
    signature_of,
    walk,
)
from review.adjudication import AdjudicationItem
from review.client import LabelStudioClient, LabelStudioError
from review.config import instructions_html, label_config
from schemas import AdjudicationResult, AnnotatedDocument, CleanDocument, HumanAnnotation
from schemas.labeling import DOCUMENT_FLAGS, ENTITY_LABELS, STANCE_LABELS, TARGET_LABELS
from schemas.settings import Settings, retry_delays

# Domain logic lives in corpus/; these names stay importable from here for the flows, the CLI
# and the review helpers that use them.
__all__ = [
    "Pseudonyms",
    "decide",
    "keys",
    "pseudonym",
    "pseudonymize_agreement",
    "release_record",
]


def store_for(settings: Settings) -> Store:
    return open_store_from_settings(settings)


# ---------------------------------------------------------------- retry policy


def _retryable(exc: BaseException | None) -> bool:
    """Network and storage hiccups are worth another try; a 4xx answer is not."""
    if isinstance(exc, LabelStudioError):
        return exc.status is None or exc.status >= 500 or exc.status == 429
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        return status >= 500 or status == 429
    return isinstance(
        exc,
        requests.ConnectionError | requests.Timeout | botocore.exceptions.EndpointConnectionError,
    )


def retry_unless_client_error(task, task_run, state) -> bool:  # type: ignore[no-untyped-def]
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we classify, not swallow
        return _retryable(exc)
    return False


def network_task(name: str) -> Any:
    """A task that talks to a service: retried after 2, 10 and 30 s (CORPUSFLOW_RETRY_DELAYS),
    unless the error is one that retrying cannot fix (a 4xx answer, a validation error)."""
    delays = retry_delays()
    return task(
        name=name,
        cache_policy=NO_CACHE,
        retries=len(delays),
        retry_delay_seconds=delays,
        retry_condition_fn=retry_unless_client_error,
    )


# ---------------------------------------------------------------- sources


def discover(sources: str, settings: Settings) -> list[SourceRef]:
    """Every file below a folder (or the file itself), or every object under an s3:// prefix,
    sorted by key so that batches are stable. Every entry is listed, those that must not be read
    (hidden, symlinks leading out or nowhere, fifos...) with the reason (ingest.sources.walk),
    and unsupported suffixes too: the ingest task records them as skipped, so every input has a
    fate."""
    if sources.startswith("s3://"):
        bucket_prefix = sources[len("s3://") :].rstrip("/")
        src = open_store(
            f"s3://{bucket_prefix}",
            endpoint_url=settings.aws_endpoint_url,
            access_key=settings.aws_access_key_id,
            secret_key=settings.aws_secret_access_key,
            region=settings.aws_region,
        )
        return [
            SourceRef(
                key=o.key,
                location=f"s3://{bucket_prefix}/{o.key}",
                skip=hidden_key(o.key),
                signature=object_signature(o.size, o.etag),
            )
            for o in sorted(src.list_info(""), key=lambda o: o.key)
        ]
    root = Path(sources)
    if root.is_file():
        sig = signature_of(root.stat())
        return [SourceRef(key=root.name, location=str(root), link=root.is_symlink(), signature=sig)]
    if not root.is_dir():
        raise FileNotFoundError(f"sources not found: {sources}")
    return walk(root)


def read_source(ref: SourceRef, settings: Settings) -> bytes:
    if ref.location.startswith("s3://"):
        bucket, _, key = ref.location[len("s3://") :].partition("/")
        src = open_store(
            f"s3://{bucket}",
            endpoint_url=settings.aws_endpoint_url,
            access_key=settings.aws_access_key_id,
            secret_key=settings.aws_secret_access_key,
            region=settings.aws_region,
        )
        info = src.head(key)
        if info is not None:  # the size is known before a byte is read
            check_size(info.size, Limits.from_settings(settings), ref.key)
        return src.get_bytes(key)
    return read_local(ref.location, Limits.from_settings(settings), ref.key, follow=ref.link)


def quarantine_unread(ledger: Ledger, ref: SourceRef, exc: IngestError) -> None:
    """Quarantine an input refused before it was read (too large): a local file is copied in
    chunks, never held whole; an object in S3 stays where it is and the reason says so."""
    message, chunks = exc.message, iter_chunks(ref.location, ref.key)
    if ref.location.startswith("s3://"):
        message, chunks = f"{exc.message}; not copied, the original is {ref.location}", iter([])
    ledger.quarantine_parts(ref.key, chunks, stage="ingest", kind=exc.kind, message=message)


def batched(items: Sequence, size: int) -> list[list]:  # type: ignore[type-arg]
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# ---------------------------------------------------------------- ingest


@dataclass
class IngestOutcome:
    processed: list[str]
    unchanged: list[str]
    skipped: list[tuple[str, str]]
    quarantined: list[tuple[str, str]]
    entries: list[tuple[str, Entry]] = field(default_factory=list)  # for commit_stage


def batch_run_name(stage: str) -> Any:
    """A task run name that says how far the run is: `ingest-batch 3/12`."""

    def name(parameters: dict[str, Any]) -> str:
        return f"{stage}-batch {parameters.get('index', 0) + 1}/{parameters.get('total', 1)}"

    return name


@task(name="ingest-batch", task_run_name=batch_run_name("ingest"), cache_policy=NO_CACHE)
def ingest_batch(
    batch: list[SourceRef], settings: Settings, run_id: str, index: int = 0, total: int = 1
) -> IngestOutcome:
    """Clean each source of the batch; the batch's documents go into one shard of the clean
    stage (corpus.stagestore), whose entries the flow commits to the index (commit_stage). An
    input already cleaned from the same bytes by the same cleaners is skipped, decided from
    the index read once per process and run: without reading it when discovery saw the size
    and mtime (S3: ETag) recorded then (unless settings.rehash), else by its sha256. A bad
    input is quarantined with its reason."""
    store = store_for(settings)
    ledger = Ledger(store, run_id)
    logger = get_run_logger()
    limits = Limits.from_settings(settings)
    clean = clean_store(store)
    known = cached_index(clean, run_id)
    out = IngestOutcome([], [], [], [])
    docs: list[dict[str, Any]] = []
    sources: list[tuple[str, str, str]] = []  # (source key, doc_id, sha256) for the ledger
    sigs: list[str] = []  # the signature of each document's source, for the index
    for ref in batch:
        suffix = Path(ref.key).suffix.lower()
        reason = ref.skip  # hidden, a symlink out of the root, a fifo... (ingest.sources)
        if reason is None and suffix not in SUPPORTED_SUFFIXES:
            supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
            reason = f"unsupported file type {suffix or '(none)'}; supported: {supported}"
        if reason is None:
            doc_id = make_doc_id(ref.key)
            entry = known.docs.get(doc_id)
            if not settings.rehash and unchanged_signature(entry, ref.signature, CLEANER_VERSION):
                out.unchanged.append(doc_id)  # its ledger entry ("processed") stands as it is
                continue
            try:
                data = read_source(ref, settings)
            except IngestError as exc:  # refused before reading: too large
                quarantine_unread(ledger, ref, exc)
                out.quarantined.append((printable(ref.key), printable(f"{exc.kind}: {exc}")))
                logger.warning("quarantined %s", out.quarantined[-1][1])
                continue
            except OSError as exc:  # vanished or unreadable since discovery
                reason = f"unreadable: {exc.strerror or exc}"
        if reason is not None:
            ledger.record(ref.key, "skipped", "ingest", reason=reason)
            out.skipped.append((printable(ref.key), printable(reason)))
            logger.info("skipped %s: %s", *out.skipped[-1])
            continue
        sha = hashlib.sha256(data).hexdigest()
        if unchanged_source(entry, sha, CLEANER_VERSION):
            out.unchanged.append(doc_id)
            if entry is not None and entry.source_sig != ref.signature:  # touched, same bytes
                out.entries.append((doc_id, replace(entry, source_sig=ref.signature)))
            continue
        try:
            doc = clean_guarded(
                data, source=ref.key, filename=ref.key, doc_id=doc_id, limits=limits
            )
        except IngestError as exc:
            ledger.quarantine(ref.key, data, stage="ingest", kind=exc.kind, message=exc.message)
            out.quarantined.append((printable(ref.key), printable(f"{exc.kind}: {exc.message}")))
            logger.warning("quarantined %s", out.quarantined[-1][1])
            continue
        docs.append(doc.model_dump(mode="json"))
        sources.append((ref.key, doc_id, sha))
        sigs.append(ref.signature)
        out.processed.append(doc_id)
    out.entries += clean.write_shard(docs, sigs)
    ledger.record_many(  # processed once the document is stored
        [
            ledger.entry(
                key,
                "processed",
                "ingest",
                doc_id=doc_id,
                source_sha256=sha,
                cleaner_version=CLEANER_VERSION,
            )
            for key, doc_id, sha in sources
        ]
    )
    ledger.flush()  # the batch's fates, one object: skipped, quarantined and processed
    logger.info(
        "ingest batch %d/%d: %d cleaned, %d unchanged, %d skipped, %d quarantined",
        index + 1,
        total,
        len(out.processed),
        len(out.unchanged),
        len(out.skipped),
        len(out.quarantined),
    )
    return out


def ingest_todo(settings: Settings, refs: Sequence[SourceRef]) -> tuple[list[SourceRef], list[str]]:
    """The sources an ingest batch must see, and the doc_ids of those discovery already shows
    unchanged (signature and cleaners those of their clean document, from the index read
    once): an unchanged run maps no ingest task and reads no source. Skipped inputs (hidden,
    unsupported...) go to the batches, which record their fate."""
    if settings.rehash:
        return list(refs), []
    known = clean_store(store_for(settings)).load()
    todo: list[SourceRef] = []
    unchanged: list[str] = []
    for ref in refs:
        if ref.skip is None and Path(ref.key).suffix.lower() in SUPPORTED_SUFFIXES:
            doc_id = make_doc_id(ref.key)
            if unchanged_signature(known.docs.get(doc_id), ref.signature, CLEANER_VERSION):
                unchanged.append(doc_id)
                continue
        todo.append(ref)
    return todo, unchanged


# ---------------------------------------------------------------- annotate


@task(name="annotate-batch", task_run_name=batch_run_name("annotate"), cache_policy=NO_CACHE)
def annotate_batch(
    doc_ids: list[str], settings: Settings, index: int = 0, total: int = 1
) -> dict[str, Any]:
    """Machine annotations for the batch, into one shard of the machine stage (its entries
    returned for commit_stage); a document whose clean text and model are unchanged keeps its
    annotations."""
    from annotators.pipeline import annotate, load_nlp, model_version_for

    store = store_for(settings)
    stance_model = stance_model_path(store, settings)
    model_version = model_version_for(settings.spacy_model, stance_model=stance_model)
    clean, machine = clean_store(store), machine_store(store)
    clean_index = cached_index(clean)
    todo_ids, kept = to_annotate(clean_index, cached_index(machine), doc_ids, model_version)
    todo = [CleanDocument.model_validate(d) for d in clean.read(clean_index, todo_ids)]
    entries: list[tuple[str, Entry]] = []
    if todo:
        nlp = load_nlp(settings.spacy_model, stance_model=stance_model)
        entries = machine.write_shard([d.model_dump(mode="json") for d in annotate(todo, nlp=nlp)])
    get_run_logger().info(
        "annotate batch %d/%d: %d annotated, %d unchanged", index + 1, total, len(todo), kept
    )
    return {"annotated": len(todo), "unchanged": kept, "entries": entries}


def migrate_stages(settings: Settings) -> dict[str, int]:
    """Documents of the one-file-per-document layout packed into shards (once, on the first
    run after the change), so that the run reads them from the indexes like the others."""
    store = store_for(settings)
    out = {}
    for stage in (clean_store(store), machine_store(store)):
        index = stage.load()
        out[stage.stage] = stage.migrate(index) if index.old_files else 0
        if index.dirty:  # shards the index missed (a crash before the last commit)
            stage.commit(index)
    return out


def commit_stage(settings: Settings, stage: str, entries: Sequence[tuple[str, Entry]]) -> bool:
    """The entries the batches of a stage returned, into its index (read and written once)."""
    store = store_for(settings)
    stage_ = clean_store(store) if stage == keys.clean_stage else machine_store(store)
    return stage_.commit(stage_.load(), entries)


def annotate_todo(settings: Settings, doc_ids: Sequence[str]) -> tuple[list[str], int]:
    """The documents the annotate stage must (re)annotate, and how many are up to date, from
    the indexes alone: an unchanged run maps no annotate task."""
    from annotators.pipeline import model_version_for

    store = store_for(settings)
    stance_model = stance_model_path(store, settings)
    model_version = model_version_for(settings.spacy_model, stance_model=stance_model)
    return to_annotate(
        clean_store(store).load(), machine_store(store).load(), doc_ids, model_version
    )


def stance_model_path(store: Store, settings: Settings) -> Path | None:
    """The stance model the annotate stage uses: CORPUSFLOW_STANCE_MODEL if set, else the one
    `corpusflow train stance` made current in the store (copied once into the work folder,
    by version), else None (the lexicon rules)."""
    if settings.stance_model is not None:
        return settings.stance_model
    if store.head(keys.stance_model_current) is None:
        return None
    current = store.get_json(keys.stance_model_current)
    key = str(current.get("key") or keys.stance_model(str(current["version"])))
    local = settings.work_dir / "models" / "stance" / Path(key).name  # .json, or a .tar model
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
        tmp.write_bytes(store.get_bytes(key))
        os.replace(tmp, local)
    return local


def machine_doc_ids(store: Store) -> list[str]:
    return sorted(machine_store(store).load().docs)


def iter_machine(store: Store, doc_ids: Sequence[str]) -> Iterator[AnnotatedDocument]:
    """The machine documents named, shard by shard (each shard read once): in the order of the
    store, not the order given."""
    machine = machine_store(store)
    for raw in machine.read(machine.load(), doc_ids):
        yield AnnotatedDocument.model_validate(raw)


def machine_index(store: Store) -> StageIndex:
    return machine_store(store).load()


# ---------------------------------------------------------------- review


@network_task("push-review")
def push_review(settings: Settings) -> dict[str, object]:
    """The machine-annotated documents to Label Studio, with predictions: those in machine
    shards no completed push to this project has sent (a document annotated again is in a new
    shard; shards never change), so a run sends what changed, not every document. Label Studio
    itself is asked which documents it already has, so a re-run (or a crash before our
    bookkeeping) never duplicates a task. A task deleted in Label Studio is not noticed by
    that (its document is not sent again until it changes): `settings.resync_review` (`run
    --resync-review`) asks Label Studio about every machine document and sends those without
    a task too. Embedded mode writes Label Studio import files instead."""
    if settings.review_enabled and settings.webhook_url and not settings.webhook_secret:
        raise ValueError("CORPUSFLOW_WEBHOOK_URL is set but CORPUSFLOW_WEBHOOK_SECRET is not")
    store = store_for(settings)
    if not settings.review_enabled:
        return write_embedded_import(store, settings)
    client = LabelStudioClient(settings.label_studio_url or "", settings.label_studio_api_key or "")
    project_id = client.ensure_project(
        settings.label_studio_project, label_config(), INSTRUCTIONS, overlap=settings.overlap
    )
    index = machine_index(store)
    state = _review_state(store)
    sent = set(state.get("pushed_shards") or []) if state.get("project_id") == project_id else set()
    doc_ids = sorted(d for d, e in index.docs.items() if e.shard not in sent)
    resync: dict[str, object] | None = None
    if settings.resync_review:
        todo = set(doc_ids)
        missing = client.missing_doc_ids(
            project_id, (d for d in sorted(index.docs) if d not in todo)
        )
        resync = {"checked": len(index.docs) - len(todo), "missing": len(missing)}
        get_run_logger().info("push --resync-review: %s", resync)
        doc_ids = sorted(todo.union(missing))
    report = client.push(
        project_id,
        iter_machine(store, doc_ids),
        batch_size=500,
        keep=lambda old: keep_reviewed(store, old.model_dump(mode="json"), keys.human(old.doc_id)),
    )
    report.unchanged += len(index.docs) - len(doc_ids)  # sent by an earlier push, as they are
    # an edited document whose old task could not be read whole is sent again next push
    again = {index.docs[d].shard for d in report.edited_left if d in index.docs}
    state = _review_state(store)
    state["project_id"] = project_id
    state["pushed_shards"] = sorted({e.shard for e in index.docs.values()} - again)
    store.put_json(keys.review_state, state)
    get_run_logger().info("push: %s", report.model_dump(exclude={"task_ids"}))
    out: dict[str, object] = {"mode": "label-studio", "project_id": project_id}
    out.update(_as_dict(report))
    if resync is not None:
        out["resync"] = resync
    out.pop("task_ids", None)  # one id per document: too much for a run report
    for edit in report.edited:
        get_run_logger().warning(
            "source edited after review: %s %s: %s",
            printable(edit.source),
            edit.action,
            edit.reason,
        )
    if settings.webhook_url and settings.webhook_secret:
        hook = client.register_webhook(project_id, settings.webhook_url, settings.webhook_secret)
        out["webhook"] = {"id": hook.id, "created": hook.created, "updated": hook.updated}
    return out


def write_embedded_import(store: Store, settings: Settings) -> dict[str, object]:
    """The Label Studio import files of the machine documents, one per machine shard
    (`<work>/labelstudio-import/<shard>.json`, copied to `review/labelstudio-import/` in the
    store): a file is (re)written only when the documents its shard still holds for the index
    changed (shards never change; documents leave one when they are annotated again), so a run
    writes what changed, not every task. Import every file of the folder into Label Studio."""
    from review.results import write_import_file

    machine = machine_store(store)
    index = machine.load()
    local = settings.work_dir / "labelstudio-import"
    by_shard: dict[str, list[str]] = {}
    for doc_id, entry in index.docs.items():
        by_shard.setdefault(entry.shard, []).append(doc_id)
    try:
        state = store.get_json(keys.import_state)
    except KeyError:
        state = {}
    made: dict[str, str] = dict(state.get("files") or {}) if state.get("format") == 2 else {}
    now: dict[str, str] = {}
    written = 0
    for shard in sorted(by_shard):
        ids = sorted(by_shard[shard])
        name = import_name(shard)
        digest = hashlib.sha256(
            "\n".join(f"{d}:{index.docs[d].line}" for d in ids).encode()
        ).hexdigest()[:16]
        now[name] = digest
        if made.get(name) == digest and (local / name).exists():
            continue
        if name not in made or not keep_import_tasks(local / name, set(ids)):
            docs = (AnnotatedDocument.model_validate(d) for d in machine.read(index, ids))
            write_import_file(docs, local / name)
        store.put_file(f"{keys.import_dir}{name}", local / name, content_type="application/json")
        written += 1
    gone = [name for name in made if name not in now]
    for name in gone:  # every document of the shard is in a newer one now
        (local / name).unlink(missing_ok=True)
        store.delete(f"{keys.import_dir}{name}")
    if state.get("format") != 2:  # a store of the single-file layout: that file goes
        store.delete(keys.import_file)
        (settings.work_dir / "labelstudio-import.json").unlink(missing_ok=True)
    if written or gone or now != made:
        store.put_json(keys.import_state, {"format": 2, "files": now, "tasks": len(index.docs)})
    return {
        "mode": "embedded",
        "import_file": str(local),
        "tasks": len(index.docs),
        "files": len(now),
        "written": written,
    }


def keep_import_tasks(path: Path, doc_ids: set[str]) -> bool:
    """Rewrite an import file (one task per line, review.results.write_import_file) with the
    tasks of `doc_ids` only, when it holds every one of them: a shard's documents only ever
    leave it, so the tasks of those that stay are as they were, and are kept without reading
    the shard again. False (nothing written) when the file is missing or lacks one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    kept = []
    for line in lines:
        body = line.rstrip(",")
        if body in ("[", "]", ""):
            continue
        try:
            doc_id = json.loads(body)["data"]["doc_id"]
        except (ValueError, KeyError, TypeError):
            return False  # not a file we wrote: made again from the shard
        if doc_id in doc_ids:
            kept.append(body)
    if len(kept) != len(doc_ids):
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("[\n" + ",\n".join(kept) + "\n]\n" if kept else "[]\n", encoding="utf-8")
    tmp.replace(path)
    return True


def import_name(shard: str) -> str:
    """machine/shards/20261201T...-ab12.jsonl.gz -> 20261201T...-ab12.json"""
    base = shard.rsplit("/", 1)[-1]
    return base.removesuffix(".jsonl.gz").removesuffix(".json") + ".json"


INSTRUCTIONS = instructions_html()


def _review_state(store: Store) -> dict:  # type: ignore[type-arg]
    if store.head(keys.review_state) is None:
        return {}
    return dict(store.get_json(keys.review_state))


def _as_dict(obj: object) -> dict[str, object]:
    if hasattr(obj, "model_dump"):
        return obj.model_dump()  # type: ignore[no-any-return]
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)  # type: ignore[call-overload, no-any-return]
    return dict(obj)  # type: ignore[call-overload]


@network_task("collect-review")
def collect_review(settings: Settings) -> dict[str, int]:
    """New and changed human annotations since the last collect: the review project's into
    `human/<doc_id>.json`, the adjudication project's into `human-adjudication/<doc_id>.json`."""
    if not settings.review_enabled:
        return {"collected": 0}
    store = store_for(settings)
    state = _review_state(store)
    project_id = state.get("project_id")
    if project_id is None:
        return {"collected": 0}
    client = LabelStudioClient(settings.label_studio_url or "", settings.label_studio_api_key or "")
    result = client.collect(
        project_id,
        since=state.get("cursor"),
        adjudicators=settings.adjudicators,
        overlap=settings.overlap,
    )
    for task_ in result:
        # whether the task is done is decided at adjudication, against the overlap of that run
        anns = [a.model_dump(mode="json") for a in task_.annotations]
        # the hash of the text they were made on: adjudication uses them on that text only
        record = {"task_id": task_.task_id, "content_hash": task_.content_hash, "annotations": anns}
        store.put_json(keys.human(task_.doc_id), record)
    if result.cursor:
        state["cursor"] = result.cursor
    out = {"collected": len(result), "cancelled": result.cancelled}
    dup = result.duplicates
    out.update(duplicates_found=dup.duplicates_found, duplicates_merged=dup.duplicates_merged)
    out.update(annotations_moved=dup.annotations_moved, duplicates_left=dup.duplicates_left)
    adj_project = state.get("adjudication_project_id")
    if adj_project is not None:
        decided = client.collect_adjudication(
            adj_project,
            since=state.get("adjudication_cursor"),
            adjudicators=settings.adjudicators or None,
        )
        for task_ in decided:
            store.put_json(
                keys.adjudicator(task_.doc_id),
                {
                    "task_id": task_.task_id,
                    "content_hash": task_.content_hash,
                    "annotations": [a.model_dump(mode="json") for a in task_.annotations],
                },
            )
        if decided.cursor:
            state["adjudication_cursor"] = decided.cursor
        out.update(adjudicated=len(decided), ignored_not_adjudicator=decided.ignored)
    store.put_json(keys.review_state, state)
    get_run_logger().info("collect: %s", out)
    return out


@network_task("push-adjudication")
def push_adjudication(settings: Settings, disputed: list[str]) -> dict[str, object]:
    """Each disputed document to the adjudication project (created on the first dispute),
    showing every annotator's version under a pseudonym; idempotent like `push_review`."""
    if not settings.review_enabled or not disputed:
        return {"disputed": len(disputed), "pushed": 0}
    store = store_for(settings)
    client = LabelStudioClient(settings.label_studio_url or "", settings.label_studio_api_key or "")
    project_id = client.ensure_adjudication_project(settings.label_studio_project)
    items = []
    docs = {d.doc_id: d for d in iter_machine(store, disputed)}  # r3-store: machine shards
    for doc_id in disputed:
        doc = docs[doc_id]
        # the versions made on this text only (a source edited after review: corpus/history.py)
        [made], _stale = current_work(store, [keys.human(doc_id)], doc.content_hash)
        human = [HumanAnnotation.model_validate(a) for a in made]
        decision = AdjudicationResult.model_validate(store.get_json(keys.adjudicated(doc_id)))
        items.append(AdjudicationItem(doc, human, decision))
    report = client.push_adjudication(
        project_id,
        items,
        keep=lambda old: keep_reviewed(
            store, old.model_dump(mode="json"), keys.adjudicator(old.doc_id), "adjudication"
        ),
    )
    state = _review_state(store)
    if state.get("adjudication_project_id") != project_id:
        state["adjudication_project_id"] = project_id
        store.put_json(keys.review_state, state)
    out: dict[str, object] = {"project_id": project_id, "disputed": len(disputed)}
    out.update(_as_dict(report))
    out.pop("task_ids", None)
    get_run_logger().info("push adjudication: %s", out)
    return out


def _human(store: Store, doc_id: str) -> list[dict[str, Any]]:
    """The annotations collected from the review project (adjudicators' included)."""
    return human_annotations(store, doc_id)


def _adjudicator(store: Store, doc_id: str) -> list[dict[str, Any]]:
    """The annotations collected from the adjudication project."""
    return adjudicator_annotations(store, doc_id)


# ---------------------------------------------------------------- adjudicate and publish


@task(name="adjudicate", cache_policy=NO_CACHE)
def adjudicate_all(settings: Settings) -> dict[str, object]:
    """Every document's decision (corpus.decisions); only the changed ones are written."""
    store = store_for(settings)
    # doc_id -> the content hash of its current text: human work made on another text (a
    # source edited after review) is left out (corpus/history.py, issue 14)
    hashes = {doc_id: e.content_hash for doc_id, e in sorted(machine_index(store).docs.items())}
    run = adjudicate_store(store, hashes, settings.overlap)
    get_run_logger().info("adjudicate: %s, %d decisions written", run.counts, run.written)
    return {"counts": run.counts, "agreement": run.agreement, "disputed": run.disputed}


def label_schema() -> dict[str, Any]:
    """The label schema a release carries (labels.json)."""
    return {
        "entity_labels": list(ENTITY_LABELS),
        "stance_labels": list(STANCE_LABELS),
        "target_labels": list(TARGET_LABELS),
        "document_flags": DOCUMENT_FLAGS,
        "label_studio_config": label_config(),
    }


@network_task("publish-release")
def publish_release(settings: Settings, code_version: str) -> dict[str, object]:
    """A new release version when the content changed: {"version", "created"}. A store with no
    document publishes nothing (version: the latest one, or None)."""
    result = publish_store(
        store_for(settings), label_schema=label_schema(), code_version=code_version
    )
    logger = get_run_logger()
    if result.version is None:
        logger.warning("publish: no document in the store, nothing to publish")
    else:
        fate = "created" if result.created else "unchanged, nothing new"
        logger.info(
            "publish: %s %s%s", result.version, fate, " (inputs unchanged)" * result.skipped
        )
    return {"version": result.version, "created": result.created}


def write_run_report(store: Store, run_id: str, report: dict) -> str:  # type: ignore[type-arg]
    key = f"runs/{run_id}.json"
    store.put_bytes(key, json.dumps(report, indent=2, sort_keys=True).encode(), "application/json")
    return key
