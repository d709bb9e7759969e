"""What a failed run tells its operator: which service is down (and the setting that names its
URL), the stage it stopped at, and a run report of what was done and what was not."""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from schemas.settings import Settings

# (stage in the report, the function whose frame in a traceback means that stage), in run order
STAGES = (
    ("lease", "hold_store"),
    ("discover", "discover"),
    ("ingest", "ingest_batch"),
    ("annotate", "annotate_batch"),
    ("push", "push_review"),
    ("collect", "collect_review"),
    ("adjudicate", "adjudicate_all"),
    ("disputes", "push_adjudication"),
    ("publish", "publish_release"),
    ("report", "write_run_report"),
)
REVIEW_STAGES = ("lease", "collect", "adjudicate", "disputes", "publish", "report")


@dataclass(frozen=True)
class Service:
    name: str  # "Label Studio", "S3"
    setting: str  # the variable that names its URL
    url: str


class ServiceDown(RuntimeError):
    """A run stopped because a service failed after the tasks' retries; `line` is the one line
    the CLI prints."""

    def __init__(self, line: str, report: dict[str, Any]) -> None:
        super().__init__(line)
        self.line = line
        self.report = report


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def service_of(exc: BaseException, settings: Settings | None = None) -> Service | None:
    """The service a failure comes from, or None when it is not a service's (a bug, bad input)."""
    import botocore.exceptions as boto

    from review.client import LabelStudioError

    for e in _chain(exc):
        if isinstance(e, LabelStudioError):
            url = (settings.label_studio_url if settings else None) or "(unset)"
            return Service("Label Studio", "LABEL_STUDIO_URL", url)
        is_5xx = (
            isinstance(e, boto.ClientError)
            and int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0) >= 500
        )
        if is_5xx or isinstance(
            e,
            boto.EndpointConnectionError
            | boto.ConnectionClosedError
            | boto.ReadTimeoutError
            | boto.ConnectTimeoutError
            | boto.ResponseStreamingError,
        ):
            endpoint = (settings.aws_endpoint_url if settings else None) or "the AWS default"
            store = f" (store {settings.store})" if settings else ""
            return Service("S3", "AWS_ENDPOINT_URL", f"{endpoint}{store}")
    return None


def stage_of(exc: BaseException, stages: tuple[str, ...] | None = None) -> str:
    """The innermost stage function in the failure's traceback(s); for a step the flow takes
    between stages (the lease check before the push and before the publish), the stage it
    guards: the first stage its function calls after the failing line."""
    names = {fn: stage for stage, fn in STAGES if stages is None or stage in stages}
    chain = list(reversed(list(_chain(exc))))  # the original error's frames are the innermost
    for e in chain:
        found = "unknown"
        tb: TracebackType | None = e.__traceback__
        while tb is not None:
            stage = names.get(tb.tb_frame.f_code.co_name)
            if stage is not None:
                found = stage
            tb = tb.tb_next
        if found != "unknown":
            return found
    for e in chain:
        guarded = _guarded_stage(e.__traceback__, names)
        if guarded is not None:
            return guarded
    return "unknown"


def _guarded_stage(tb: TracebackType | None, names: dict[str, str]) -> str | None:
    """The stage called next, after the failing line, by the innermost flow function (of
    flows/pipeline.py) in the traceback."""
    frame = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(("flows/pipeline.py", "flows\\pipeline.py")):
            frame = (tb.tb_frame.f_code, tb.tb_lineno)
        tb = tb.tb_next
    if frame is None:
        return None
    code, lineno = frame
    try:
        lines, first = inspect.getsourcelines(code)
    except (OSError, TypeError):
        return None
    calls = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\(")
    for line in lines[lineno - first + 1 :]:
        called = calls.search(line)
        if called:
            return names[called[1]]
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def record_failure(
    settings: Settings, run_id: str, exc: BaseException, base: dict[str, Any], *, review: bool
) -> ServiceDown | None:
    """Write the failed run's report (`runs/<run_id>.json` in the store, or in the work folder
    when the store itself is down); the ServiceDown the flow should raise for a service's
    failure, None for any other (a bug keeps its own traceback)."""
    from flows.tasks import store_for, write_run_report

    order = REVIEW_STAGES if review else tuple(s for s, _ in STAGES)
    stage = stage_of(exc, order)
    service = service_of(exc, settings)
    done = list(order[: order.index(stage)]) if stage in order else []
    error: dict[str, Any] = {"stage": stage, "error": f"{type(exc).__name__}: {first_line(exc)}"}
    if service is not None:
        error.update(service=service.name, setting=service.setting, url=service.url)
    report = {
        **base,
        "run_id": run_id,
        "store": settings.store,
        "status": "failed",
        "failed": error,
        "done": done,
        "not_done": [s for s in order if s not in done],
    }
    try:
        key = write_run_report(store_for(settings), run_id, report)
        where = f"{settings.store.rstrip('/')}/{key}"
    except Exception:  # noqa: BLE001 - the store is down too: keep the report on this machine
        path = Path(settings.work_dir) / "runs" / f"{run_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, sort_keys=True), encoding="utf-8")
        where = str(path)
    report["report_at"] = where
    if service is None:
        return None
    line = (
        f"corpusflow run: {service.name} is down or refusing ({service.setting}={service.url}): "
        f"{first_line(exc)}; stopped at stage '{stage}' after the retries; nothing after it ran; "
        f"run report {where}"
    )
    return ServiceDown(" ".join(line.split()), report)


class QuietServiceTracebacks(logging.Filter):
    """Drops the traceback (keeps the message) of console log records about a service's
    failure: the CLI says what failed in one line; Prefect's API log keeps the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (isinstance(exc, ServiceDown) or service_of(exc) is not None):
            record.exc_info = None
            record.exc_text = None
        return True
