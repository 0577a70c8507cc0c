"""POST /v1/search: the passages retrieval finds for a query."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.schemas import ErrorOut, SearchHit, SearchIn, SearchOut

router = APIRouter(prefix="/v1", tags=["search"])


@router.post("/search", response_model=SearchOut, responses={422: {"model": ErrorOut}})
def search(body: SearchIn, request: Request) -> SearchOut:
    """Hybrid (dense + lexical) search with duplicate collapsing."""
    candidates = max(request.app.state.settings.retrieval.candidates, body.top_k * 3)
    where = body.filters.where() if body.filters else None
    passages = request.app.state.retriever.search(body.query, body.top_k, candidates=candidates, where=where)
    return SearchOut(
        results=[
            SearchHit(
                chunk_id=p.chunk_id,
                article_id=p.article_id,
                article_ids=p.article_ids,
                outlet=p.outlet,
                title=p.title,
                text=p.text,
                url=p.url,
                score=p.score,
                dense_score=p.dense_score,
            )
            for p in passages
        ]
    )
