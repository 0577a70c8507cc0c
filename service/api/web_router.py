"""GET /widget.js (the embeddable chat widget) and GET / (a demo intranet page that embeds it)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

router = APIRouter(tags=["widget"])

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# Intranet pages fetch the script on every view: a short lifetime lets a new release
# reach them within minutes, and the ETag turns later checks into 304s.
WIDGET_CACHE_CONTROL = "public, max-age=600"


@lru_cache(maxsize=4)
def _asset(name: str) -> tuple[bytes, str]:
    body = (WEB_DIR / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def _etag_matches(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match", "")
    return any(tag.strip().removeprefix("W/") == etag for tag in sent.split(",")) or sent.strip() == "*"


@router.api_route("/widget.js", methods=["GET", "HEAD"], include_in_schema=False)
def widget_js(request: Request) -> Response:
    """The chat widget: one self-contained script, embedded with a single ``<script>`` tag."""
    body, etag = _asset("widget.js")
    headers = {
        "Cache-Control": WIDGET_CACHE_CONTROL,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        # Intranet pages on other origins load it with a plain <script> tag; this also lets
        # pages that add crossorigin/SRI attributes load it.
        "Access-Control-Allow-Origin": "*",
    }
    if _etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def demo_page() -> HTMLResponse:
    """A sample intranet page with the widget's script tag, to try Fonti in a browser."""
    body, _ = _asset("demo.html")
    return HTMLResponse(body, headers={"Cache-Control": "no-cache"})
