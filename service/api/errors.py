"""Uniform JSON errors: every 4xx names the problem; an LLM or a store that cannot answer is a 503."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.backends.llm import LLMUnavailableError
from service.backends.store import StoreError


class ApiError(Exception):
    """Raised by routes for a client error with a message that names the problem."""

    def __init__(self, status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers


def over_limit(
    field: str, amount: str, limit: int, setting: str, status: int = 422, tail: str = ""
) -> ApiError:
    """The error for a configured limit: names the field, the limit and its setting; ``detail`` holds both."""
    return ApiError(
        status,
        f"{field}: {amount}, the limit is {limit} ({setting}){tail}",
        detail={"field": field, "limit": limit},
    )


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """JSON bodies of the form ``{"error": "...", "detail": ...}`` for client errors and outages."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.message, "detail": exc.detail}, status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        return JSONResponse({"error": _describe(errors), "detail": errors}, status_code=422)

    @app.exception_handler(LLMUnavailableError)
    async def _llm_down(_: Request, exc: LLMUnavailableError) -> JSONResponse:
        return JSONResponse({"error": f"llm: {exc}", "detail": None}, status_code=503)

    @app.exception_handler(StoreError)
    async def _store_down(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"error": f"store: {exc}", "detail": None}, status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail), "detail": None}, status_code=exc.status_code, headers=exc.headers
        )
