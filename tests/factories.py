"""Helpers shared by the test tiers: paths, settings, the dev data, live servers, browser pages.

Test modules import helpers from here (or use the fixtures of the conftest files), never
from one another. Nothing here loads a model at import time.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from service.settings import Settings, StoreSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.backends.embedder import Embedder
    from service.backends.store import VectorStore

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SAMPLE = REPO / "data" / "sample"
DEV_DATA = Path(os.environ.get("FONTI_DEV_DATA", REPO.parent / "shared" / "data" / "dev"))
DEV_ARTICLES = DEV_DATA / "articles"
DEV_QUESTIONS = DEV_DATA / "questions.jsonl"
# Where CI=true turns a skip for missing shared data into a failure (see tests/conftest.py).
MISSING_DATA = "shared dev data missing"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(what: str) -> None:
    """Skip the test for a missing prerequisite; under CI=true fail it instead."""
    if in_ci():
        pytest.fail(f"{what} (CI=true: nothing may be skipped for want of it)")
    pytest.skip(what)


def dev_data(path: Path = DEV_ARTICLES) -> Path:
    """``path`` under the shared dev data, or skip (CI: fail) when it is not there."""
    if not path.exists():
        missing(f"{MISSING_DATA}: {path} (set FONTI_DEV_DATA)")
    return path


def dev_article_bodies() -> list[dict[str, str]]:
    """The dev articles as POST /v1/articles items, ids = file names."""
    folder = dev_data(DEV_ARTICLES)
    return [{"id": f.name, "text": f.read_text("utf-8")} for f in sorted(folder.glob("*.txt"))]


def dev_question(qid: str) -> dict[str, Any]:
    """One dev question by id (question, lang, kind, must_mention, gold_outlets, ...)."""
    for line in dev_data(DEV_QUESTIONS).read_text("utf-8").splitlines():
        if line.strip() and (q := json.loads(line))["id"] == qid:
            return q
    raise KeyError(qid)


def dev_bodies(names: list[str]) -> list[dict[str, str]]:
    """Some dev articles by file name, as POST /v1/articles items."""
    folder = dev_data(DEV_ARTICLES)
    return [{"id": n, "text": (folder / n).read_text("utf-8")} for n in names]


@functools.cache
def default_embedder() -> Embedder:
    """The default embedder (what `fonti ingest` uses), loaded once per test process: to open the
    stores that a CLI process under test wrote."""
    from service.backends.embedder import build_embedder
    from service.settings import EmbedSettings

    return build_embedder(EmbedSettings(threads=1))


def open_store(path: Path) -> VectorStore:
    """The store in the folder ``path`` (through the one factory), opened with the default
    embedder's name and size."""
    from service.backends.store import build_store

    e = default_embedder()
    return build_store(StoreSettings(path=path), e.dim, e.name)


def make_settings(store_path: Path, **overrides: object) -> Settings:
    """Settings for a test: the environment's defaults with a private store folder."""
    return Settings(store=StoreSettings(path=store_path), **overrides)  # type: ignore[arg-type]


def always_answering_calibration(folder: Path) -> Path:
    """The shipped calibration with its answer threshold at 0: the model always writes an answer.

    For tests of mechanics around a generation (queues, deadlines, streams), which need the
    model to write and must not depend on the calibrated decision to abstain."""
    from service.pipeline.calibration import CALIBRATION_FILE

    data = json.loads(CALIBRATION_FILE.read_text("utf-8"))
    data["answer_threshold"] = 0.0
    path = folder / "calibration-always-answer.json"
    path.write_text(json.dumps(data), "utf-8")
    return path


MARKER = re.compile(r"\[(\d+)\]")


def check_citation_invariants(body: dict) -> None:
    """Every marker resolves to a citation and every citation is cited; abstentions cite nothing."""
    ids = [c["id"] for c in body["citations"]]
    used = {int(n) for n in MARKER.findall(body["answer"])}
    if body["abstained"]:
        assert ids == [] and used == set()
        return
    assert ids == list(range(1, len(ids) + 1))
    assert used == set(ids), (used, ids, body["answer"])
    for c in body["citations"]:
        assert c["outlet"] and c["article_id"] and c["title"] and c["quote"]


# -- live servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(
    settings: Settings, articles: list[dict] | None = None, headers: dict[str, str] | None = None
) -> Iterator[tuple[str, FastAPI]]:
    """``(base url, app)`` of a real uvicorn on a loopback port, in a thread of the test process (so
    tests can read app.state); ``articles`` are ingested through the API first (with ``headers``,
    e.g. an API key)."""
    import httpx
    import uvicorn

    from service.app import create_app

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


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``condition()`` until true; returns the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


# -- browser pages --------------------------------------------------------------------------------

WIDGET_JS = REPO / "service" / "web" / "widget.js"
SCREENSHOTS = REPO / "var" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# The page CSS that must neither break the widget nor be broken by it.
HOSTILE_CSS = """
* { display: inline !important; font-size: 3px !important; color: #0f0 !important;
    background: #f0f !important; position: static !important; margin: 7px !important;
    padding: 0 !important; border: 3px dashed red !important; box-sizing: content-box !important; }
button, div, section, textarea { width: 5px !important; height: 5px !important; opacity: .5 !important; }
fonti-widget { display: none !important; visibility: hidden !important; }
"""


def sse(*events: tuple[str, Any]) -> str:
    """A server-sent events body from ``(event, data)`` pairs, as /v1/ask writes it."""
    return "".join(f"event: {e}\ndata: {json.dumps(d, ensure_ascii=False)}\n\n" for e, d in events)


def host_page(script_attrs: str, head: str = "", body: str = "", lang: str = "it") -> str:
    """An intranet-like page that embeds the widget with ``<script {script_attrs} defer>``."""
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Intranet</title>{head}</head><body><h1>Intranet di redazione</h1>"
        f"<p>Notizie interne.</p><button id=page-button>Pagina</button>{body}"
        f"<script {script_attrs} defer></script></body></html>"
    )


Handler = Callable[[BaseHTTPRequestHandler, bytes], None]


class Loopback:
    """A threaded HTTP server on 127.0.0.1 serving fixed pages and scripted handlers."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.port = free_port()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                outer.requests.append((method, path, dict(self.headers.items()), body))
                handler = outer.handlers.get((method, path))
                if handler:
                    handler(self, body)
                    return
                if method == "GET" and path in outer.pages:
                    ctype, content = outer.pages[path]
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                    return
                self.send_error(404)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_OPTIONS(self) -> None:
                self._serve("OPTIONS")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def page(self, path: str, html: str, ctype: str = "text/html; charset=utf-8") -> None:
        self.pages[path] = (ctype, html.encode("utf-8"))

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
