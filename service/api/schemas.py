"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from these).

Stored articles are listed and read as :mod:`ingest.stored_articles` returns them
(``ArticleSummary``, ``ArticleDetail``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ingest.stored_articles import ArticleSummary

# Whitespace as the OpenAPI schema's regex dialect (ECMA-262 "\s") sees it: a question made of
# these is blank (422); anything else, even other control characters, is a question.
SPACES = "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    map(chr, range(0x2000, 0x200B))
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArticleIn(_Strict):
    id: str | None = Field(
        None, max_length=2000, description="Article id; default: url, else a content hash."
    )
    text: str = Field(..., description="Raw article content (the file's text).")
    format: Literal["auto", "aggregator", "plain"] = Field("auto", description="How to parse `text`.")
    title: str | None = Field(None, max_length=2000)
    outlet: str | None = Field(None, max_length=200, description="Outlet of a plain article.")
    url: str | None = Field(None, max_length=4000)
    published: str | None = Field(None, max_length=64, description="Publication date (ISO 8601).")
    topic: str | None = Field(None, max_length=200)


class ArticlesIn(_Strict):
    articles: list[ArticleIn] = Field(..., min_length=1)


class ArticleResult(BaseModel):
    id: str
    chunks: int
    status: Literal["ingested", "replaced", "skipped"] = Field(
        ..., description="ingested: new; replaced: its old chunks were replaced; skipped: unchanged."
    )
    outlets: list[str]
    source: str = Field("", description="Where it came from: request index, file name, file:line.")
    warnings: list[str] = []


class ArticleErrorOut(BaseModel):
    index: int | None = Field(None, description="Position of the article in a JSON request.")
    source: str | None = Field(None, description="Uploaded file (and line of a JSON Lines feed).")
    id: str | None = None
    error: str


class IngestOut(BaseModel):
    ingested: int
    replaced: int
    skipped: int
    failed: int
    chunks: int = Field(..., description="Chunks embedded and written by this request.")
    seconds: float
    articles: list[ArticleResult]
    errors: list[ArticleErrorOut]


class ArticleListOut(BaseModel):
    articles: list[ArticleSummary]
    next_offset: str | None = Field(None, description="Pass as `offset` for the next page; null at the end.")


class DeletedOut(BaseModel):
    id: str
    deleted_chunks: int


class Filters(_Strict):
    """Restrict retrieval; unknown keys are a 422. Every given condition must hold."""

    outlets: list[str] | None = Field(None, max_length=100, description="Only these outlets.")
    exclude_outlets: list[str] | None = Field(None, max_length=100, description="Never these outlets.")
    topics: list[str] | None = Field(
        None, max_length=100, description="Only articles with one of these topics."
    )
    article_ids: list[str] | None = Field(None, max_length=1000, description="Only these articles.")
    published_from: dt.date | None = Field(None, description="Published on or after this date (ISO).")
    published_to: dt.date | None = Field(None, description="Published on or before this date (ISO).")

    @field_validator("published_from", "published_to", mode="before")
    @classmethod
    def _date_text(cls, value: Any) -> Any:
        # JSON has no date type: only "YYYY-MM-DD" text (pydantic would also take a number).
        if value is not None and not isinstance(value, str | dt.date):
            raise ValueError("expected a date as text, YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> Filters:
        if self.published_from and self.published_to and self.published_from > self.published_to:
            raise ValueError("published_from is after published_to")
        return self

    def where(self) -> dict[str, Any]:
        """The vector store's condition dict (see ``QdrantStore._filter``)."""
        where: dict[str, Any] = {}
        if self.outlets:
            where["outlet"] = self.outlets
        if self.exclude_outlets:
            where["!outlet"] = self.exclude_outlets
        if self.topics:
            where["topic"] = self.topics
        if self.article_ids:
            where["article_id"] = self.article_ids
        if self.published_from:
            where["published>="] = self.published_from.isoformat()
        if self.published_to:  # the whole end day counts
            where["published<"] = (self.published_to + dt.timedelta(days=1)).isoformat()
        return where


class SearchIn(_Strict):
    query: str = Field(..., min_length=1)
    top_k: int = Field(5, ge=1, le=50)
    filters: Filters | None = None


class SearchHit(BaseModel):
    chunk_id: str
    article_id: str
    article_ids: list[str]
    outlet: str
    title: str
    text: str
    url: str | None = None
    score: float = Field(..., description="Fused (reciprocal rank) score; higher is better.")
    dense_score: float = Field(..., description="Cosine similarity of query and chunk.")


class SearchOut(BaseModel):
    results: list[SearchHit]


class HistoryTurn(_Strict):
    role: Literal["user", "assistant"] = Field(..., description="Who said it.")
    content: str = Field(..., min_length=1, max_length=20_000, description="What was said.")


class AskIn(_Strict):
    question: str = Field(..., min_length=1)
    top_k: int | None = Field(None, ge=1, le=20, description="Passages handed to the model.")
    stream: bool = Field(
        False, strict=True, description="Answer as server-sent events (token, citation, done, error)."
    )
    filters: Filters | None = Field(None, description="Answer only from passages that match these.")
    history: list[HistoryTurn] | None = Field(
        None,
        description="Earlier messages of the conversation, oldest first, for a follow-up question "
        "(at most FONTI_MAX_HISTORY_TURNS).",
    )


class CitationOut(BaseModel):
    id: int = Field(..., description="The marker number used in the answer text: [id].")
    outlet: str
    article_id: str
    article_ids: list[str] = Field(..., description="Every article that carries this passage.")
    title: str
    url: str | None = None
    quote: str
    score: float


class SentenceOut(BaseModel):
    text: str = Field(
        ..., description="One sentence of `answer`, markers included; every one passed verification."
    )
    citations: list[int] = Field(..., description="Citation ids its markers name.")


class AskOut(BaseModel):
    question: str
    answer: str
    language: str
    abstained: bool
    citations: list[CitationOut]
    sentences: list[SentenceOut] = Field(
        ..., description="The answer sentence by sentence with its citations; empty when abstained."
    )
    timings: dict[str, float]
    standalone_question: str | None = Field(
        None, description="The follow-up rewritten to stand alone (when history was given)."
    )
    trace: dict[str, Any] | None = Field(
        None,
        description="Only with FONTI_ANSWER_TRACE: evidence probabilities, the decision, and every "
        "generated sentence with the check it failed (for evaluation, never for readers).",
    )


class ErrorOut(BaseModel):
    error: str
    detail: object | None = None
