"""Prefect tasks: one logical step or one side effect each. They pass document ids and store
keys, never whole corpora; the records themselves live in the store (see `keys`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import requests
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from corpus.adjudication import adjudicate, agreement_report
from corpus.history import current_work, keep_reviewed
from corpus.ledger import Ledger
from corpus.release import publish, read_latest
from corpus.store import PreconditionFailed, Store, open_store, open_store_from_settings
from ingest import CLEANER_VERSION, SUPPORTED_SUFFIXES, IngestError, make_doc_id
from ingest.guard import clean_guarded
from ingest.limits import Limits, check_size
from ingest.sources import SourceRef, hidden_key, iter_chunks, printable, read_local, walk
from review.adjudication import AdjudicationItem
from review.client import LabelStudioClient, LabelStudioError
from review.config import instructions_html, label_config
from schemas import (
    AdjudicationInput,
    AdjudicationResult,
    AnnotatedDocument,
    CleanDocument,
    HumanAnnotation,
)
from schemas.labeling import DOCUMENT_FLAGS, ENTITY_LABELS, STANCE_LABELS, TARGET_LABELS
from schemas.settings import Settings


class keys:  # noqa: N801 - a namespace of store key builders
    @staticmethod
    def clean(doc_id: str) -> str:
        return f"clean/{doc_id}.json"

    @staticmethod
    def machine(doc_id: str) -> str:
        return f"machine/{doc_id}.json"

    @staticmethod
    def human(doc_id: str) -> str:
        return f"human/{doc_id}.json"

    @staticmethod
    def adjudicator(doc_id: str) -> str:
        """The adjudicator's decision collected from the adjudication project."""
        return f"human-adjudication/{doc_id}.json"

    @staticmethod
    def adjudicated(doc_id: str) -> str:
        return f"adjudicated/{doc_id}.json"

    @staticmethod
    def stance_model(version: str) -> str:
        return f"models/stance/{version}.json"

    stance_model_current = "models/stance/current.json"

    review_state = "review/state.json"
    import_file = "review/labelstudio-import.json"


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
    """A task that talks to a service: retried after 2, 10 and 30 s, unless the error is one
    that retrying cannot fix (a 4xx answer, a validation error)."""
    return task(
        name=name,
        cache_policy=NO_CACHE,
        retries=3,
        retry_delay_seconds=[2, 10, 30],
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
            SourceRef(key=k, location=f"s3://{bucket_prefix}/{k}", skip=hidden_key(k))
            for k in sorted(src.list(""))
        ]
    root = Path(sources)
    if root.is_file():
        return [SourceRef(key=root.name, location=str(root), link=root.is_symlink())]
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


def batch_run_name(stage: str) -> Any:
    """A task run name that says how far the run is: `ingest-batch 3/12`."""

    def name(parameters: dict[str, Any]) -> str:
        return f"{stage}-batch {parameters.get('index', 0) + 1}/{parameters.get('total', 1)}"

    return name


@task(name="ingest-batch", task_run_name=batch_run_name("ingest"), cache_policy=NO_CACHE)
def ingest_batch(
    batch: list[SourceRef], settings: Settings, run_id: str, index: int = 0, total: int = 1
) -> IngestOutcome:
    """Clean each source of the batch into `clean/<doc_id>.json`; an input already cleaned with
    the same bytes and cleaner version is skipped; a bad input is quarantined with its reason."""
    store = store_for(settings)
    ledger = Ledger(store, run_id)
    logger = get_run_logger()
    limits = Limits.from_settings(settings)
    out = IngestOutcome([], [], [], [])
    for ref in batch:
        suffix = Path(ref.key).suffix.lower()
        reason = ref.skip  # hidden, a symlink out of the root, a fifo... (ingest.sources)
        if reason is None and suffix not in SUPPORTED_SUFFIXES:
            supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
            reason = f"unsupported file type {suffix or '(none)'}; supported: {supported}"
        if reason is None:
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
        doc_id = make_doc_id(ref.key)
        last = ledger.last(ref.key)
        if (
            last is not None
            and last.status == "processed"
            and last.source_sha256 == sha
            and last.cleaner_version == CLEANER_VERSION
            and store.head(keys.clean(doc_id)) is not None
        ):
            out.unchanged.append(doc_id)
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
        store.put_json(keys.clean(doc_id), doc.model_dump(mode="json"))
        ledger.record(
            ref.key,
            "processed",
            "ingest",
            doc_id=doc_id,
            source_sha256=sha,
            cleaner_version=CLEANER_VERSION,
        )
        out.processed.append(doc_id)
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


# ---------------------------------------------------------------- annotate


@task(name="annotate-batch", task_run_name=batch_run_name("annotate"), cache_policy=NO_CACHE)
def annotate_batch(
    doc_ids: list[str], settings: Settings, index: int = 0, total: int = 1
) -> dict[str, int]:
    """Machine annotations for the batch into `machine/<doc_id>.json`; a document whose clean
    text and model are unchanged keeps its annotations."""
    from annotators.pipeline import annotate, load_nlp, model_version_for

    store = store_for(settings)
    stance_model = stance_model_path(store, settings)
    model_version = model_version_for(settings.spacy_model, stance_model=stance_model)
    todo: list[CleanDocument] = []
    kept = 0
    for doc_id in doc_ids:
        clean = CleanDocument.model_validate(store.get_json(keys.clean(doc_id)))
        if store.head(keys.machine(doc_id)) is not None:
            prev = store.get_json(keys.machine(doc_id))
            if (
                prev.get("content_hash") == clean.content_hash
                and prev.get("model_version") == model_version
            ):
                kept += 1
                continue
        todo.append(clean)
    if todo:
        nlp = load_nlp(settings.spacy_model, stance_model=stance_model)
        for doc in annotate(todo, nlp=nlp):
            store.put_json(keys.machine(doc.doc_id), doc.model_dump(mode="json"))
    get_run_logger().info(
        "annotate batch %d/%d: %d annotated, %d unchanged", index + 1, total, len(todo), kept
    )
    return {"annotated": len(todo), "unchanged": kept}


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
    return sorted(k.rsplit("/", 1)[-1].removesuffix(".json") for k in store.list("machine/"))


def iter_machine(store: Store, doc_ids: Sequence[str]) -> Iterator[AnnotatedDocument]:
    for doc_id in doc_ids:
        yield AnnotatedDocument.model_validate(store.get_json(keys.machine(doc_id)))


# ---------------------------------------------------------------- review


@network_task("push-review")
def push_review(settings: Settings) -> dict[str, object]:
    """Every machine-annotated document to Label Studio, with predictions; Label Studio itself is
    asked which documents it already has, so a re-run (or a crash before our bookkeeping) never
    duplicates a task. Embedded mode writes a Label Studio import file instead."""
    if settings.review_enabled and settings.webhook_url and not settings.webhook_secret:
        raise ValueError("CORPUSFLOW_WEBHOOK_URL is set but CORPUSFLOW_WEBHOOK_SECRET is not")
    store = store_for(settings)
    doc_ids = machine_doc_ids(store)
    if not settings.review_enabled:
        from review.results import write_import_file

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "import.json"
            write_import_file(iter_machine(store, doc_ids), path)
            store.put_bytes(keys.import_file, path.read_bytes(), content_type="application/json")
        local = settings.work_dir / "labelstudio-import.json"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(store.get_bytes(keys.import_file))
        return {"mode": "embedded", "import_file": str(local), "tasks": len(doc_ids)}
    client = LabelStudioClient(settings.label_studio_url or "", settings.label_studio_api_key or "")
    project_id = client.ensure_project(
        settings.label_studio_project, label_config(), INSTRUCTIONS, overlap=settings.overlap
    )
    report = client.push(
        project_id,
        iter_machine(store, doc_ids),
        batch_size=500,
        keep=lambda old: keep_reviewed(store, old.model_dump(mode="json"), keys.human(old.doc_id)),
    )
    state = _review_state(store)
    state["project_id"] = project_id
    store.put_json(keys.review_state, state)
    get_run_logger().info("push: %s", report.model_dump(exclude={"task_ids"}))
    out: dict[str, object] = {"mode": "label-studio", "project_id": project_id}
    out.update(_as_dict(report))
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
    for doc_id in disputed:
        doc = AnnotatedDocument.model_validate(store.get_json(keys.machine(doc_id)))
        human = [HumanAnnotation.model_validate(a) for a in _human(store, doc_id)]
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
    if store.head(keys.human(doc_id)) is None:
        return []
    return list(store.get_json(keys.human(doc_id))["annotations"])


def _content_hash(store: Store, doc_id: str) -> Callable[[], str]:
    """The current content hash of a document (that of the text a release carries), read
    when asked."""
    return lambda: str(store.get_json(keys.machine(doc_id)).get("content_hash") or "")


def _adjudicator(store: Store, doc_id: str) -> list[dict[str, Any]]:
    """The annotations collected from the adjudication project."""
    if store.head(keys.adjudicator(doc_id)) is None:
        return []
    return list(store.get_json(keys.adjudicator(doc_id))["annotations"])


# ---------------------------------------------------------------- adjudicate and publish


def _no_decision(doc_id: str, status: str) -> AdjudicationResult:
    return AdjudicationResult.model_validate(
        {
            "doc_id": doc_id,
            "status": status,
            "entities": [],
            "stances": [],
            "disputes": [],
            "agreement": {"entity_f1": None, "stance_kappa": None},
        }
    )


def decide(
    doc_id: str,
    review: Sequence[dict[str, Any]],
    adjudication: Sequence[dict[str, Any]],
    overlap: int,
) -> AdjudicationResult:
    """The decision for one document from what people did: no human work -> machine; an
    adjudicator's annotation (in the review or the adjudication project) -> final; fewer
    annotators than `overlap` -> in_review (machine labels stand until the task is done);
    else the adjudication rules."""
    annotations = [*review, *adjudication]
    if not annotations:
        return _no_decision(doc_id, "machine")
    item = AdjudicationInput.model_validate({"doc_id": doc_id, "annotations": annotations})
    has_adjudicator = any(a.role == "adjudicator" for a in item.annotations)
    annotators = len({a.annotator for a in item.annotations if a.role == "annotator"})
    if not has_adjudicator and annotators < overlap:
        return _no_decision(doc_id, "in_review")
    return adjudicate(item)


@task(name="adjudicate", cache_policy=NO_CACHE)
def adjudicate_all(settings: Settings) -> dict[str, object]:
    store = store_for(settings)
    counts: dict[str, int] = {}
    inputs = []
    disputed = []
    for doc_id in machine_doc_ids(store):
        # human work counts only on the text it was made on (corpus/history.py, issue 14)
        (human, adjudication), stale = current_work(
            store, [keys.human(doc_id), keys.adjudicator(doc_id)], _content_hash(store, doc_id)
        )
        result = decide(doc_id, human, adjudication, settings.overlap)
        if stale and result.status == "machine":
            result = _no_decision(doc_id, "source_changed")
        if human:  # agreement between annotators, done or not (adjudicators are left out)
            item = AdjudicationInput.model_validate({"doc_id": doc_id, "annotations": human})
            inputs.append(item)
        if result.status == "disputed":
            disputed.append(doc_id)
        store.put_json(keys.adjudicated(doc_id), result.model_dump(mode="json"))
        counts[result.status] = counts.get(result.status, 0) + 1
    report = agreement_report(inputs)
    store.put_json("review/agreement.json", report)
    get_run_logger().info("adjudicate: %s", counts)
    return {"counts": counts, "agreement": report, "disputed": disputed}


class Pseudonyms:
    """Stable pseudonyms for annotators: keyed with a random salt kept in the store, so emails
    cannot be guessed back from a release. The salt is read (or created) once, at first use,
    so a publish costs one read of it, not one per annotation."""

    KEY = "config/pseudonym-salt"

    def __init__(self, store: Store) -> None:
        self.store = store
        self._salt: bytes | None = None

    def __call__(self, name: str) -> str:
        if self._salt is None:
            if self.store.head(self.KEY) is None:
                with contextlib.suppress(PreconditionFailed):  # another run won: use theirs
                    self.store.put_if_absent(self.KEY, os.urandom(32).hex().encode())
            self._salt = self.store.get_bytes(self.KEY)
        return "annotator-" + hashlib.sha256(self._salt + name.encode("utf-8")).hexdigest()[:10]


def pseudonym(store: Store, name: str) -> str:
    """The pseudonym of one annotator (see Pseudonyms)."""
    return Pseudonyms(store)(name)


def pseudonymize_agreement(report: dict[str, Any], names: Pseudonyms) -> dict[str, Any]:
    """The agreement report as a release carries it: annotators under their pseudonyms (the
    run report in the store keeps the emails, for the operator)."""
    out = dict(report)
    if "annotators" in out:
        out["annotators"] = {
            names(name): stats for name, stats in sorted(out["annotators"].items())
        }
    if "stance_kappa_pairwise" in out:
        pairs = {}
        for key, value in out["stance_kappa_pairwise"].items():
            a, _, b = key.partition("~")
            pa, pb = sorted((names(a), names(b)))
            pairs[f"{pa}~{pb}"] = value
        out["stance_kappa_pairwise"] = dict(sorted(pairs.items()))
    return out


def release_record(
    store: Store,
    doc: AnnotatedDocument,
    result: AdjudicationResult,
    names: Pseudonyms | None = None,
) -> dict[str, Any]:
    names = names or Pseudonyms(store)
    work, _stale = current_work(  # those who worked on this text only (corpus/history.py)
        store, [keys.human(doc.doc_id), keys.adjudicator(doc.doc_id)], doc.content_hash
    )
    people = [a for annotations in work for a in annotations]
    annotators = sorted({names(a["annotator"]) for a in people})
    gold = result.status in ("adjudicated", "reviewed")
    if gold:
        entities = [{**e.model_dump(), "text": doc.text[e.start : e.end]} for e in result.entities]
        stances = [
            {
                "target": s.target,
                "label": s.label,
                "evidence": [ev.model_dump() for ev in s.evidence],
            }
            for s in result.stances
        ]
    else:  # machine layer: never reviewed, or held back by a dispute
        entities = [e.model_dump() for e in doc.entities]
        stances = [s.model_dump() for s in doc.stances]
    return {
        "doc_id": doc.doc_id,
        "text": doc.text,
        "entities": entities,
        "stances": stances,
        "metadata": doc.metadata.model_dump(mode="json"),
        "review_status": result.status,
        "disputes": [d.model_dump() for d in result.disputes],
        "agreement": result.agreement.model_dump(),
        "source": doc.source,
        "annotators": annotators,
        "model_version": doc.model_version,
        "provenance": {
            "source_sha256": doc.source_sha256,
            "content_hash": doc.content_hash,
            "cleaner_version": doc.cleaner_version,
            "removed": [r.model_dump() for r in doc.removed],
        },
    }


@network_task("publish-release")
def publish_release(settings: Settings, code_version: str) -> dict[str, object]:
    """A new release version when the content changed: {"version", "created"}. A store with no
    document publishes nothing (version: the latest one, or None)."""
    store = store_for(settings)
    doc_ids = machine_doc_ids(store)
    if not doc_ids:
        latest, _etag = read_latest(store)
        get_run_logger().warning("publish: no document in the store, nothing to publish")
        return {"version": latest["version"] if latest else None, "created": False}
    records = []
    model_versions: set[str] = set()
    names = Pseudonyms(store)
    for doc in iter_machine(store, doc_ids):
        decision = AdjudicationResult.model_validate(store.get_json(keys.adjudicated(doc.doc_id)))
        records.append(release_record(store, doc, decision, names))
        model_versions.add(doc.model_version)
    agreement = (
        store.get_json("review/agreement.json") if store.head("review/agreement.json") else {}
    )
    agreement = pseudonymize_agreement(agreement, names)
    schema = {
        "entity_labels": list(ENTITY_LABELS),
        "stance_labels": list(STANCE_LABELS),
        "target_labels": list(TARGET_LABELS),
        "document_flags": DOCUMENT_FLAGS,
        "label_studio_config": label_config(),
    }
    result = publish(
        store,
        records,
        label_schema=schema,
        agreement=agreement,
        code_version=code_version,
        model_versions=sorted(model_versions),
    )
    get_run_logger().info(
        "publish: %s %s", result.version, "created" if result.created else "unchanged, nothing new"
    )
    return {"version": result.version, "created": result.created}


def write_run_report(store: Store, run_id: str, report: dict) -> str:  # type: ignore[type-arg]
    key = f"runs/{run_id}.json"
    store.put_bytes(key, json.dumps(report, indent=2, sort_keys=True).encode(), "application/json")
    return key
