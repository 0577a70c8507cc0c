"""POST /v1/articles: ingest articles sent as JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ingest.formats import ArticleInput
from service.api.errors import ApiError
from service.api.schemas import ArticleErrorOut, ArticleResult, ArticlesIn, ErrorOut, IngestOut

router = APIRouter(prefix="/v1", tags=["articles"])


@router.post(
    "/articles", response_model=IngestOut, responses={413: {"model": ErrorOut}, 422: {"model": ErrorOut}}
)
def ingest_articles(body: ArticlesIn, request: Request) -> IngestOut:
    """Parse, embed and store articles. Bad articles are listed in `errors`; the others are stored."""
    limits = request.app.state.settings.server
    if len(body.articles) > limits.max_articles_per_request:
        raise ApiError(
            413,
            f"articles: {len(body.articles)} articles in one request, the limit is "
            f"{limits.max_articles_per_request} (FONTI_MAX_ARTICLES_PER_REQUEST)",
        )
    errors: list[ArticleErrorOut] = []
    items = []
    for i, a in enumerate(body.articles):
        if len(a.text) > limits.max_article_chars:
            errors.append(
                ArticleErrorOut(
                    index=i,
                    id=a.id,
                    error=f"text: {len(a.text)} characters, the limit is {limits.max_article_chars}",
                )
            )
            continue
        items.append((str(i), ArticleInput(**a.model_dump())))
    report = request.app.state.ingest.ingest(items)
    errors += [ArticleErrorOut(index=int(e.source), id=e.id, error=e.error) for e in report.errors]
    return IngestOut(
        ingested=report.ingested,
        skipped=report.skipped,
        chunks=report.chunks,
        articles=[ArticleResult(**vars(a)) for a in report.articles],
        errors=sorted(errors, key=lambda e: e.index),
    )
