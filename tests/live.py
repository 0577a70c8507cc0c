"""A real uvicorn on a loopback port, in a thread of the test process (so tests can read app.state)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(
    settings: Settings, articles: list[dict] | None = None, headers: dict[str, str] | None = None
) -> Iterator[tuple[str, FastAPI]]:
    """``(base url, app)`` of a started server; ``articles`` are ingested through the API first
    (with ``headers``, e.g. an API key)."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.1)
        if articles:
            r = httpx.post(url + "/v1/articles", json={"articles": articles}, headers=headers, timeout=600)
            assert r.status_code == 200, r.text
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def wait_until(condition, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    """Poll ``condition()`` until true; returns the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start
