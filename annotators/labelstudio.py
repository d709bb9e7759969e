"""The human annotators' side: a Label Studio client that pushes machine annotations as
predictions (idempotently, deduplicated by doc_id) and collects human annotations back as
`schemas` records. Control names come from schemas/labelstudio_config.py, never from here."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, Field

from schemas.labeling import ENTITY_LABELS, STANCE_LABELS
from schemas.labelstudio_config import (
    CONTROLS,
    EVIDENCE_LABEL,
    ControlNames,
    adjudication_config,
    adjudication_instructions_html,
)
from schemas.records import (
    AnnotatedDocument,
    Dispute,
    Entity,
    Evidence,
    HumanAnnotation,
    Role,
    SpanLabel,
    Stance,
    StanceLabel,
)

Result = list[dict[str, Any]]
# The task data fields we write; a change in any of them is a change of the task.
TASK_FIELDS = ("text", "doc_id", "content_hash", "title", "source")
_DM_DATETIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # the Data Manager's filter format
ADJUDICATION_SUFFIX = " – adjudication"
# What collect reads of a task and of its annotations (see _collect).
COLLECT_FIELDS = "id,data,annotations,result,completed_by,updated_at,was_cancelled,lead_time"
WEBHOOK_SECRET_HEADER = "X-Corpusflow-Secret"
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")


_W = TypeVar("_W")  # what a task is built from: a document, an adjudication item


class LabelStudioError(RuntimeError):
    """A Label Studio API call failed. `status` is the HTTP status (None: no response), so a
    caller can tell errors worth retrying (5xx, None) from those that are not (4xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------- records


class PushReport(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_human: int = 0  # existing tasks left alone because they hold human work
    task_ids: dict[str, int] = Field(default_factory=dict)  # doc_id -> task id


class CollectedTask(BaseModel):
    task_id: int
    doc_id: str
    text: str
    annotations: list[HumanAnnotation]
    updated_at: str | None = None  # newest annotation (cancelled ones included)
    # distinct annotators (role "annotator") with a submitted, not cancelled annotation
    annotators: int = 0
    # the task has its `overlap` annotators (an adjudication task: one adjudicator)
    done: bool = False


class CollectedTasks(list[CollectedTask]):
    """What `collect` returns: the tasks, plus the cursor to pass as `since` next time and how
    many cancelled (skipped) annotations were left out."""

    def __init__(
        self, tasks: Iterable[CollectedTask] = (), cursor: str | None = None, cancelled: int = 0
    ) -> None:
        super().__init__(tasks)
        self.cursor = cursor
        self.cancelled = cancelled
        self.ignored = 0  # adjudication project: annotations by users who are not adjudicators


class WebhookInfo(BaseModel):
    id: int
    created: bool
    updated: bool


# ---------------------------------------------------------------- result <-> records


def _region_id(*parts: object) -> str:
    """A stable region id, so the same annotations always give the same result."""
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:10]


def _fallback_evidence(text: str, target: str, entities: Sequence[object]) -> Evidence:
    """Where a stance has no evidence sentence, its region is the target's first mention (an
    entity resolved to it, else the name in the text), else the whole text: a region is the only
    way a stance can be shown and corrected in Label Studio."""
    for entity in entities:
        if getattr(entity, "target", None) == target or getattr(entity, "text", None) == target:
            return Evidence(start=entity.start, end=entity.end)  # type: ignore[attr-defined]
    found = text.lower().find(target.lower()) if target else -1
    if found >= 0:
        return Evidence(start=found, end=found + len(target))
    return Evidence(start=0, end=len(text))


def to_result(
    text: str,
    entities: Iterable[Entity | SpanLabel] = (),
    stances: Iterable[Stance | StanceLabel] = (),
    flags: Iterable[str] = (),
    controls: ControlNames = CONTROLS,
) -> Result:
    """Records -> a Label Studio result list. Entity labels outside the label schema are left
    out (annotators are not asked to review them). Each stance evidence span becomes a region of
    the evidence control carrying, per region, the target and the stance choice."""
    c = controls
    result: Result = []
    entity_list = list(entities)
    for e in entity_list:
        if e.label not in ENTITY_LABELS:
            continue
        item: dict[str, Any] = {
            "id": _region_id("entity", e.start, e.end, e.label),
            "from_name": c.entities,
            "to_name": c.text,
            "type": "labels",
            "value": {
                "start": e.start,
                "end": e.end,
                "text": text[e.start : e.end],
                "labels": [e.label],
            },
        }
        if isinstance(e, Entity):
            item["score"] = e.score
        result.append(item)
    for s in stances:
        evidence = list(s.evidence) or [_fallback_evidence(text, s.target, entity_list)]
        for ev in evidence:
            rid = _region_id("stance", s.target, ev.start, ev.end)
            span = {"start": ev.start, "end": ev.end}
            region: dict[str, Any] = {
                "id": rid,
                "from_name": c.evidence,
                "to_name": c.text,
                "type": "labels",
                "value": {**span, "text": text[ev.start : ev.end], "labels": [EVIDENCE_LABEL]},
            }
            if isinstance(s, Stance):
                region["score"] = s.score
            result.append(region)
            result.append(
                {
                    "id": rid,
                    "from_name": c.stance_target,
                    "to_name": c.text,
                    "type": "textarea",
                    "value": {**span, "text": [s.target]},
                }
            )
            result.append(
                {
                    "id": rid,
                    "from_name": c.stance,
                    "to_name": c.text,
                    "type": "choices",
                    "value": {**span, "choices": [s.label]},
                }
            )
    flag_list = list(flags)
    if flag_list:
        result.append(
            {
                "id": _region_id("flags"),
                "from_name": c.flags,
                "to_name": c.text,
                "type": "choices",
                "value": {"choices": flag_list},
            }
        )
    return result


def from_result(
    result: Iterable[dict[str, Any]], controls: ControlNames = CONTROLS
) -> tuple[list[SpanLabel], list[StanceLabel], list[str]]:
    """A Label Studio result list -> (entities, stances, flags).

    Stance regions are joined to their per-region target and choice by region id, then grouped
    by target: one StanceLabel per target with all its evidence, labelled by the majority of its
    regions (a tie goes to the region earliest in the text). An evidence region without a
    target or a stance choice is incomplete and left out. Items of other controls are ignored."""
    c = controls
    entities: set[SpanLabel] = set()
    regions: dict[str, tuple[int, int]] = {}
    targets: dict[str, str] = {}
    choices: dict[str, str] = {}
    flags: list[str] = []
    for item in result:
        name, value, rid = item.get("from_name"), item.get("value") or {}, item.get("id", "")
        if name == c.entities:
            for label in value.get("labels", []):
                entities.add(SpanLabel(start=value["start"], end=value["end"], label=label))
        elif name == c.evidence:
            regions[rid] = (value["start"], value["end"])
        elif name == c.stance_target:
            typed = " ".join(t.strip() for t in value.get("text", []) if t and t.strip())
            if typed:
                targets[rid] = typed
        elif name == c.stance:
            picked = [x for x in value.get("choices", []) if x in STANCE_LABELS]
            if picked:
                choices[rid] = picked[0]
        elif name == c.flags:
            flags.extend(x for x in value.get("choices", []) if x not in flags)

    by_target: dict[str, list[tuple[tuple[int, int], str]]] = defaultdict(list)
    for rid, span in regions.items():
        if rid in targets and rid in choices:
            by_target[targets[rid]].append((span, choices[rid]))
    stances = []
    for target, found in sorted(by_target.items()):
        found.sort()
        votes = Counter(label for _, label in found)
        top = max(votes.values())
        label = next(label for _, label in found if votes[label] == top)
        evidence = tuple(Evidence(start=s, end=e) for (s, e) in sorted({span for span, _ in found}))
        stances.append(StanceLabel(target=target, label=label, evidence=evidence))  # type: ignore[arg-type]
    return sorted(entities, key=lambda e: (e.start, e.end, e.label)), stances, flags


def to_task(doc: AnnotatedDocument) -> dict[str, Any]:
    """The task data of a document (what annotators see, and our keys to find it again)."""
    return {
        "text": doc.text,
        "doc_id": doc.doc_id,
        "content_hash": doc.content_hash,
        "title": doc.metadata.title or "",
        "source": doc.metadata.source_url or doc.source,
    }


def to_prediction(doc: AnnotatedDocument) -> dict[str, Any]:
    """The machine annotations of a document as one Label Studio prediction. Its score (used
    by LS to sample uncertain tasks first) is the lowest region score: a document is as
    doubtful as its most doubtful label."""
    result = to_result(doc.text, doc.entities, doc.stances)
    scores = [item["score"] for item in result if "score" in item]
    return {
        "model_version": doc.model_version,
        "score": min(scores) if scores else 1.0,
        "result": result,
    }


def _has_prediction(doc: AnnotatedDocument) -> bool:
    return bool(doc.model_version or doc.entities or doc.stances)


def to_import_task(doc: AnnotatedDocument) -> dict[str, Any]:
    """A task as Label Studio imports it: data plus, if there are any, its predictions."""
    task: dict[str, Any] = {"data": to_task(doc)}
    if _has_prediction(doc):
        task["predictions"] = [to_prediction(doc)]
    return task


def write_import_file(docs: Iterable[AnnotatedDocument], path: Path) -> int:
    """Write a Label Studio JSON import file (tasks with their predictions) for an operator to
    import by hand; returns the number of tasks. Used when no Label Studio is configured."""
    tasks = [to_import_task(doc) for doc in docs]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(tasks, ensure_ascii=False, indent=1))
    tmp.replace(path)
    return len(tasks)


# ---------------------------------------------------------------- the client


def _parse_time(value: str) -> datetime:
    """An ISO time; Label Studio's are UTC ("...Z"), and so is one given without a zone."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _http_date(value: str | None) -> datetime:
    """The time of an HTTP Date header (whole seconds), or now if there is none."""
    if value:
        try:
            return parsedate_to_datetime(value).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _same_result(a: Result, b: Result) -> bool:
    keys = ("id", "from_name", "to_name", "type", "value", "score")

    def norm(result: Result) -> list[str]:
        return sorted(
            json.dumps({k: r.get(k) for k in keys}, sort_keys=True, ensure_ascii=False)
            for r in result
        )

    return norm(a) == norm(b)


class LabelStudioClient:
    """A thin client of the Label Studio REST API (legacy token auth)."""

    def __init__(self, url: str, api_key: str, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {api_key}"
        self._user_tokens: dict[str, str] = {}

    # ------------------------------------------------------------ http

    def _request(
        self,
        method: str,
        path: str,
        *,
        session: requests.Session | None = None,
        **kwargs: Any,
    ) -> Any:
        response = self._send(method, path, session=session, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _send(
        self,
        method: str,
        path: str,
        *,
        session: requests.Session | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        url = f"{self.url}{path}"
        try:
            response = (session or self.session).request(
                method, url, timeout=kwargs.pop("timeout", self.timeout), **kwargs
            )
        except requests.RequestException as exc:
            raise LabelStudioError(f"{method} {url}: {exc}") from exc
        if response.status_code >= 400:
            raise LabelStudioError(
                f"{method} {url}: HTTP {response.status_code}: {response.text[:500]}",
                status=response.status_code,
            )
        return response

    def _tasks_pages(
        self,
        project_id: int,
        params: dict[str, Any],
        page_size: int = 100,
        started: list[datetime] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every task matching `params`, page by page (one request per page, never one per
        task). If `started` is given, the server's time of the first page (its HTTP Date) is
        appended to it: a caller that reads more than one page can tell what may have changed
        while it was reading."""
        page, seen = 1, 0
        while True:
            response = self._send(
                "GET",
                "/api/tasks/",
                params={**params, "project": project_id, "page": page, "page_size": page_size},
            )
            if started is not None and page == 1:
                started.append(_http_date(response.headers.get("Date")))
            body = response.json()
            tasks = body.get("tasks", [])
            yield from tasks
            seen += len(tasks)
            if not tasks or seen >= body.get("total", 0):
                return
            page += 1

    # ------------------------------------------------------------ projects

    def projects(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self._request("GET", "/api/projects/", params={"page": page, "page_size": 100})
            found.extend(body.get("results", []))
            if not body.get("next"):
                return found
            page += 1

    def ensure_project(
        self,
        title: str,
        label_config: str,
        instructions: str = "",
        *,
        overlap: int | None = None,
    ) -> int:
        """The id of the project with this title, created if missing; its labeling config,
        instructions and overlap are updated when they differ. Label Studio refuses a config
        that would drop labels already used in annotations (LabelStudioError, status 400).

        Overlap (how many annotators label each task). The open-source edition hides the
        setting in its UI, but its server enforces it, as read in label_studio 1.23.2 and
        checked by tests/test_review_overlap.py: `maximum_annotations` (with
        `overlap_cohort_percentage` 100) becomes every task's `overlap`, on import and, when
        changed, on existing tasks; a task is `is_labeled` once it has that many submitted
        (not skipped) annotations; the label stream (`/api/projects/<id>/next`, the UI's
        "Label All Tasks") offers a user only tasks that are not labelled, that they have not
        annotated or skipped, and not locked by as many others as places are left, filling
        tasks already started first. So no assignment of our own is needed, and none would be
        better: per-annotator filtered views or `assignee` fields in task data are advisory in
        the open-source edition too (any member can open any task from the Data Manager), they
        must be re-balanced by hand when someone leaves, and they would make us hand out work
        the server already hands out. What the server cannot stop is a member opening a task
        directly and annotating past the overlap, or a skip keeping a task from its last
        annotator: `collect` therefore counts for itself (CollectedTask.annotators, `done`)
        and extra annotations are simply more votes."""
        wanted: dict[str, Any] = {
            "label_config": label_config.strip(),  # as Label Studio stores it
            "expert_instruction": instructions,
            "show_instruction": bool(instructions),
        }
        if overlap is not None:
            # Enforced by the label stream (see the docstring). 100 %: every task gets
            # `overlap` annotators, not only a sampled cohort.
            wanted["maximum_annotations"] = overlap
            wanted["overlap_cohort_percentage"] = 100
        same_title = sorted(
            (p for p in self.projects() if p.get("title") == title), key=lambda p: p["id"]
        )
        if not same_title:
            created = self._request("POST", "/api/projects/", json={"title": title, **wanted})
            return int(created["id"])
        project = same_title[0]
        changed = {k: v for k, v in wanted.items() if project.get(k) != v}
        if changed:
            self._request("PATCH", f"/api/projects/{project['id']}/", json=changed)
        return int(project["id"])

    def project(self, project_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/projects/{project_id}/")

    # ------------------------------------------------------------ tasks

    def tasks(
        self, project_id: int, *, fields: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every task of a project with annotations and predictions, or only the top-level
        `fields` (Label Studio applies them to nested annotations too: do not combine with
        "annotations" or "predictions")."""
        params: dict[str, Any] = {"fields": "all"}
        if fields:
            params["include"] = ",".join(fields)
        return list(self._tasks_pages(project_id, params))

    def _predictions_by_task(self, project_id: int) -> dict[int, list[dict[str, Any]]]:
        # Unlike the task list, which shows only the project's current model_version, this
        # endpoint returns every prediction.
        found: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for p in self._request("GET", "/api/predictions/", params={"project": project_id}):
            found[int(p["task"])].append(p)
        return found

    def push(
        self, project_id: int, docs: Iterable[AnnotatedDocument], batch_size: int = 500
    ) -> PushReport:
        """Make the project hold one task per document, with the document's machine
        annotations as its prediction. New documents are imported (with predictions) in
        batches; an existing task without human work (annotations, skips or drafts) whose data
        or prediction differs is updated in place; a task with human work is never touched.
        Label Studio itself is the record of which doc_ids exist, so a push interrupted at any
        point is repaired by running it again, without duplicates."""
        wanted: dict[str, AnnotatedDocument] = {}
        for doc in docs:
            wanted[doc.doc_id] = doc  # the last version of a doc_id wins
        report, pushed = self._reconcile(
            project_id,
            wanted,
            lambda task, doc, current: self._sync_task(task, doc, current),
            to_import_task,
            batch_size,
        )
        self._show_model_version(project_id, [wanted[d] for d in pushed])
        return report

    def _reconcile(
        self,
        project_id: int,
        wanted: dict[str, _W],
        sync: Callable[[dict[str, Any], _W, list[dict[str, Any]]], bool],
        to_payload: Callable[[_W], dict[str, Any]],
        batch_size: int,
    ) -> tuple[PushReport, list[str]]:
        """Make the project hold one task per doc_id of `wanted`: missing ones imported in
        batches (`to_payload`), existing ones without human work brought up to date by `sync`
        (task, wanted item, the task's current predictions) -> changed?, tasks with human work
        left alone. Returns the report and the doc_ids created or updated."""
        report = PushReport()
        existing = self._existing_by_doc_id(project_id)
        predictions = self._predictions_by_task(project_id) if existing else {}
        new: list[str] = []
        pushed: list[str] = []
        for doc_id, item in wanted.items():
            tasks = existing.get(doc_id)
            if not tasks:
                new.append(doc_id)
                continue
            report.task_ids[doc_id] = min(t["id"] for t in tasks)
            if any(_holds_human_work(t) for t in tasks):
                report.skipped_human += 1
                continue
            changed = False
            for task in tasks:
                changed |= sync(task, item, predictions.get(task["id"], []))
            if changed:
                report.updated += 1
                pushed.append(doc_id)
            else:
                report.unchanged += 1
        for start in range(0, len(new), batch_size):
            batch = new[start : start + batch_size]
            body = self._request(
                "POST",
                f"/api/projects/{project_id}/import",
                params={"return_task_ids": "true"},
                json=[to_payload(wanted[d]) for d in batch],
            )
            for doc_id, task_id in zip(batch, body.get("task_ids", []), strict=False):
                report.task_ids[doc_id] = int(task_id)
            report.created += len(batch)
            pushed.extend(batch)
        return report, pushed

    def _sync_task(
        self, task: dict[str, Any], doc: AnnotatedDocument, current: list[dict[str, Any]]
    ) -> bool:
        """Bring an untouched task in line with the document; True if anything changed."""
        changed = False
        data = task.get("data") or {}
        wanted_data = to_task(doc)
        if any(data.get(k) != v for k, v in wanted_data.items()):
            self._request("PATCH", f"/api/tasks/{task['id']}/", json={"data": wanted_data})
            changed = True
        if not _has_prediction(doc):
            for p in current:
                self._request("DELETE", f"/api/predictions/{p['id']}/")
            return changed or bool(current)
        prediction = to_prediction(doc)
        if (
            len(current) == 1
            and current[0].get("model_version") == prediction["model_version"]
            and current[0].get("score") == prediction["score"]
            and _same_result(current[0].get("result") or [], prediction["result"])
        ):
            return changed
        if current:
            first, *rest = sorted(current, key=lambda p: p["id"])
            self._request("PATCH", f"/api/predictions/{first['id']}/", json=prediction)
            for p in rest:
                self._request("DELETE", f"/api/predictions/{p['id']}/")
        else:
            self._request("POST", "/api/predictions/", json={"task": task["id"], **prediction})
        return True

    def _show_model_version(self, project_id: int, docs: Iterable[AnnotatedDocument]) -> None:
        """Point the project at the model version just pushed: Label Studio shows annotators
        only the predictions of the project's model_version (and refuses a version no
        prediction has, hence only versions pushed just now)."""
        versions = Counter(d.model_version for d in docs if d.model_version)
        if not versions:
            return
        version = versions.most_common(1)[0][0]
        if self.project(project_id).get("model_version") != version:
            self._request("PATCH", f"/api/projects/{project_id}/", json={"model_version": version})

    # ------------------------------------------------------------ adjudication

    def ensure_adjudication_project(self, title: str) -> int:
        """The adjudication project belonging to the review project `title` (its title plus
        ADJUDICATION_SUFFIX), created or updated like `ensure_project`: the review config plus a
        panel with the annotators' versions, one adjudicator a task."""
        return self.ensure_project(
            adjudication_title(title),
            adjudication_config(),
            adjudication_instructions_html(),
            overlap=1,
        )

    def push_adjudication(
        self,
        project_id: int,
        items: Iterable[tuple[AnnotatedDocument, Sequence[HumanAnnotation], Sequence[Dispute]]],
        batch_size: int = 200,
    ) -> PushReport:
        """One adjudication task per disputed document: the text, each annotator's version as
        a prediction (model_version = "annotator-<n>", numbered in the order of their emails,
        so no email is shown) and, readable side by side, every version and the disputes in the
        task's `versions` field. Idempotent by doc_id: an existing task is updated in place
        while no adjudicator has touched it (the versions change when an annotator resubmits),
        and never afterwards. Adjudicators' own annotations among `annotations` are left out.
        As with `push`, Label Studio is the record of which doc_ids exist, so an interrupted
        push is repaired by running it again."""
        wanted: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for doc, human, disputes in items:
            wanted[doc.doc_id] = _adjudication_task(doc, human, disputes)
        report, _pushed = self._reconcile(
            project_id,
            wanted,
            lambda task, item, current: self._sync_adjudication_task(
                task, item[0], item[1], current
            ),
            lambda item: {"data": item[0], "predictions": item[1]},
            batch_size,
        )
        has_versions = any(preds for _, preds in wanted.values())
        if has_versions and self.project(project_id).get("model_version") != _pseudonym(0):
            # The label stream pre-fills only the project's model_version: annotator-1's.
            self._request(
                "PATCH", f"/api/projects/{project_id}/", json={"model_version": _pseudonym(0)}
            )
        return report

    def _existing_by_doc_id(self, project_id: int) -> dict[str, list[dict[str, Any]]]:
        existing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for task in self._tasks_pages(
            project_id,
            {
                "fields": "all",
                "include": "id,data,total_annotations,cancelled_annotations,draft_exists",
            },
            page_size=1000,
        ):
            doc_id = (task.get("data") or {}).get("doc_id")
            if doc_id is not None:
                existing[str(doc_id)].append(task)
        return existing

    def _sync_adjudication_task(
        self,
        task: dict[str, Any],
        data: dict[str, Any],
        wanted: list[dict[str, Any]],
        current: list[dict[str, Any]],
    ) -> bool:
        changed = False
        if task.get("data") != data:
            self._request("PATCH", f"/api/tasks/{task['id']}/", json={"data": data})
            changed = True
        have = sorted(
            (p.get("model_version") or "", json.dumps(p.get("result") or [], sort_keys=True))
            for p in current
        )
        want = sorted((p["model_version"], json.dumps(p["result"], sort_keys=True)) for p in wanted)
        if have != want:
            for p in current:
                self._request("DELETE", f"/api/predictions/{p['id']}/")
            for p in wanted:
                self._request("POST", "/api/predictions/", json={"task": task["id"], **p})
            changed = True
        return changed

    def collect_adjudication(
        self,
        project_id: int,
        since: str | None = None,
        *,
        adjudicators: Iterable[str] | None = None,
        page_size: int = 500,
    ) -> CollectedTasks:
        """Adjudicators' annotations from the adjudication project, incremental like `collect`
        (same cursor semantics), every one with role "adjudicator", which the adjudication
        rules take as final. Label Studio's open-source edition cannot keep a user out of a
        project, so the role is enforced here: with `adjudicators` (emails) given, annotations
        by anyone else are left out and counted in `ignored`. A task is `done` with one."""
        judges = None if adjudicators is None else {e.lower() for e in adjudicators}

        def role(email: str) -> Role | None:
            return "adjudicator" if judges is None or email.lower() in judges else None

        return self._collect(project_id, since, role, 1, "adjudicator", page_size)

    # ------------------------------------------------------------ webhooks

    def register_webhook(
        self,
        project_id: int,
        url: str,
        secret: str,
        *,
        header: str = WEBHOOK_SECRET_HEADER,
        actions: Sequence[str] = WEBHOOK_ACTIONS,
    ) -> WebhookInfo:
        """Make Label Studio call `url` on annotation changes in the project, sending `secret`
        in `header`. Idempotent: the project's webhook with this url is updated in place when
        its secret, actions or state differ, created when missing. Label Studio refuses a url
        on a local or private network unless it runs with SSRF_PROTECTION_ENABLED=false
        (LabelStudioError, status 400)."""
        wanted: dict[str, Any] = {
            "project": project_id,
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "headers": {header: secret},
            "is_active": True,
            "actions": sorted(actions),
        }
        hooks = self._request("GET", "/api/webhooks/", params={"project": project_id}) or []
        mine = sorted(
            (h for h in hooks if h.get("url") == url and h.get("project") == project_id),
            key=lambda h: h["id"],
        )
        if not mine:
            created = self._request("POST", "/api/webhooks/", json=wanted)
            return WebhookInfo(id=int(created["id"]), created=True, updated=False)
        hook = mine[0]
        differs = {
            k: v
            for k, v in wanted.items()
            if (sorted(hook.get(k) or []) if k == "actions" else hook.get(k)) != v
        }
        if differs:
            self._request("PATCH", f"/api/webhooks/{hook['id']}/", json=differs)
        return WebhookInfo(id=int(hook["id"]), created=False, updated=bool(differs))

    # ------------------------------------------------------------ the label stream

    def next_task(self, project_id: int, *, email: str, password: str) -> dict[str, Any] | None:
        """The task Label Studio's label stream ("Label All Tasks") gives this user next, as
        the labeling UI asks for it; None when the stream has nothing left for them."""
        token = self.user_token(email, password)
        try:
            return self._request(
                "GET",
                f"/api/projects/{project_id}/next",
                headers={"Authorization": f"Token {token}"},
            )
        except LabelStudioError as exc:
            if exc.status == 404:
                return None
            raise

    # ------------------------------------------------------------ collect

    def users(self) -> dict[int, str]:
        """user id -> email, for the active organisation."""
        body = self._request("GET", "/api/users/")
        return {int(u["id"]): u.get("email", "") for u in body}

    def collect(
        self,
        project_id: int,
        since: str | None = None,
        *,
        adjudicators: Iterable[str] = (),
        overlap: int | None = None,
        page_size: int = 500,
    ) -> CollectedTasks:
        """Human annotations of the tasks where any annotation changed after `since` (an ISO
        time, e.g. the `cursor` of the previous call; None: everything). Each task comes with
        all of its current annotations, so a document is always adjudicated on the full set;
        cancelled (skipped) annotations are left out and counted. Annotators named in
        `adjudicators` (emails) get role "adjudicator". A task is `done` when `overlap`
        distinct annotators (adjudicators not counted) submitted it; `overlap` defaults to
        the project's `maximum_annotations`.

        Scale: the server filters (tasks updated after `since`, or, on a first collect, tasks
        with any annotation) and pages (`page_size` tasks a request, ordered by id); nothing
        is fetched per task. If the walk took more than one page, the cursor is held back to
        the server's time at the first page, so an annotation saved on a page already read
        is collected next time rather than lost (collecting a task twice is harmless)."""
        if overlap is None:
            overlap = int(self.project(project_id).get("maximum_annotations") or 1)
        judges = {e.lower() for e in adjudicators}

        def role(email: str) -> Role | None:
            return "adjudicator" if email.lower() in judges else "annotator"

        return self._collect(project_id, since, role, overlap, "annotator", page_size)

    def _collect(
        self,
        project_id: int,
        since: str | None,
        role_of: Callable[[str], Role | None],
        overlap: int,
        counted_role: Role,
        page_size: int,
    ) -> CollectedTasks:
        after = _parse_time(since) if since else None
        if after is not None:
            # An annotation's save touches its task's updated_at, so this filter is safe.
            items = [_dm_filter("updated_at", "greater", "Datetime", _dm_time(after))]
            conjunction = "and"
        else:
            items = [
                _dm_filter("total_annotations", "greater", "Number", 0),
                _dm_filter("cancelled_annotations", "greater", "Number", 0),
            ]
            conjunction = "or"
        # `include` also filters the fields of the nested annotations, so it names the
        # annotation fields we read too: predictions and the Data Manager's computed columns
        # are left out, which makes a page about 2.5 times faster to serve.
        params: dict[str, Any] = {
            "fields": "all",
            "include": COLLECT_FIELDS,
            "query": json.dumps(
                {
                    "filters": {"conjunction": conjunction, "items": items},
                    "ordering": ["tasks:id"],
                }
            ),
        }
        emails = self.users()
        collected = CollectedTasks()
        newest = after
        started: list[datetime] = []
        pages = 0
        for n, task in enumerate(self._tasks_pages(project_id, params, page_size, started)):
            pages = n // page_size + 1
            annotations = task.get("annotations") or []
            times = [_parse_time(a["updated_at"]) for a in annotations if a.get("updated_at")]
            fresh = [t for t in times if after is None or t > after]
            touched = _parse_time(task["updated_at"]) if task.get("updated_at") else None
            if not fresh:
                # No annotation is newer, yet the task changed: one of its annotations may
                # have been deleted, and the rest must replace what the caller holds.
                if after is None or touched is None or touched <= after or not times:
                    continue
                fresh = [touched]
            # The server filters on the task's updated_at, which its annotation saves set a
            # moment after their own: the cursor follows the task's, or the task comes again.
            stamps = [*fresh, touched] if touched is not None else fresh
            newest = max([*stamps, newest] if newest else stamps)
            human: list[HumanAnnotation] = []
            for a in annotations:
                if a.get("was_cancelled"):
                    if after is None or _parse_time(a["updated_at"]) > after:
                        collected.cancelled += 1
                    continue
                record = self._human_annotation(a, emails, role_of)
                if record is None:
                    collected.ignored += 1
                    continue
                human.append(record)
            if not human:
                continue
            counted = {h.annotator for h in human if h.role == counted_role}
            data = task.get("data") or {}
            collected.append(
                CollectedTask(
                    task_id=int(task["id"]),
                    doc_id=str(data.get("doc_id", "")),
                    text=str(data.get("text", "")),
                    annotations=human,
                    updated_at=_iso(max(fresh)),
                    annotators=len(counted),
                    done=len(counted) >= overlap,
                )
            )
        if newest is not None and pages > 1 and started:
            # HTTP Date has whole seconds: one second back covers the rounding.
            newest = min(newest, started[0] - timedelta(seconds=1))
            if after is not None:
                newest = max(newest, after)
        collected.cursor = _iso(newest) if newest else since
        return collected

    @staticmethod
    def _human_annotation(
        annotation: dict[str, Any],
        emails: dict[int, str],
        role_of: Callable[[str], Role | None],
    ) -> HumanAnnotation | None:
        who = annotation.get("completed_by")
        if isinstance(who, dict):  # expanded user
            email = who.get("email") or str(who.get("id"))
        else:
            email = emails.get(int(who), str(who)) if who is not None else "unknown"
        role = role_of(email)
        if role is None:
            return None
        entities, stances, flags = from_result(annotation.get("result") or [])
        return HumanAnnotation(
            annotator=email,
            role=role,
            entities=entities,
            stances=stances,
            flags=flags,
            lead_time=annotation.get("lead_time"),
            updated_at=annotation.get("updated_at"),
        )

    def export_snapshot(
        self, project_id: int, *, only_annotated: bool = False, timeout: float = 300
    ) -> list[dict[str, Any]]:
        """The whole project as Label Studio's JSON export, for archiving next to a release.
        Uses a snapshot export, because the plain GET export gives predictions as ids only
        (and completed_by as a user id) and leaves out tasks nobody annotated unless
        `download_all_tasks=true`: here predictions, drafts and completed_by come in full,
        skipped and ground-truth annotations included."""
        full = {"only_id": False}
        created = self._request(
            "POST",
            f"/api/projects/{project_id}/exports/",
            json={
                "title": "corpusflow snapshot",
                "task_filter_options": {"only_with_annotations": only_annotated},
                "annotation_filter_options": {"usual": True, "skipped": True, "ground_truth": True},
                "serialization_options": {
                    "predictions": full,
                    "drafts": full,
                    "annotations__completed_by": full,
                },
            },
        )
        export_id = created["id"]
        deadline = time.monotonic() + timeout
        status = created.get("status")
        while status not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise LabelStudioError(f"export {export_id} of project {project_id} timed out")
            time.sleep(1.0)
            status = self._request("GET", f"/api/projects/{project_id}/exports/{export_id}")[
                "status"
            ]
        if status == "failed":
            raise LabelStudioError(f"export {export_id} of project {project_id} failed")
        return self._request(
            "GET",
            f"/api/projects/{project_id}/exports/{export_id}/download",
            params={"exportType": "JSON"},
        )

    # ------------------------------------------------------------ admin helpers

    def create_user(self, email: str, password: str, first_name: str = "") -> int:
        """Create an annotator account the way a person would: sign up through the
        organisation's invite link (works with signup-without-link disabled). Returns the user
        id; an existing user with this email is returned as is."""
        for uid, known in self.users().items():
            if known.lower() == email.lower():
                return uid
        invite = self._request("GET", "/api/invite")["invite_url"]
        session = requests.Session()
        self._form_post(session, invite, {"email": email, "password": password, "how_find_us": ""})
        me = self._request("GET", "/api/current-user/whoami", session=session)
        if me.get("email", "").lower() != email.lower():
            raise LabelStudioError(f"signup of {email} did not log in as {email}")
        token = self._request("GET", "/api/current-user/token", session=session)["token"]
        self._user_tokens[email.lower()] = token
        if first_name:
            # As the user, with their token: a session-authenticated PATCH would need CSRF.
            self._request(
                "PATCH",
                f"/api/users/{me['id']}/",
                json={"first_name": first_name},
                headers={"Authorization": f"Token {token}"},
            )
        return int(me["id"])

    def user_token(self, email: str, password: str) -> str:
        """A user's API token, obtained by logging in as them (as the browser does)."""
        key = email.lower()
        if key not in self._user_tokens:
            session = requests.Session()
            self._form_post(session, "/user/login/", {"email": email, "password": password})
            self._user_tokens[key] = self._request(
                "GET", "/api/current-user/token", session=session
            )["token"]
        return self._user_tokens[key]

    def _form_post(self, session: requests.Session, path: str, form: dict[str, str]) -> None:
        """POST an HTML form as a browser would: CSRF cookie first, then the form. Django
        answers a successful signup or login with a redirect, a rejected one with the form."""
        url = f"{self.url}{path}"
        try:
            session.get(url, timeout=self.timeout).raise_for_status()
            response = session.post(
                url,
                data={**form, "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
                headers={"Referer": url},
                allow_redirects=False,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise LabelStudioError(f"POST {url}: {exc}") from exc
        if response.status_code != 302:
            raise LabelStudioError(
                f"POST {url} for {form.get('email')}: HTTP {response.status_code} "
                "(form rejected: wrong password, weak password or email taken?)",
                status=response.status_code,
            )

    def submit_annotation(
        self,
        task_id: int,
        result: Result,
        *,
        email: str,
        password: str,
        lead_time: float | None = None,
        was_cancelled: bool = False,
    ) -> int:
        """Submit (or, with was_cancelled, skip) a task as the user, through the same endpoint
        and with the user's own credentials the labeling UI uses, so Label Studio records them
        as `completed_by`. Returns the annotation id."""
        token = self.user_token(email, password)
        body: dict[str, Any] = {"result": result, "was_cancelled": was_cancelled}
        if lead_time is not None:
            body["lead_time"] = lead_time
        created = self._request(
            "POST",
            f"/api/tasks/{task_id}/annotations/",
            json=body,
            headers={"Authorization": f"Token {token}"},
        )
        return int(created["id"])

    def update_annotation(
        self, annotation_id: int, result: Result, *, email: str, password: str
    ) -> None:
        """Change a submitted annotation as its author (the UI's Update button)."""
        token = self.user_token(email, password)
        self._request(
            "PATCH",
            f"/api/annotations/{annotation_id}/",
            json={"result": result},
            headers={"Authorization": f"Token {token}"},
        )


def adjudication_title(title: str) -> str:
    """The title of the adjudication project of the review project `title`."""
    return f"{title}{ADJUDICATION_SUFFIX}"


def _pseudonym(index: int) -> str:
    return f"annotator-{index + 1}"


def _describe(entities: Sequence[SpanLabel], stances: Sequence[StanceLabel], text: str) -> str:
    ents = "; ".join(f"{text[e.start : e.end]!r} {e.label} [{e.start}-{e.end}]" for e in entities)
    sts = "; ".join(f"{s.target}: {s.label}" for s in stances)
    return f"  entities: {ents or '-'}\n  stances: {sts or '-'}"


def _adjudication_task(
    doc: AnnotatedDocument,
    annotations: Sequence[HumanAnnotation],
    disputes: Sequence[Dispute],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(task data, predictions) of a disputed document's adjudication task."""
    latest: dict[str, HumanAnnotation] = {}
    for a in annotations:
        if a.role == "annotator":
            latest[a.annotator] = a  # the last one given wins, as in the adjudication rules
    versions = [latest[k] for k in sorted(latest)]
    lines: list[str] = []
    predictions: list[dict[str, Any]] = []
    for i, a in enumerate(versions):
        name = _pseudonym(i)
        flags = f"\n  flags: {', '.join(a.flags)}" if a.flags else ""
        lines.append(f"{name}:\n{_describe(a.entities, a.stances, doc.text)}{flags}")
        predictions.append(
            {
                "model_version": name,
                "score": 1.0,
                "result": to_result(doc.text, a.entities, a.stances, a.flags),
            }
        )
    for d in disputes:
        votes = ", ".join(f"{label} x{n}" for label, n in sorted(d.votes.items()))
        if d.kind == "entity" and d.start is not None and d.end is not None:
            where = f"{doc.text[d.start : d.end]!r} [{d.start}-{d.end}]"
        else:
            where = f"target {d.target!r}"
        lines.append(f"DISPUTED {d.kind} {where}: {votes} (of {d.annotators})")
    data = {
        **to_task(doc),
        "versions": "\n".join(lines),
        "annotators": len(versions),
        "disputes": len(disputes),
    }
    return data, predictions


def _dm_filter(column: str, operator: str, kind: str, value: object) -> dict[str, Any]:
    return {"filter": f"filter:tasks:{column}", "operator": operator, "type": kind, "value": value}


def _dm_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_DM_DATETIME)


def _holds_human_work(task: dict[str, Any]) -> bool:
    return bool(
        task.get("total_annotations")
        or task.get("cancelled_annotations")
        or task.get("draft_exists")
    )


__all__ = [
    "ADJUDICATION_SUFFIX",
    "WEBHOOK_ACTIONS",
    "WEBHOOK_SECRET_HEADER",
    "CollectedTask",
    "CollectedTasks",
    "LabelStudioClient",
    "LabelStudioError",
    "PushReport",
    "WebhookInfo",
    "adjudication_title",
    "from_result",
    "to_import_task",
    "to_prediction",
    "to_result",
    "to_task",
    "write_import_file",
]
