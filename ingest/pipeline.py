"""The ingest service: parse → chunk → embed (dense + lexical) → store, idempotently.

An article whose stored chunks already carry its content hash is skipped without
re-embedding. A changed article is written first and its stale chunks deleted after,
so a crash in between leaves at worst extra chunks that the next run removes; it
never loses the article.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.chunking import chunk_article, dense_text, lexical_text
from ingest.formats import ArticleInput, clean_text, parse_article
from ingest.model import Article, ArticleFormatError, Chunk
from service.backends.embedder import Embedder
from service.backends.lexical import passage_vector
from service.backends.vector_store import StorePoint, VectorStore

if TYPE_CHECKING:
    from service.metrics import Metrics


@dataclass
class ArticleOutcome:
    id: str
    chunks: int
    status: str  # "ingested" | "skipped"
    outlets: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass
class IngestError:
    source: str
    error: str
    id: str | None = None


@dataclass
class IngestReport:
    articles: list[ArticleOutcome] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)

    @property
    def ingested(self) -> int:
        return sum(a.status == "ingested" for a in self.articles)

    @property
    def skipped(self) -> int:
        return sum(a.status == "skipped" for a in self.articles)

    @property
    def chunks(self) -> int:
        return sum(a.chunks for a in self.articles if a.status == "ingested")


def article_id_for(inp: ArticleInput) -> str:
    """The given id, else the url, else a stable hash of outlet + title + text."""
    if inp.id and inp.id.strip():
        return inp.id.strip()
    if inp.url and inp.url.strip():
        return inp.url.strip()
    h = hashlib.sha256()
    for part in (inp.outlet or "", inp.title or "", clean_text(inp.text).strip()):
        h.update(part.encode("utf-8") + b"\x1f")
    return "sha256:" + h.hexdigest()[:32]


class IngestService:
    """Writes articles into the vector store through the embedder."""

    def __init__(
        self, embedder: Embedder, store: VectorStore, batch_size: int = 32, metrics: Metrics | None = None
    ):
        self._embedder = embedder
        self._store = store
        self._batch = batch_size
        self._metrics = metrics

    def parse(self, inp: ArticleInput) -> Article:
        """Parse one input (raises :class:`ArticleFormatError`)."""
        return parse_article(inp, article_id_for(inp))

    def _points(self, chunks: list[Chunk]) -> list[StorePoint]:
        points: list[StorePoint] = []
        for start in range(0, len(chunks), self._batch):
            batch = chunks[start : start + self._batch]
            vectors = self._embedder.embed_passages([dense_text(c) for c in batch])
            points.extend(
                StorePoint(
                    id=c.point_id, payload=c.payload(), dense=v, sparse=passage_vector(lexical_text(c))
                )
                for c, v in zip(batch, vectors, strict=True)
            )
        return points

    def store_article(self, article: Article) -> ArticleOutcome:
        """Write one parsed article unless the store already holds exactly this content."""
        chunks = chunk_article(article)
        digest = article.content_hash()
        total, same = self._store.article_counts(article.id, digest)
        outcome = ArticleOutcome(
            id=article.id,
            chunks=len(chunks),
            status="skipped",
            outlets=article.outlets,
            warnings=article.warnings,
        )
        if total == same == len(chunks):
            return outcome
        self._store.upsert(self._points(chunks))
        self._store.delete_article(article.id, keep_hash=digest)
        outcome.status = "ingested"
        return outcome

    def ingest(self, items: Iterable[tuple[str, ArticleInput]]) -> IngestReport:
        """Ingest ``(source label, input)`` pairs; bad articles are reported, the rest stored."""
        report = IngestReport()
        for source, inp in items:
            try:
                article = self.parse(inp)
            except ArticleFormatError as exc:
                report.errors.append(IngestError(source=source, error=str(exc), id=inp.id))
                continue
            report.articles.append(self.store_article(article))
        if self._metrics is not None:
            self._metrics.observe_ingest([a.status for a in report.articles], report.chunks)
        return report
