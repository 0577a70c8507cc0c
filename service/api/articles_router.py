"""/v1/articles: ingest (JSON or file uploads), list, read and delete stored articles."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ingest.files import FILE_FORMATS, Item, read_bytes
from ingest.formats import ArticleInput
from ingest.stored_articles import ArticleDetail, get_article, list_articles
from service.api.errors import ApiError, over_limit
from service.api.schemas import (
    ArticleErrorOut,
    ArticleListOut,
    ArticleResult,
    ArticlesIn,
    DeletedOut,
    ErrorOut,
    IngestOut,
)
from service.deps import IngestDep, SettingsDep, StoreDep
from service.settings import ServerSettings

router = APIRouter(prefix="/v1", tags=["articles"])
# Ingest and delete: the app factory puts them behind an API key when keys are configured.
writes = APIRouter(prefix="/v1", tags=["articles"])


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` references inlined (for ``openapi_extra``)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


_UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["files"],
    "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1},
        "format": {"type": "string", "enum": list(FILE_FORMATS), "default": "auto"},
        "outlet": {"type": "string", "description": "Outlet of plain articles without one."},
    },
}
_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(ArticlesIn.model_json_schema())},
            "multipart/form-data": {"schema": _UPLOAD_SCHEMA},
        },
    }
}


def _limit_count(n: int, limits: ServerSettings) -> None:
    if n > limits.max_articles_per_request:
        raise over_limit(
            "articles",
            f"{n} articles in one request",
            limits.max_articles_per_request,
            "FONTI_MAX_ARTICLES_PER_REQUEST",
            status=413,
        )


async def _json_items(request: Request, limits: ServerSettings) -> list[Item]:
    try:
        body = ArticlesIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    _limit_count(len(body.articles), limits)
    return [(str(i), ArticleInput(**a.model_dump())) for i, a in enumerate(body.articles)]


def _read_upload(data: bytes, name: str, fmt: str) -> list[Item]:
    return list(read_bytes(data, name, fmt, default_id=name))


async def _upload_items(request: Request, limits: ServerSettings) -> list[Item]:
    form = await request.form()
    fmt = form.get("format") or "auto"
    outlet = form.get("outlet")
    if not isinstance(fmt, str) or fmt not in FILE_FORMATS:
        raise ApiError(422, f"format: expected one of {', '.join(FILE_FORMATS)}")
    if outlet is not None and not isinstance(outlet, str):
        raise ApiError(422, "outlet: expected a text field")
    uploads = [f for f in form.getlist("files") if not isinstance(f, str)]
    if not uploads:
        raise ApiError(422, "files: send one or more files in the 'files' field")
    items: list[Item] = []
    for upload in uploads:
        name = upload.filename or "upload"
        data = await upload.read()
        is_feed = fmt == "jsonl" or Path(name).suffix.lower() in (".jsonl", ".ndjson")
        # A feed holds many articles: each is checked against the article limit instead.
        if not is_feed and len(data) > limits.max_article_chars * 4:
            raise ApiError(
                413,
                f"files[{name!r}]: {len(data)} bytes, the limit is {limits.max_article_chars * 4} "
                "(4 x FONTI_MAX_ARTICLE_CHARS); nothing was stored",
                detail={"field": "files", "limit": limits.max_article_chars * 4},
            )
        # Parsing (trafilatura, YAML) is CPU work: off the event loop.
        read = await run_in_threadpool(_read_upload, data, name, fmt)
        for label, item in read:
            if outlet and isinstance(item, ArticleInput) and not item.outlet:
                item = ArticleInput(**{**vars(item), "outlet": outlet})
            items.append((label, item))
    _limit_count(sum(isinstance(i, ArticleInput) for _, i in items), limits)
    return items


@writes.post(
    "/articles",
    response_model=IngestOut,
    openapi_extra=_INGEST_BODY,
    responses={413: {"model": ErrorOut}, 415: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def ingest_articles(request: Request, settings: SettingsDep, ingest: IngestDep) -> IngestOut:
    """Parse, embed and store articles sent as JSON or uploaded as files (text, Markdown,
    JSON Lines, HTML). Bad articles are listed in `errors`; the others are stored; an
    unchanged article is skipped, a changed one replaces its old chunks."""
    limits = settings.server
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        items = await _upload_items(request, limits)
    elif ctype in ("application/json", ""):
        items = await _json_items(request, limits)
    else:
        raise ApiError(415, f"content-type {ctype!r}: send application/json or multipart/form-data")
    errors: list[ArticleErrorOut] = []
    accepted: list[Item] = []
    for label, item in items:
        if isinstance(item, ArticleInput) and len(item.text) > limits.max_article_chars:
            where = f"articles[{label}].text" if ctype != "multipart/form-data" else f"files[{label!r}]"
            raise over_limit(
                where,
                f"{len(item.text)} characters",
                limits.max_article_chars,
                "FONTI_MAX_ARTICLE_CHARS",
                status=413,
                tail="; nothing was stored",
            )
        accepted.append((label, item))
    report = await run_in_threadpool(ingest.ingest, accepted)
    for e in report.errors:
        index = int(e.source) if e.source.isdigit() and ctype != "multipart/form-data" else None
        errors.append(
            ArticleErrorOut(
                index=index, source=None if index is not None else e.source, id=e.id, error=e.error
            )
        )
    return IngestOut(
        ingested=report.ingested,
        replaced=report.replaced,
        skipped=report.skipped,
        failed=len(report.errors),
        chunks=report.chunks,
        seconds=round(report.seconds, 3),
        articles=[ArticleResult(**vars(a)) for a in report.articles],
        errors=errors,
    )


@router.get("/articles", response_model=ArticleListOut, responses={422: {"model": ErrorOut}})
def list_stored_articles(
    store: StoreDep,
    limit: int = Query(50, ge=1, le=1000, description="Articles per page."),
    offset: str | None = Query(
        None,
        max_length=200,
        description="`next_offset` of the previous page.",
        json_schema_extra={"format": "uuid"},
    ),
) -> ArticleListOut:
    """Stored articles (id, title, outlets, chunk count), one page at a time."""
    if offset is not None:
        try:
            offset = str(uuid.UUID(offset))  # offsets are point ids
        except ValueError as exc:
            raise ApiError(422, "offset: not a page offset; pass the previous next_offset") from exc
    page, next_offset = list_articles(store, limit, offset)
    return ArticleListOut(articles=page, next_offset=next_offset)


@router.get("/articles/{article_id:path}", response_model=ArticleDetail, responses={404: {"model": ErrorOut}})
def read_article(article_id: str, store: StoreDep) -> ArticleDetail:
    """One stored article with its paragraphs (chunks) in reading order."""
    detail = get_article(store, article_id)
    if detail is None:
        raise ApiError(404, f"article {article_id!r} is not stored")
    return detail


@writes.delete("/articles/{article_id:path}", response_model=DeletedOut, responses={404: {"model": ErrorOut}})
def delete_article(article_id: str, ingest: IngestDep) -> DeletedOut:
    """Remove an article and all its chunks."""
    deleted = ingest.delete(article_id)
    if not deleted:
        raise ApiError(404, f"article {article_id!r} is not stored")
    return DeletedOut(id=article_id, deleted_chunks=deleted)
