"""The Label Studio client of the review loop, on the official SDK (`label-studio-sdk` 2.x,
`LabelStudio(base_url=..., api_key=...)`): projects, idempotent bulk push of machine
annotations as predictions (deduplicated by doc_id), incremental collect of human annotations
as `schemas` records, the adjudication project, webhooks, exports and users.

Our own HTTP, only where the SDK has no call for what the open-source server offers:
- `next_task`: the label stream, `GET /api/projects/<id>/next` (sent through the SDK's own
  transport, so with its base URL and auth);
- `create_user` / `user_token`: the sign-up and login *forms* and, in that browser session,
  `whoami` and the user's token (a person's first login; the SDK authenticates by token only).

Scale: a push works `PUSH_CHUNK` documents at a time and asks the server only for the tasks of
those doc_ids (a Data Manager filter on `data.doc_id`: one anchored regular expression, a trie
of the ids, `id_pattern`), each with its predictions (the task list's `predictions` field holds
every prediction of a task, of every model version), so what it holds is one chunk's documents
and tasks whatever the project's size, nothing is fetched per task, and a push of nothing asks
for nothing. (Before, a push read every prediction of the project through
`api/predictions/`, as plain JSON over the SDK's transport: the SDK's `predictions.list`
builds a typed model of every region, 15 % slower at 10,000 tasks; `_predictions_by_task`
still reads them so.)

SDK settings that matter: `max_retries=0`, because retries belong to the Prefect tasks that
know which errors are worth retrying, and a retried import could duplicate tasks; every call is
wrapped so that a failure is a LabelStudioError carrying the HTTP status."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import islice
from typing import Any, TypeVar

import httpx
import requests
from label_studio_sdk import LabelStudio, PrepareParamsRequestRequestSelectedItemsIncluded
from label_studio_sdk.core.api_error import ApiError
from pydantic import BaseModel, Field

from review.adjudication import (
    AGREED_VERSION,
    AdjudicationItem,
    adjudication_task,
    adjudication_title,
)
from review.config import adjudication_config, adjudication_instructions_html
from review.edits import Action, EditedDocument, ReviewedAnnotation, ReviewedVersion, decide
from review.results import (
    Result,
    from_result,
    has_prediction,
    same_result,
    to_import_task,
    to_prediction,
    to_task,
)
from schemas.records import AnnotatedDocument, HumanAnnotation, Role

# What collect reads of a task and of its annotations (see _collect).
COLLECT_FIELDS = "id,data,annotations,result,completed_by,updated_at,was_cancelled,lead_time"
WEBHOOK_SECRET_HEADER = "X-Corpusflow-Secret"
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
# Label Studio serves the label stream lowest prediction score first with this sampling.
UNCERTAINTY_SAMPLING = "Uncertainty sampling"
# The Data Manager tab every project gets: least certain documents first.
UNCERTAIN_FIRST_TAB = "Least certain first"
UNCERTAIN_FIRST_ORDERING = ["tasks:predictions_score"]
# Columns the tab leaves out of the task list: long or raw fields no one reads in a table.
_HIDDEN_COLUMNS = [
    *(
        f"tasks:data.{name}"
        for name in ("text", "heading", "byline", "content_hash", "disputes_html")
    ),
    "tasks:annotations_results",
    "tasks:predictions_results",
]
_TAB = {
    "title": UNCERTAIN_FIRST_TAB,
    "ordering": UNCERTAIN_FIRST_ORDERING,
    "hiddenColumns": {"explore": _HIDDEN_COLUMNS, "labeling": _HIDDEN_COLUMNS},
}
_DM_DATETIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # the Data Manager's filter format

# Namespace of the unique_id given to an annotation moved off a duplicate task: derived from the
# source annotation's id, so moving it twice (a re-run after a crash, two pushes at once) hits
# Label Studio's unique constraint on unique_id (HTTP 409) instead of copying it twice.
_MOVED_NS = uuid.UUID("6f1d3c52-9a57-4c36-8f0e-2b8a3f0c7d11")
_LIST_FIELDS = "id,data,total_annotations,cancelled_annotations,draft_exists"
# Documents a push works on at a time (their tasks, with their predictions, listed by one
# filtered request per _IDS_PER_QUERY of them).
PUSH_CHUNK = 2000
_IDS_PER_QUERY = 1000
# Task data fields that mark a task superseded by the task of an edited text (review/edits.py):
# the new text's content hash, and whether its human work was re-based there or replaced.
SUPERSEDED_BY = "superseded_by"
SUPERSEDED_ACTION = "superseded_action"

_W = TypeVar("_W")  # what a task is built from: a document, an adjudication item
_T = TypeVar("_T")


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
    # Label Studio has no unique key on task data, so a re-import or a race can give a doc_id
    # two tasks: the extra copies found, those merged into the kept task (lowest id) and
    # deleted, the human annotations moved onto it, and copies left because their work could
    # not be moved (a draft, a refused annotation): those are named in `duplicate_problems`.
    duplicates_found: int = 0
    duplicates_merged: int = 0
    annotations_moved: int = 0
    duplicates_left: int = 0
    duplicate_problems: list[str] = Field(default_factory=list)
    # Documents whose text changed under human work (review/edits.py): re-based (the work
    # moved to a new task at mapped offsets), replaced (a new task with machine labels only),
    # or left (the old task could not be read whole; tried again next push). Doc ids.
    rebased: list[str] = Field(default_factory=list)
    replaced: list[str] = Field(default_factory=list)
    edited_left: list[str] = Field(default_factory=list)
    edited: list[EditedDocument] = Field(default_factory=list)  # the details, one per doc
    task_ids: dict[str, int] = Field(default_factory=dict)  # doc_id -> task id


class CollectedTask(BaseModel):
    task_id: int
    doc_id: str
    text: str
    content_hash: str = ""  # of the text the annotations were made on (the task's data)
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
        # duplicate tasks merged before collecting (see LabelStudioClient.merge_duplicates)
        self.duplicates = PushReport()


class WebhookInfo(BaseModel):
    id: int
    created: bool
    updated: bool


# ---------------------------------------------------------------- helpers


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


def _dm_filter(column: str, operator: str, kind: str, value: object) -> dict[str, Any]:
    return {"filter": f"filter:tasks:{column}", "operator": operator, "type": kind, "value": value}


def _dm_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_DM_DATETIME)


def id_pattern(ids: Iterable[str]) -> str:
    """An anchored regular expression that matches exactly the strings `ids`: a trie of them
    (`^(?:ab(?:c|d)|e)\\Z`), so that the server tests a task's doc_id in time proportional to
    its length, not to the number of ids. Python's `re` (Label Studio on SQLite) and
    PostgreSQL's regular expressions read it alike."""
    trie: dict[str, Any] = {}
    for text in ids:
        node = trie
        for ch in text:
            node = node.setdefault(ch, {})
        node[""] = {}  # an id ends here

    def render(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + render(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        if len(branches) == 1 and "" not in node:
            return branches[0]
        return "(?:" + "|".join(branches) + ")" + ("?" if "" in node else "")

    return "^" + render(trie) + r"\Z"  # not `$`, which also matches before a final newline


def _chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """`items` in lists of `size` (the last one shorter), read lazily."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _doc_id_query(ids: Sequence[str], include: str) -> dict[str, Any]:
    """tasks.list arguments for the tasks whose data.doc_id is one of `ids`."""
    match = _dm_filter("data.doc_id", "regex", "String", id_pattern(ids))
    return {
        "include": include,
        "query": json.dumps({"filters": {"conjunction": "and", "items": [match]}}),
    }


def _superseded(task: dict[str, Any]) -> bool:
    return bool((task.get("data") or {}).get(SUPERSEDED_BY))


def _add_report(total: PushReport, part: PushReport) -> None:
    """Add one chunk's push report to the push's."""
    for name, field in PushReport.model_fields.items():
        mine, more = getattr(total, name), getattr(part, name)
        if field.annotation is int:
            setattr(total, name, mine + more)
        elif isinstance(mine, list):
            mine.extend(more)
        else:
            mine.update(more)


def _holds_annotations(task: dict[str, Any]) -> bool:
    """Submitted or skipped annotations (not drafts): what collect would take."""
    return bool(task.get("total_annotations") or task.get("cancelled_annotations"))


def _holds_human_work(task: dict[str, Any]) -> bool:
    return bool(
        task.get("total_annotations")
        or task.get("cancelled_annotations")
        or task.get("draft_exists")
    )


def _combine_copies(
    tasks: Sequence[CollectedTask], overlap: int, counted_role: Role
) -> list[CollectedTask]:
    """One CollectedTask per doc_id: copies that could not be merged (see merge_duplicates)
    come as one, under the lowest task id, with the annotations of every copy, so storing
    them by doc_id drops no one's work."""
    by_doc: dict[str, list[CollectedTask]] = defaultdict(list)
    for task in tasks:
        by_doc[task.doc_id].append(task)
    out: list[CollectedTask] = []
    for copies in by_doc.values():
        if len(copies) == 1:
            out.append(copies[0])
            continue
        first = min(copies, key=lambda t: t.task_id)
        annotations = [a for c in sorted(copies, key=lambda t: t.task_id) for a in c.annotations]
        counted = {a.annotator for a in annotations if a.role == counted_role}
        stamps = [c.updated_at for c in copies if c.updated_at]
        out.append(
            first.model_copy(
                update={
                    "annotations": annotations,
                    "annotators": len(counted),
                    "done": len(counted) >= overlap,
                    "updated_at": max(stamps, key=_parse_time) if stamps else None,
                }
            )
        )
    return out


def _task_id(task: dict[str, Any]) -> int:
    return int(task["id"])


def _plain(model: Any) -> dict[str, Any]:
    """An SDK model as the JSON the server sent (fields it did not send left out)."""
    if isinstance(model, dict):
        return model
    return dict(model.model_dump(mode="json", exclude_unset=True))


# ---------------------------------------------------------------- the client


class LabelStudioClient:
    """The review loop's view of one Label Studio server, through `label_studio_sdk`."""

    def __init__(self, url: str, api_key: str, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._server_date: str | None = None
        self.sdk = self._sdk(api_key)
        # the admin client's transport (tests watch its requests through its event hooks)
        self.http: httpx.Client = self.sdk._client_wrapper.httpx_client.httpx_client
        self._user_tokens: dict[str, str] = {}
        self._user_sdks: dict[str, LabelStudio] = {}
        self._emails: dict[int, str] | None = None  # users, read once a push if needed

    def _sdk(self, api_key: str) -> LabelStudio:
        # Our own httpx client only to read each response's Date (the server's clock, which
        # `collect` needs for its cursor); the SDK still makes every request.
        http = httpx.Client(
            timeout=self.timeout,
            follow_redirects=True,
            event_hooks={"response": [self._note_date]},
        )
        return LabelStudio(base_url=self.url, api_key=api_key, httpx_client=http, max_retries=0)

    def _note_date(self, response: httpx.Response) -> None:
        self._server_date = response.headers.get("Date")

    def _call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """One SDK call, its failure as a LabelStudioError naming `what` and the status."""
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, default=str)
            raise LabelStudioError(
                f"{what} on {self.url}: HTTP {exc.status_code}: {body[:500]}",
                status=exc.status_code,
            ) from exc
        except httpx.HTTPError as exc:
            raise LabelStudioError(f"{what} on {self.url}: {exc}") from exc

    def _tasks_pages(
        self,
        project_id: int,
        params: dict[str, Any],
        page_size: int = 100,
        started: list[datetime] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every task matching `params` (tasks.list arguments: include, query, view), page by
        page. Stops at the server's `total` instead of asking for one page too many, as the
        SDK's iterator would. If `started` is given, the server's time of the first page is
        appended to it: a caller that reads more than one page can tell what may have changed
        while it was reading."""
        what = f"list tasks of project {project_id}"
        pager: Any = self._call(
            what,
            self.sdk.tasks.list,
            project=project_id,
            fields="all",
            page_size=page_size,
            **params,
        )
        if started is not None:
            started.append(_http_date(self._server_date))
        seen = 0
        while True:
            tasks = pager.items or []
            for task in tasks:
                yield _plain(task)
            seen += len(tasks)
            if not tasks or seen >= pager.response.total:
                return
            pager = self._call(what, pager.next_page)

    # ------------------------------------------------------------ projects

    def projects(self, title: str | None = None) -> list[dict[str, Any]]:
        """Every project (with `title`: those whose title is exactly it)."""
        pager: Any = self._call("list projects", self.sdk.projects.list, title=title, page_size=100)
        found = self._call("list projects", lambda: [_plain(p) for p in pager])
        return [p for p in found if title is None or p.get("title") == title]

    def ensure_project(
        self,
        title: str,
        label_config: str,
        instructions: str = "",
        *,
        overlap: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> int:
        """The id of the project with this title, created if missing; its labeling config,
        instructions, overlap and `settings` (other project fields) are updated when they
        differ. Label Studio refuses a config that would drop labels already used in
        annotations (LabelStudioError, status 400). The label stream serves the least certain
        task first (uncertainty sampling on the prediction score) and the Data Manager gets a
        tab listing tasks that way (ensure_uncertain_first_tab).

        Overlap (how many annotators label each task). The open-source edition hides the
        setting in its UI, but its server enforces it, as read in label_studio 1.23.2 and
        checked by tests/test_review_overlap.py: `maximum_annotations` (with
        `overlap_cohort_percentage` 100) becomes every task's `overlap`, on import and, when
        changed, on existing tasks; a task is `is_labeled` once it has that many submitted
        (not skipped) annotations; the label stream (`/api/projects/<id>/next`, the UI's
        "Label All Tasks") offers a user only tasks that are not labelled, that they have not
        annotated or skipped, and not locked by as many others as places are left, filling
        tasks already started first. So no assignment of our own is needed. What the server
        cannot stop is a member opening a task directly and annotating past the overlap, or a
        skip keeping a task from its last annotator: `collect` therefore counts for itself
        (CollectedTask.annotators, `done`) and extra annotations are simply more votes."""
        wanted: dict[str, Any] = {
            "label_config": label_config.strip(),  # as Label Studio stores it
            "expert_instruction": instructions,
            "show_instruction": bool(instructions),
            "sampling": UNCERTAINTY_SAMPLING,
            **(settings or {}),
        }
        if overlap is not None:
            # Enforced by the label stream (see the docstring). 100 %: every task gets
            # `overlap` annotators, not only a sampled cohort.
            wanted["maximum_annotations"] = overlap
            wanted["overlap_cohort_percentage"] = 100
        same_title = sorted(self.projects(title), key=lambda p: p["id"])
        if not same_title:
            created = self._call(
                f"create project {title!r}", self.sdk.projects.create, title=title, **wanted
            )
            project_id = int(created.id)  # type: ignore[arg-type]
        else:
            project = same_title[0]
            project_id = int(project["id"])
            changed = {k: v for k, v in wanted.items() if project.get(k) != v}
            if changed:
                self._call(
                    f"update project {project_id}",
                    self.sdk.projects.update,
                    project_id,
                    **changed,
                )
        self.ensure_uncertain_first_tab(project_id)
        return project_id

    def ensure_uncertain_first_tab(self, project_id: int) -> int:
        """The project's Data Manager tab listing tasks least certain first (ascending
        prediction score), created if missing; shared by every member. Returns its id."""
        what = f"views of project {project_id}"
        for view in self._call(what, self.sdk.views.list, project=project_id):
            data = _plain(view).get("data") or {}
            if data.get("title") == UNCERTAIN_FIRST_TAB:
                if any(data.get(k) != v for k, v in _TAB.items()):
                    self._call(
                        what,
                        self.sdk.views.update,
                        int(view.id or 0),
                        project=project_id,
                        data={**data, **_TAB},
                    )
                return int(view.id or 0)
        created = self._call(what, self.sdk.views.create, project=project_id, data=_TAB)
        return int(created.id)  # type: ignore[arg-type]

    def project(self, project_id: int) -> dict[str, Any]:
        return _plain(self._call(f"project {project_id}", self.sdk.projects.get, project_id))

    # ------------------------------------------------------------ tasks

    def tasks(
        self,
        project_id: int,
        *,
        fields: Sequence[str] | None = None,
        ordering: Sequence[str] | None = None,
        view: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every task of a project with annotations and predictions, or only the top-level
        `fields` (Label Studio applies them to nested annotations too: do not combine with
        "annotations" or "predictions"); in Data Manager `ordering` (e.g.
        ["tasks:predictions_score"]) or in the order of the tab `view`."""
        params: dict[str, Any] = {}
        if fields:
            params["include"] = ",".join(fields)
        if ordering:
            params["query"] = json.dumps({"ordering": list(ordering)})
        if view is not None:
            params["view"] = view
        return list(self._tasks_pages(project_id, params))

    def _predictions_by_task(
        self, project_id: int, task_ids: Sequence[int] | None = None
    ) -> dict[int, list[dict[str, Any]]]:
        """Every prediction, of every model version, of the tasks `task_ids` (one request a
        task: the endpoint filters by one task, not by a list; None: one read of the whole
        project), by task."""
        found: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if task_ids is not None:
            for task_id in task_ids:
                what = f"predictions of task {task_id}"
                for p in self._get_json(what, "api/predictions/", {"task": task_id}):
                    found[int(p["task"])].append(p)
            return found
        what = f"predictions of project {project_id}"
        for p in self._get_json(what, "api/predictions/", {"project": project_id}):
            found[int(p["task"])].append(p)
        return found

    def _get_json(self, what: str, path: str, params: dict[str, Any]) -> Any:
        """GET through the SDK's transport (its base URL, auth and timeout), read as JSON."""
        try:
            response = self.sdk._client_wrapper.httpx_client.request(
                path, method="GET", params=params
            )
        except httpx.HTTPError as exc:
            raise LabelStudioError(f"{what} on {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise LabelStudioError(
                f"{what} on {self.url}: HTTP {response.status_code}: {response.text[:500]}",
                status=response.status_code,
            )
        return response.json()

    def push(
        self,
        project_id: int,
        docs: Iterable[AnnotatedDocument],
        batch_size: int = 500,
        *,
        keep: Callable[[ReviewedVersion], object] | None = None,
    ) -> PushReport:
        """Make the project hold one task per document, with the document's machine
        annotations as its prediction. New documents are imported (with predictions) in
        batches; an existing task without human work (annotations, skips or drafts) whose data
        or prediction differs is updated in place; a task with human work on the same text is
        never touched. Label Studio itself is the record of which doc_ids exist, so a push
        interrupted at any point is repaired by running it again, without duplicates.

        A task with human work on another text (the source was edited: its `content_hash`
        differs) is handed to `keep` as a ReviewedVersion (the old text, hash and every
        annotation and draft) before anything changes, then marked superseded (data
        `superseded_by`: the new hash; `is_labeled`, so the label stream no longer serves it)
        and the new text gets a new task: with the human annotations re-based onto it (same
        annotators, offsets mapped, created in the same import as the task) when no edit
        touches a label, else with machine labels only (replaced). See review/edits.py. The
        order (keep, mark, import) makes a re-run after a crash at any step finish the job
        without a second record or task.

        Works `PUSH_CHUNK` documents at a time (a doc_id given twice within a chunk: the last
        version wins), each chunk asking the server only for its own doc_ids' tasks."""
        total = PushReport()
        versions: Counter[str] = Counter()
        for chunk in _chunks(docs, PUSH_CHUNK):
            wanted = {doc.doc_id: doc for doc in chunk}
            self._push_chunk(project_id, wanted, batch_size, keep, total, versions)
        if versions:
            self._set_model_version(project_id, versions.most_common(1)[0][0])
        return total

    def _push_chunk(
        self,
        project_id: int,
        wanted: dict[str, AnnotatedDocument],
        batch_size: int,
        keep: Callable[[ReviewedVersion], object] | None,
        total: PushReport,
        versions: Counter[str],
    ) -> None:
        """`push` of one chunk of documents; its counts added to `total`, the model versions
        of what it created or updated to `versions`."""
        superseded: dict[str, list[dict[str, Any]]] = defaultdict(list)
        carried: dict[str, list[dict[str, Any]]] = {}  # doc_id -> annotations to import with

        def retarget(
            doc_id: str, tasks: list[dict[str, Any]], report: PushReport
        ) -> list[dict[str, Any]]:
            return self._supersede_edited(
                project_id, wanted[doc_id], tasks, superseded.get(doc_id, []), report, keep, carried
            )

        def payload(doc: AnnotatedDocument) -> dict[str, Any]:
            task = to_import_task(doc)
            if carried.get(doc.doc_id):
                task["annotations"] = carried[doc.doc_id]
            return task

        report, pushed = self._reconcile(
            project_id, wanted, self._sync_task, payload, batch_size, retarget, superseded
        )
        for edit in report.edited:
            edit.task_id = report.task_ids.get(edit.doc_id) if edit.action != "left" else None
        versions.update(wanted[d].model_version for d in pushed if wanted[d].model_version)
        _add_report(total, report)

    def _supersede_edited(
        self,
        project_id: int,
        doc: AnnotatedDocument,
        tasks: list[dict[str, Any]],
        superseded: list[dict[str, Any]],
        report: PushReport,
        keep: Callable[[ReviewedVersion], object] | None,
        carried: dict[str, list[dict[str, Any]]],
        rebase: bool = True,
    ) -> list[dict[str, Any]]:
        """The live tasks of `doc` once those holding human work on another text are
        superseded (see `push`); what is to be imported with the new task goes into
        `carried`. With no live task left by an earlier push that marked its task and then
        stopped, the re-based annotations are worked out again from the superseded task.
        Without `rebase` (the adjudication project) a changed text always replaces."""
        want = doc.content_hash
        if not want or any((t.get("data") or {}).get("content_hash") == want for t in tasks):
            return tasks
        worked = sorted((t for t in tasks if _holds_human_work(t)), key=lambda t: int(t["id"]))
        if not tasks:
            mine = [
                t
                for t in superseded
                if (t.get("data") or {}).get(SUPERSEDED_BY) == want
                and (t.get("data") or {}).get(SUPERSEDED_ACTION) == "rebased"
            ]
            if mine:  # marked, not yet imported: finish what that push started
                edit, annotations, _full = self._plan_edit(doc, max(mine, key=_task_id))
                self._note_edit(report, edit)
                carried[doc.doc_id] = annotations
            return tasks
        left = [t for t in tasks if not _holds_human_work(t)]
        for task in worked:
            edit, annotations, full = self._plan_edit(doc, task, rebase)
            if edit.action == "left":
                self._note_edit(report, edit)
                left.append(task)  # holds human work: push leaves it alone
                continue
            if keep is not None:
                keep(self._reviewed_version(project_id, full, edit))
            data = dict(task.get("data") or {})
            if data.get("text") == doc.text:
                # Only the metadata changed (the hash covers it): the labels stand on the very
                # same text, so the task is brought up to date in place; its next collect
                # (the update touches it) stamps the human record with the new hash.
                self._call(
                    f"update task {task['id']}",
                    self.sdk.tasks.update,
                    str(task["id"]),
                    data={**data, **to_task(doc)},  # the task's own fields are kept
                )
                self._note_edit(report, edit)
                report.task_ids[doc.doc_id] = int(task["id"])
                left.append(task)
                continue
            data.update({SUPERSEDED_BY: want, SUPERSEDED_ACTION: edit.action})
            self._call(
                f"mark task {task['id']} superseded",
                self.sdk.tasks.update,
                str(task["id"]),
                data=data,
                is_labeled=True,
            )
            self._note_edit(report, edit)
            carried.setdefault(doc.doc_id, []).extend(annotations)
        return left

    @staticmethod
    def _note_edit(report: PushReport, edit: EditedDocument) -> None:
        report.edited.append(edit)
        {"rebased": report.rebased, "replaced": report.replaced, "left": report.edited_left}[
            edit.action
        ].append(edit.doc_id)

    def _plan_edit(
        self, doc: AnnotatedDocument, task: dict[str, Any], rebase: bool = True
    ) -> tuple[EditedDocument, list[dict[str, Any]], dict[str, Any]]:
        """Read a task whose text changed under human work in full and decide (review/edits.py):
        the EditedDocument, the annotations, re-based, to import with the new task (none when
        replaced) and the task as read (for the history record)."""
        task_id = int(task["id"])
        data = task.get("data") or {}
        old_hash = str(data.get("content_hash") or "")
        full = _plain(self._call(f"task {task_id}", self.sdk.tasks.get, str(task_id)))
        annotations = full.get("annotations") or []
        listed = int(task.get("total_annotations") or 0)
        listed += int(task.get("cancelled_annotations") or 0)
        base = EditedDocument(
            doc_id=doc.doc_id,
            source=doc.source,
            action="left",
            old_hash=old_hash,
            new_hash=doc.content_hash,
            old_task_id=task_id,
            reason="",
        )
        if len(annotations) < listed:
            reason = f"{listed} annotations counted, {len(annotations)} readable: left alone"
            return base.model_copy(update={"reason": reason}), [], full
        submitted = [a for a in annotations if not a.get("was_cancelled")]
        drafts = full.get("drafts") or []
        action: Action
        results: list[list[dict[str, Any]]]
        if data.get("text") == doc.text:
            reason = "text unchanged, metadata changed: updated in place"
            return base.model_copy(update={"action": "rebased", "reason": reason}), [], full
        if not rebase:
            action, reason, results = "replaced", "a dispute is decided anew on the new text", []
        elif submitted:
            action, reason, results = decide(
                str(data.get("text") or ""), doc.text, [a.get("result") or [] for a in submitted]
            )
        else:
            action, reason, results = "replaced", "no submitted annotation to carry over", []
        if len(submitted) < len(annotations):
            reason += f"; {len(annotations) - len(submitted)} skip(s) stay on the old task"
        if drafts:
            reason += (
                f"; {len(drafts)} draft(s) stay on the old task (only their author can move one)"
            )
        carried = []
        for annotation, result in zip(submitted, results, strict=False):
            who = annotation.get("completed_by")
            user = who.get("id") if isinstance(who, dict) else who
            item: dict[str, Any] = {
                "id": int(annotation["id"]),  # Label Studio keeps it as the import_id
                "result": result,
                "ground_truth": bool(annotation.get("ground_truth")),
                "was_cancelled": False,
            }
            if annotation.get("lead_time") is not None:
                item["lead_time"] = annotation["lead_time"]
            if user is not None:
                item["completed_by"] = int(user)
            carried.append(item)
        edit = base.model_copy(
            update={"action": action, "annotations": len(carried), "reason": reason}
        )
        return edit, carried, full

    def _reviewed_version(
        self, project_id: int, full: dict[str, Any], edit: EditedDocument
    ) -> ReviewedVersion:
        data = full.get("data") or {}
        if self._emails is None:
            self._emails = self.users()
        annotations = []
        for a in full.get("annotations") or []:
            who = a.get("completed_by")
            user = who.get("id") if isinstance(who, dict) else who
            annotations.append(
                ReviewedAnnotation.model_validate(
                    {
                        **a,
                        "completed_by": user,
                        "annotator": self._emails.get(int(user)) if user is not None else None,
                        "ground_truth": bool(a.get("ground_truth")),
                        "was_cancelled": bool(a.get("was_cancelled")),
                    }
                )
            )
        return ReviewedVersion(
            doc_id=edit.doc_id,
            content_hash=edit.old_hash,
            text=str(data.get("text") or ""),
            task_id=edit.old_task_id,
            project_id=project_id,
            annotations=annotations,
            drafts=list(full.get("drafts") or []),
            superseded_by=edit.new_hash,
            action=edit.action,
            reason=edit.reason,
        )

    def _reconcile(
        self,
        project_id: int,
        wanted: dict[str, _W],
        sync: Callable[[dict[str, Any], _W, list[dict[str, Any]]], bool],
        to_payload: Callable[[_W], dict[str, Any]],
        batch_size: int,
        retarget: Callable[[str, list[dict[str, Any]], PushReport], list[dict[str, Any]]]
        | None = None,
        superseded: dict[str, list[dict[str, Any]]] | None = None,
    ) -> tuple[PushReport, list[str]]:
        """Make the project hold one task per doc_id of `wanted`: missing ones imported in
        batches (`to_payload`), existing ones without human work brought up to date by `sync`
        (task, wanted item, the task's current predictions) -> changed?, tasks with human work
        left alone. `retarget` (doc_id, its live tasks, report) may first take some of a
        doc's tasks out of the way (superseded: `superseded`, filled by the listing, holds
        those already marked). The server is asked only for the tasks of `wanted`'s doc_ids,
        with their predictions. Returns the report and the doc_ids created or updated."""
        report = PushReport()
        if not wanted:
            return report, []
        listed = self._existing_by_doc_id(project_id, superseded, wanted, predictions=True)
        existing = self.merge_duplicates(project_id, report, listed)
        predictions = {
            int(t["id"]): list(t.get("predictions") or []) for ts in existing.values() for t in ts
        }
        new: list[str] = []
        pushed: list[str] = []
        for doc_id, item in wanted.items():
            tasks = existing.get(doc_id) or []
            if retarget is not None:
                tasks = retarget(doc_id, tasks, report)
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
        # Batching is ours: the SDK sends what it is given in one request.
        for start in range(0, len(new), batch_size):
            batch = new[start : start + batch_size]
            body = self._call(
                f"import into project {project_id}",
                self.sdk.projects.import_tasks,
                project_id,
                request=[to_payload(wanted[d]) for d in batch],  # type: ignore[misc]
                return_task_ids=True,
            )
            task_ids = getattr(body, "task_ids", None) or []
            for doc_id, task_id in zip(batch, task_ids, strict=False):
                report.task_ids[doc_id] = int(task_id)
            report.created += len(batch)
            pushed.extend(batch)
        if new:
            # Another push may have imported some of the same documents meanwhile: read the
            # project again and merge what the race made (the lowest task id stays).
            after = self.merge_duplicates(
                project_id, report, self._existing_by_doc_id(project_id, doc_ids=new)
            )
            for doc_id in new:
                if after.get(doc_id):
                    report.task_ids[doc_id] = min(int(t["id"]) for t in after[doc_id])
        return report, pushed

    def merge_duplicates(
        self,
        project_id: int,
        report: PushReport | None = None,
        existing: dict[str, list[dict[str, Any]]] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Resolve doc_ids that have more than one task (`existing`: doc_id -> tasks as listed
        by _existing_by_doc_id; None: list the project). Deterministic, so two processes doing
        it at once agree: the lowest task id is kept; every human annotation (skips included)
        of an extra copy is re-created on the kept task with its result, completed_by,
        lead_time, was_cancelled and ground_truth; only then is the copy deleted. A copy
        whose work cannot be moved (a draft, which the API saves only as its own author; an
        annotation the server refused) is left in place and named in the report. What the
        API cannot keep of a moved annotation: its id, created_at and updated_at (new ones;
        import_id holds the old id), updated_by (the admin) and its history. Returns doc_id
        -> the tasks that remain. Counts go into `report`."""
        report = report if report is not None else PushReport()
        if existing is None:
            existing = self._existing_by_doc_id(project_id)
        remaining: dict[str, list[dict[str, Any]]] = {}
        merged: list[int] = []  # copies whose work is on the kept task: deleted at the end
        for doc_id, tasks in existing.items():
            if len(tasks) < 2:
                remaining[doc_id] = tasks
                continue
            kept, *extras = sorted(tasks, key=lambda t: int(t["id"]))
            report.duplicates_found += len(extras)
            left = [kept]
            for extra in extras:
                moved = self._merge_copy(int(kept["id"]), extra, doc_id, report)
                if moved is None:
                    left.append(extra)
                    report.duplicates_left += 1
                    continue
                merged.append(int(extra["id"]))
                report.duplicates_merged += 1
                report.annotations_moved += moved
                if moved:
                    kept["total_annotations"] = int(kept.get("total_annotations") or 0) + moved
            remaining[doc_id] = left
        self._delete_tasks(project_id, merged)
        return remaining

    def _merge_copy(
        self, kept_id: int, extra: dict[str, Any], doc_id: str, report: PushReport
    ) -> int | None:
        """Move the human work of task `extra` onto `kept_id`: the number of annotations
        moved (the copy may now be deleted), or None (and a problem in `report`) when the copy
        must stay."""
        extra_id = int(extra["id"])
        if extra.get("draft_exists"):
            report.duplicate_problems.append(
                f"doc {doc_id}: task {extra_id} kept beside {kept_id}: it holds a draft, "
                "which only its author can save elsewhere"
            )
            return None
        moved = 0
        if extra.get("total_annotations") or extra.get("cancelled_annotations"):
            try:
                full = _plain(self._call(f"task {extra_id}", self.sdk.tasks.get, str(extra_id)))
            except LabelStudioError as exc:
                if exc.status == 404:  # merged meanwhile by another push
                    return 0
                raise
            annotations = full.get("annotations") or []
            listed = int(extra.get("total_annotations") or 0)
            listed += int(extra.get("cancelled_annotations") or 0)
            if len(annotations) < listed:  # the task read shows fewer than the list counted
                report.duplicate_problems.append(
                    f"doc {doc_id}: task {extra_id} kept beside {kept_id}: "
                    f"{listed} annotations counted, {len(annotations)} readable"
                )
                return None
            origins: set[int] = set()
            if any(a.get("import_id") for a in annotations):
                # Two pushes at once may both re-base an edited document's work (see `push`):
                # the copies' annotations then come from the same old annotation, which the
                # kept task holds already.
                kept = _plain(self._call(f"task {kept_id}", self.sdk.tasks.get, str(kept_id)))
                origins = {
                    int(a["import_id"]) for a in kept.get("annotations") or [] if a.get("import_id")
                }
            for annotation in annotations:
                if annotation.get("import_id") and int(annotation["import_id"]) in origins:
                    continue
                problem = self._move_annotation(kept_id, annotation)
                if problem:
                    report.duplicate_problems.append(
                        f"doc {doc_id}: task {extra_id} kept beside {kept_id}: {problem}"
                    )
                    return None
                moved += 1
        return moved

    def _delete_tasks(self, project_id: int, task_ids: Sequence[int], chunk: int = 500) -> None:
        """Delete tasks with the Data Manager's bulk action (one DELETE per task took about
        0.2 s each). Ids already gone (another push merged them) are simply not matched."""
        for start in range(0, len(task_ids), chunk):
            self._call(
                f"delete tasks of project {project_id}",
                self.sdk.actions.create,
                id="delete_tasks",
                project=project_id,
                selected_items=PrepareParamsRequestRequestSelectedItemsIncluded(
                    all_=False, included=list(task_ids[start : start + chunk])
                ),
            )

    def _move_annotation(self, kept_id: int, annotation: dict[str, Any]) -> str | None:
        """Re-create one annotation on the kept task; None when it is there (now or from an
        earlier attempt), else why not."""
        who = annotation.get("completed_by")
        user = who.get("id") if isinstance(who, dict) else who
        extra: dict[str, Any] = {
            k: annotation[k]
            for k in ("lead_time", "was_cancelled", "ground_truth")
            if annotation.get(k) is not None
        }
        if user is not None:
            extra["completed_by"] = int(user)
        source = int(annotation["id"])
        try:
            self._call(
                f"move annotation {source} to task {kept_id}",
                self.sdk.annotations.create,
                kept_id,
                result=annotation.get("result") or [],
                import_id=source,
                unique_id=str(uuid.uuid5(_MOVED_NS, f"annotation:{source}")),
                **extra,
            )
        except LabelStudioError as exc:
            if exc.status == 409:  # unique_id taken: moved already
                return None
            if exc.status is not None and 400 <= exc.status < 500:
                return f"annotation {source} could not be moved ({exc})"
            raise
        return None

    def _sync_task(
        self, task: dict[str, Any], doc: AnnotatedDocument, current: list[dict[str, Any]]
    ) -> bool:
        """Bring an untouched task in line with the document; True if anything changed."""
        changed = False
        data = task.get("data") or {}
        wanted_data = to_task(doc)
        task_id = int(task["id"])
        if any(data.get(k) != v for k, v in wanted_data.items()):
            self._call(f"update task {task_id}", self.sdk.tasks.update, task_id, data=wanted_data)
            changed = True
        if not has_prediction(doc):
            for p in current:
                self._call("delete prediction", self.sdk.predictions.delete, int(p["id"]))
            return changed or bool(current)
        prediction = to_prediction(doc)
        if (
            len(current) == 1
            and current[0].get("model_version") == prediction["model_version"]
            and current[0].get("score") == prediction["score"]
            and same_result(current[0].get("result") or [], prediction["result"])
        ):
            return changed
        if current:
            first, *rest = sorted(current, key=lambda p: p["id"])
            self._call(
                "update prediction", self.sdk.predictions.update, int(first["id"]), **prediction
            )
            for p in rest:
                self._call("delete prediction", self.sdk.predictions.delete, int(p["id"]))
        else:
            self._call("create prediction", self.sdk.predictions.create, task=task_id, **prediction)
        return True

    def _set_model_version(self, project_id: int, version: str) -> None:
        """Point the project at a model version (`push`: the commonest of what it just
        created or updated): Label Studio shows annotators (and samples by) only the
        predictions of the project's model_version, and refuses a version no prediction
        has, hence only versions pushed just now."""
        if self.project(project_id).get("model_version") != version:
            self._call(
                f"update project {project_id}",
                self.sdk.projects.update,
                project_id,
                model_version=version,
            )

    def missing_doc_ids(self, project_id: int, doc_ids: Iterable[str]) -> list[str]:
        """Those of `doc_ids` that have no live task in the project (in their order), asked
        for `PUSH_CHUNK` at a time by the filtered listing that `push` uses."""
        missing: list[str] = []
        for chunk in _chunks(doc_ids, PUSH_CHUNK):
            have = self._existing_by_doc_id(project_id, doc_ids=chunk)
            missing.extend(d for d in chunk if not have.get(d))
        return missing

    def _existing_by_doc_id(
        self,
        project_id: int,
        superseded: dict[str, list[dict[str, Any]]] | None = None,
        doc_ids: Iterable[str] | None = None,
        predictions: bool = False,
    ) -> dict[str, list[dict[str, Any]]]:
        """doc_id -> its live tasks (of the doc_ids `doc_ids`, asked for by a filter; None:
        every task of the project), with `predictions`: each with its every prediction;
        tasks superseded by an edited text's (see `push`) are not among them (never merged as
        duplicates), but go into `superseded` if given."""
        existing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        include = _LIST_FIELDS + (",predictions" if predictions else "")
        queries: list[dict[str, Any]] = [{"include": include}]
        wanted: set[str] | None = None
        if doc_ids is not None:
            ids = sorted(set(doc_ids))
            wanted = set(ids)
            queries = [_doc_id_query(part, include) for part in _chunks(ids, _IDS_PER_QUERY)]
        tasks = (t for q in queries for t in self._tasks_pages(project_id, q, page_size=1000))
        for task in tasks:
            doc_id = (task.get("data") or {}).get("doc_id")
            if doc_id is None or (wanted is not None and str(doc_id) not in wanted):
                continue
            if not _superseded(task):
                existing[str(doc_id)].append(task)
            elif superseded is not None:
                superseded[str(doc_id)].append(task)
        return existing

    # ------------------------------------------------------------ adjudication

    def ensure_adjudication_project(self, title: str) -> int:
        """The adjudication project belonging to the review project `title` (its title plus
        ADJUDICATION_SUFFIX), created or updated like `ensure_project`: the adjudication
        config and instructions, one adjudicator a task, no skipping (a dispute must be
        decided).

        Who may work in it: the open-source server has no project membership, roles or
        workspaces (those are Enterprise), so every member of the organisation can see the
        project, open its tasks, annotate, and even change or delete it. What we enforce is
        which work counts: `collect_adjudication` takes only annotations by the configured
        adjudicators and counts the rest as ignored."""
        return self.ensure_project(
            adjudication_title(title),
            adjudication_config(),
            adjudication_instructions_html(),
            overlap=1,
            settings={
                "show_skip_button": False,
                "description": "Adjudicators only: decide the disputed items of each article.",
            },
        )

    def push_adjudication(
        self,
        project_id: int,
        items: Iterable[AdjudicationItem],
        batch_size: int = 200,
        *,
        keep: Callable[[ReviewedVersion], object] | None = None,
    ) -> PushReport:
        """One adjudication task per disputed document (see review/adjudication.py): the
        text, the disputes with each annotator's version side by side (under pseudonyms), and
        one prediction, the draft the adjudicator starts from, holding only what the
        annotators agreed on. Idempotent by doc_id: an existing task is updated in place while
        no adjudicator has touched it (the versions change when an annotator resubmits), and
        never afterwards. As with `push`, Label Studio is the record of which doc_ids exist,
        so an interrupted push is repaired by running it again. A task an adjudicator worked
        on whose text has since changed is handed to `keep` and superseded, as in `push`, and
        the dispute on the new text gets a new task (never re-based: the disputes differ)."""
        wanted: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        docs: dict[str, AnnotatedDocument] = {}
        for item in items:
            wanted[item.doc.doc_id] = adjudication_task(item)
            docs[item.doc.doc_id] = item.doc

        def retarget(
            doc_id: str, tasks: list[dict[str, Any]], report: PushReport
        ) -> list[dict[str, Any]]:
            return self._supersede_edited(
                project_id, docs[doc_id], tasks, [], report, keep, {}, rebase=False
            )

        report, _pushed = self._reconcile(
            project_id,
            wanted,
            lambda task, item, current: self._sync_adjudication_task(
                task, item[0], item[1], current
            ),
            lambda item: {"data": item[0], "predictions": item[1]},
            batch_size,
            retarget,
        )
        for edit in report.edited:
            edit.task_id = report.task_ids.get(edit.doc_id) if edit.action != "left" else None
        if wanted:
            # The labeling UI pre-fills only predictions of the project's model_version.
            self._set_model_version(project_id, AGREED_VERSION)
        return report

    def _sync_adjudication_task(
        self,
        task: dict[str, Any],
        data: dict[str, Any],
        wanted: list[dict[str, Any]],
        current: list[dict[str, Any]],
    ) -> bool:
        changed = False
        task_id = int(task["id"])
        if task.get("data") != data:
            self._call(f"update task {task_id}", self.sdk.tasks.update, task_id, data=data)
            changed = True
        have = sorted(
            (p.get("model_version") or "", json.dumps(p.get("result") or [], sort_keys=True))
            for p in current
        )
        want = sorted((p["model_version"], json.dumps(p["result"], sort_keys=True)) for p in wanted)
        if have != want:
            for p in current:
                self._call("delete prediction", self.sdk.predictions.delete, int(p["id"]))
            for p in wanted:
                self._call("create prediction", self.sdk.predictions.create, task=task_id, **p)
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
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "headers": {header: secret},
            "is_active": True,
            "actions": sorted(actions),
        }
        what = f"webhooks of project {project_id}"
        hooks = self._call(what, self.sdk.webhooks.list, project=str(project_id)) or []
        mine = sorted(
            (h for h in hooks if h.url == url and h.project == project_id),
            key=lambda h: int(h.id or 0),
        )
        if not mine:
            created = self._call(what, self.sdk.webhooks.create, project=project_id, **wanted)
            return WebhookInfo(id=int(created.id or 0), created=True, updated=False)
        hook = _plain(mine[0])
        differs = {
            k: v
            for k, v in wanted.items()
            if (sorted(hook.get(k) or []) if k == "actions" else hook.get(k)) != v
        }
        if differs:
            self._call(what, self.sdk.webhooks.update, int(hook["id"]), **differs)
        return WebhookInfo(id=int(hook["id"]), created=False, updated=bool(differs))

    # ------------------------------------------------------------ the label stream

    def next_task(self, project_id: int, *, email: str, password: str) -> dict[str, Any] | None:
        """The task Label Studio's label stream ("Label All Tasks") gives this user next, as
        the labeling UI asks for it; None when the stream has nothing left for them. (No SDK
        call: sent through the SDK's transport as the user.)"""
        sdk = self._as_user(email, password)
        what = f"next task of project {project_id} for {email}"
        try:
            response = sdk._client_wrapper.httpx_client.request(
                f"api/projects/{project_id}/next", method="GET"
            )
        except httpx.HTTPError as exc:
            raise LabelStudioError(f"{what}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise LabelStudioError(
                f"{what}: HTTP {response.status_code}: {response.text[:500]}",
                status=response.status_code,
            )
        return dict(response.json())

    # ------------------------------------------------------------ collect

    def users(self) -> dict[int, str]:
        """user id -> email, for the active organisation."""
        return {int(u.id): u.email or "" for u in self._call("list users", self.sdk.users.list)}  # type: ignore[arg-type]

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

        merged = self._merge_annotated_duplicates(project_id, since)
        collected = self._collect(project_id, since, role, overlap, "annotator", page_size)
        collected.duplicates = merged
        return collected

    def _merge_annotated_duplicates(self, project_id: int, since: str | None = None) -> PushReport:
        """Before collecting: merge the doc_ids where two or more tasks hold annotations (each
        copy's work would otherwise come as a separate task and one would overwrite the other
        in the store). On a first collect (`since` None) it lists the tasks with annotations;
        after that only the doc_ids of tasks updated after `since` can have a new annotated
        copy (an annotation's save touches its task), so it lists those tasks and then every
        task of their doc_ids: it costs what the collect walk costs, not the project's work."""
        if since is None:
            items = [
                _dm_filter("total_annotations", "greater", "Number", 0),
                _dm_filter("cancelled_annotations", "greater", "Number", 0),
            ]
            conjunction = "or"
        else:
            items = [_dm_filter("updated_at", "greater", "Datetime", _dm_time(_parse_time(since)))]
            conjunction = "and"
        params = {
            "include": _LIST_FIELDS,
            "query": json.dumps({"filters": {"conjunction": conjunction, "items": items}}),
        }
        annotated: dict[str, list[dict[str, Any]]] = defaultdict(list)
        # The class's own pager, not an instance override: tests that intercept the collect
        # walk's pages (tests/test_review_collect.py) must not see this listing.
        for task in LabelStudioClient._tasks_pages(self, project_id, params, page_size=1000):
            doc_id = (task.get("data") or {}).get("doc_id")
            if doc_id is not None and not _superseded(task):
                annotated[str(doc_id)].append(task)
        if since is not None and annotated:
            every = self._existing_by_doc_id(project_id, doc_ids=list(annotated))
            annotated = {d: [t for t in ts if _holds_annotations(t)] for d, ts in every.items()}
        report = PushReport()
        self.merge_duplicates(
            project_id, report, {d: t for d, t in annotated.items() if len(t) > 1}
        )
        return report

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
            if _superseded(task):  # its work was kept (history) or moved when its text changed
                continue
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
                    content_hash=str(data.get("content_hash") or ""),
                    annotations=human,
                    updated_at=_iso(max(fresh)),
                    annotators=len(counted),
                    done=len(counted) >= overlap,
                )
            )
        collected[:] = _combine_copies(collected, overlap, counted_role)
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
        exports = self.sdk.projects.exports
        what = f"export of project {project_id}"
        full = {"only_id": False}
        created = self._call(
            what,
            exports.create,
            project_id,
            title="corpusflow snapshot",
            task_filter_options={"only_with_annotations": only_annotated},
            annotation_filter_options={"usual": True, "skipped": True, "ground_truth": True},
            serialization_options={
                "predictions": full,
                "drafts": full,
                "annotations__completed_by": full,
            },
        )
        export_id = int(created.id)  # type: ignore[arg-type]
        deadline = time.monotonic() + timeout
        status = created.status
        while status not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise LabelStudioError(f"export {export_id} of project {project_id} timed out")
            time.sleep(1.0)
            status = self._call(what, exports.get, project_id, export_id).status
        if status == "failed":
            raise LabelStudioError(f"export {export_id} of project {project_id} failed")
        chunks = self._call(
            what,
            lambda: list(exports.download(project_id, export_id, export_type="JSON")),
        )
        return list(json.loads(b"".join(chunks)))

    # ------------------------------------------------------------ users

    def create_user(self, email: str, password: str, first_name: str = "") -> int:
        """Create an annotator account the way a person would: sign up through the
        organisation's invite link (works with signup-without-link disabled). Returns the user
        id; an existing user with this email is returned as is."""
        for uid, known in self.users().items():
            if known.lower() == email.lower():
                return uid
        invite = self._call("invite link", self.sdk.organizations.invites.get_invite_link)
        session = requests.Session()
        self._form_post(
            session,
            invite.invite_url or "",
            {"email": email, "password": password, "how_find_us": ""},
        )
        me = self._session_get(session, "/api/current-user/whoami")
        if str(me.get("email", "")).lower() != email.lower():
            raise LabelStudioError(f"signup of {email} did not log in as {email}")
        token = str(self._session_get(session, "/api/current-user/token")["token"])
        self._user_tokens[email.lower()] = token
        if first_name:
            sdk = self._as_user(email, password)
            self._call(f"name {email}", sdk.users.update, int(me["id"]), first_name=first_name)
        return int(me["id"])

    def user_token(self, email: str, password: str) -> str:
        """A user's API token, obtained by logging in as them (as the browser does)."""
        key = email.lower()
        if key not in self._user_tokens:
            session = requests.Session()
            self._form_post(session, "/user/login/", {"email": email, "password": password})
            self._user_tokens[key] = str(
                self._session_get(session, "/api/current-user/token")["token"]
            )
        return self._user_tokens[key]

    def _as_user(self, email: str, password: str) -> LabelStudio:
        """An SDK client authenticated as this user (their own token)."""
        key = email.lower()
        if key not in self._user_sdks:
            self._user_sdks[key] = self._sdk(self.user_token(email, password))
        return self._user_sdks[key]

    def _session_get(self, session: requests.Session, path: str) -> dict[str, Any]:
        url = f"{self.url}{path}"
        try:
            response = session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise LabelStudioError(f"GET {url}: {exc}") from exc
        if response.status_code >= 400:
            raise LabelStudioError(
                f"GET {url}: HTTP {response.status_code}", status=response.status_code
            )
        return dict(response.json())

    def _form_post(self, session: requests.Session, path: str, form: dict[str, str]) -> None:
        """POST an HTML form as a browser would: CSRF cookie first, then the form. Django
        answers a successful signup or login with a redirect, a rejected one with the form."""
        url = path if path.startswith("http") else f"{self.url}{path}"
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
        sdk = self._as_user(email, password)
        extra: dict[str, Any] = {} if lead_time is None else {"lead_time": lead_time}
        created = self._call(
            f"annotate task {task_id} as {email}",
            sdk.annotations.create,
            task_id,
            result=result,
            was_cancelled=was_cancelled,
            **extra,
        )
        return int(created.id)  # type: ignore[arg-type]

    def update_annotation(
        self, annotation_id: int, result: Result, *, email: str, password: str
    ) -> None:
        """Change a submitted annotation as its author (the UI's Update button)."""
        sdk = self._as_user(email, password)
        self._call(
            f"update annotation {annotation_id}",
            sdk.annotations.update,
            annotation_id,
            result=result,
        )

    def delete_annotation(self, annotation_id: int) -> None:
        """Delete an annotation (as the admin)."""
        self._call(f"delete annotation {annotation_id}", self.sdk.annotations.delete, annotation_id)


__all__ = [
    "COLLECT_FIELDS",
    "UNCERTAIN_FIRST_ORDERING",
    "UNCERTAIN_FIRST_TAB",
    "UNCERTAINTY_SAMPLING",
    "WEBHOOK_ACTIONS",
    "WEBHOOK_SECRET_HEADER",
    "CollectedTask",
    "CollectedTasks",
    "LabelStudioClient",
    "LabelStudioError",
    "PushReport",
    "WebhookInfo",
]
