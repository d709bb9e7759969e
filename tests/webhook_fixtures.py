"""A webhook receiver on a free port with a counting trigger (no Prefect server), for tests
that check Label Studio calls it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from flows.webhook import WebhookReceiver, make_server

SECRET = "s3cret-" + uuid.uuid4().hex


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.fired = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.fired.set()


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, Calls, str]]:
    calls = Calls()
    hook = WebhookReceiver(calls, SECRET, debounce=0.5)
    server = make_server(hook, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    assert isinstance(host, str)  # an AF_INET server's bound address
    try:
        yield hook, calls, f"http://{host}:{port}/hooks/labelstudio"
    finally:
        server.shutdown()
        server.server_close()
        hook.close()
