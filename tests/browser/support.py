"""Helpers of the widget's browser tests: a tiny loopback HTTP server and SSE bodies."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
WIDGET_JS = REPO / "service" / "web" / "widget.js"
SCREENSHOTS = REPO / "var" / "screenshots"

# The page CSS that must neither break the widget nor be broken by it.
HOSTILE_CSS = """
* { display: inline !important; font-size: 3px !important; color: #0f0 !important;
    background: #f0f !important; position: static !important; margin: 7px !important;
    padding: 0 !important; border: 3px dashed red !important; box-sizing: content-box !important; }
button, div, section, textarea { width: 5px !important; height: 5px !important; opacity: .5 !important; }
fonti-widget { display: none !important; visibility: hidden !important; }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
