"""A small webhook receiver for Label Studio: annotation created, updated or deleted -> (after
a quiet moment) one run of the collect-and-adjudicate flow (`flows.pipeline.review_cycle`)
through its Prefect deployment.

    python -m flows.webhook --port 8787 --secret "$CORPUSFLOW_WEBHOOK_SECRET"

Label Studio is told where to call with `LabelStudioClient.register_webhook(project, url,
secret)`; it sends the secret in the X-Corpusflow-Secret header. A burst of annotations (an
annotator working through tasks) starts one run, `debounce` seconds after its first event; events
arriving while that run is being started start another after the next quiet window."""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from review.client import WEBHOOK_ACTIONS, WEBHOOK_SECRET_HEADER

log = logging.getLogger("corpusflow.webhook")

DEFAULT_DEPLOYMENT = "corpusflow-review/review"  # flows.pipeline.review_cycle
MAX_BODY = 10 * 1024 * 1024  # Label Studio sends whole annotations; anything bigger is not it


def prefect_trigger(deployment: str = DEFAULT_DEPLOYMENT) -> Callable[[], object]:
    """A trigger that starts a run of the Prefect `deployment` and returns without waiting
    for it (timeout=0). Needs PREFECT_API_URL pointing at a Prefect server with a worker."""

    def trigger() -> object:
        from prefect.deployments import run_deployment

        return run_deployment(name=deployment, timeout=0)

    return trigger


class WebhookReceiver:
    """The receiver's logic, apart from HTTP: check the secret and the action, then debounce
    into calls of `trigger` (injected: tests pass a plain function, production a Prefect
    deployment run)."""

    def __init__(
        self,
        trigger: Callable[[], object],
        secret: str,
        *,
        debounce: float = 30.0,
        header: str = WEBHOOK_SECRET_HEADER,
        actions: Iterable[str] = WEBHOOK_ACTIONS,
        projects: Iterable[int] | None = None,
    ) -> None:
        if not secret:
            raise ValueError("a webhook receiver needs a non-empty shared secret")
        self.trigger = trigger
        self.secret = secret
        self.debounce = debounce
        self.header = header
        self.actions = frozenset(actions)
        self.projects = None if projects is None else frozenset(projects)
        self.events = 0  # accepted events
        self.runs = 0  # trigger calls that returned
        self.failures = 0  # trigger calls that raised
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """One webhook call -> (HTTP status, JSON answer)."""
        given = next((v for k, v in headers.items() if k.lower() == self.header.lower()), "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return 403, {"error": "bad or missing secret"}
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return 400, {"error": "body is not JSON"}
        if not isinstance(payload, dict):
            return 400, {"error": "body is not a JSON object"}
        action = payload.get("action")
        if action not in self.actions:
            return 200, {"ignored": f"action {action!r}"}
        project = (payload.get("project") or {}).get("id")
        if self.projects is not None and project not in self.projects:
            return 200, {"ignored": f"project {project!r}"}
        with self._lock:
            self.events += 1
            scheduled = self._timer is None
            if scheduled:
                timer = threading.Timer(self.debounce, lambda: self._fire(timer))
                timer.daemon = True
                self._timer = timer
                timer.start()
        return 202, {"accepted": action, "scheduled": scheduled}

    def _fire(self, timer: threading.Timer | None) -> None:
        with self._lock:
            if timer is not None and self._timer is not timer:
                return  # flushed or closed meanwhile
            self._timer = None  # events from now on schedule the next run
        try:
            self.trigger()
        except Exception:  # a failed start must not stop the receiver; the schedule remains
            self.failures += 1
            log.exception("starting the collect-and-adjudicate run failed")
        else:
            self.runs += 1

    def flush(self) -> None:
        """Run a pending trigger now (at shutdown, so no accepted event is lost)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            self._fire(None)

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


def make_server(
    receiver: WebhookReceiver, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """An HTTP server answering POSTs (any path) with `receiver`; port 0 picks a free one
    (see `server.server_address`). Run it with `serve_forever()`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, {"error": "body too large"})
                return
            status, answer = receiver.handle(dict(self.headers.items()), self.rfile.read(length))
            self._answer(status, answer)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(200, {"events": receiver.events, "runs": receiver.runs})

        def _answer(self, status: int, answer: dict[str, Any]) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.info("%s " + format, self.address_string(), *args)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument(
        "--secret",
        default=os.environ.get("CORPUSFLOW_WEBHOOK_SECRET", ""),
        help="shared secret (default: $CORPUSFLOW_WEBHOOK_SECRET)",
    )
    parser.add_argument("--deployment", default=DEFAULT_DEPLOYMENT)
    parser.add_argument("--debounce", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    receiver = WebhookReceiver(
        prefect_trigger(args.deployment), args.secret, debounce=args.debounce
    )
    server = make_server(receiver, args.host, args.port)
    log.info("listening on http://%s:%d", *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        receiver.flush()


if __name__ == "__main__":
    main()
