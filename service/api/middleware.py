"""ASGI middleware: request ids and access logs; request body size, content type and encoding.

Both are plain ASGI (not ``BaseHTTPMiddleware``) so streaming answers and client
disconnects pass through untouched.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.schemas import ErrorOut
from service.logs import request_id_var

access_log = logging.getLogger("fonti.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")

BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body is not UTF-8 (JSON bodies must be)."},
    413: {"model": ErrorOut, "description": "The body (or an article) is larger than the limit."},
    415: {"model": ErrorOut, "description": "Unsupported content type."},
}


class RequestContextMiddleware:
    """Takes ``X-Request-ID`` (or makes one), returns it, and logs one access line per request.

    The line (logger ``fonti.access``, INFO) has ``method``, ``path``, ``status``,
    ``latency_ms`` and ``request_id``; never headers, query strings or bodies, so neither
    API keys nor question text reach the log.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            status = status or 500
            raise
        finally:
            access_log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            request_id_var.reset(token)


async def _reject(
    scope: Scope, receive: Receive, send: Send, status: int, message: str, **detail: Any
) -> None:
    await JSONResponse({"error": message, "detail": detail or None}, status_code=status)(scope, receive, send)


class BodyGuardMiddleware:
    """Bounds request bodies before any route reads them.

    - more than ``max_bytes`` (by Content-Length, or counted while reading): 413;
    - a content type other than JSON (or multipart/form-data on ``multipart_paths``): 415;
    - a JSON body that is not UTF-8: 400 naming the first bad byte.
    The body is read once, bounded, and replayed to the app; later ``receive`` calls go
    to the server, so disconnects are still seen.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, multipart_paths: tuple[str, ...] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.multipart_paths = multipart_paths

    def _too_large(self, size: int | str) -> str:
        return f"body: {size} bytes, the limit is {self.max_bytes} bytes (FONTI_MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":  # the API takes bodies on POST only
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await _reject(scope, receive, send, 413, self._too_large(length), limit=self.max_bytes)
            return
        media, _, params = headers.get("content-type", "").partition(";")
        media = media.strip().lower()
        multipart_ok = scope["path"] in self.multipart_paths
        is_json = media in ("", "application/json") or (
            media.startswith("application/") and media.endswith("+json")
        )
        if not is_json and not (multipart_ok and media == "multipart/form-data"):
            accepted = "application/json" + (" or multipart/form-data" if multipart_ok else "")
            await _reject(scope, receive, send, 415, f"content-type {media!r}: send {accepted}")
            return
        charset = re.search(r"charset\s*=\s*\"?([\w.-]+)", params, re.IGNORECASE)
        if is_json and charset and charset.group(1).lower() not in ("utf-8", "utf8"):
            await _reject(scope, receive, send, 415, f"charset {charset.group(1)!r}: send UTF-8 JSON")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _reject(
                    scope,
                    receive,
                    send,
                    413,
                    self._too_large(f"more than {self.max_bytes}"),
                    limit=self.max_bytes,
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if is_json:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await _reject(
                    scope,
                    receive,
                    send,
                    400,
                    f"body: not valid UTF-8 (byte {body[exc.start]:#04x} at offset {exc.start}); "
                    "send UTF-8 JSON",
                )
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
