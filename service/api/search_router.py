"""POST /v1/search: the passages retrieval finds for a query."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.errors import ApiError, over_limit
from service.api.schemas import SPACES, ErrorOut, SearchHit, SearchIn, SearchOut
from service.deps import RetrieverDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["search"])


@router.post("/search", response_model=SearchOut, responses={422: {"model": ErrorOut}})
def search(body: SearchIn, settings: SettingsDep, retriever: RetrieverDep) -> SearchOut:
    """Hybrid (dense + lexical) search with duplicate collapsing."""
    limits = settings.server
    if not body.query.strip(SPACES):
        raise ApiError(422, "query: must not be blank")
    if len(body.query) > limits.max_question_chars:
        raise over_limit(
            "query", f"{len(body.query)} characters", limits.max_question_chars, "FONTI_MAX_QUESTION_CHARS"
        )
    if body.top_k > limits.max_search_top_k:
        raise over_limit("top_k", str(body.top_k), limits.max_search_top_k, "FONTI_MAX_SEARCH_TOP_K")
    candidates = max(settings.retrieval.candidates, body.top_k * 3)
    where = body.filters.where() if body.filters else None
    passages = retriever.search(body.query, body.top_k, candidates=candidates, where=where)
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
