"""What is stored, article by article: listing with paging, one article, its chunks.

:class:`ArticleSummary` and :class:`ArticleDetail` are what ``GET /v1/articles`` and
``fonti list`` return (the API's response models too).
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel

from service.backends.store import StoredPoint, VectorStore


class ArticleSummary(BaseModel):
    """One stored article, as `GET /v1/articles` and `fonti list` list it."""

    id: str
    title: str
    outlets: list[str]
    chunks: int
    url: str | None = None
    published: str | None = None
    topic: str | None = None


class StoredParagraph(BaseModel):
    """One chunk of a stored article."""

    position: int
    outlet: str
    text: str


class ArticleDetail(ArticleSummary):
    """One article with its chunks in reading order."""

    paragraphs: list[StoredParagraph]


def _summaries(heads: list[StoredPoint], points: list[StoredPoint]) -> list[ArticleSummary]:
    by_article: dict[str, list[StoredPoint]] = defaultdict(list)
    for p in points:
        by_article[str(p.payload["article_id"])].append(p)
    out = []
    seen: set[str] = set()
    for head in heads:
        aid = str(head.payload["article_id"])
        if aid in seen:  # an interrupted update can leave two first chunks until the next run
            continue
        seen.add(aid)
        current = [
            p for p in by_article[aid] if p.payload.get("article_hash") == head.payload["article_hash"]
        ]
        current.sort(key=lambda p: int(p.payload["position"]))
        out.append(
            ArticleSummary(
                id=aid,
                title=str(head.payload.get("title") or ""),
                outlets=list(dict.fromkeys(str(p.payload["outlet"]) for p in current)),
                chunks=len(current),
                url=head.payload.get("url"),
                published=head.payload.get("published"),
                topic=head.payload.get("topic"),
            )
        )
    return out


def list_articles(
    store: VectorStore, limit: int, offset: str | None = None
) -> tuple[list[ArticleSummary], str | None]:
    """One page of stored articles and the offset of the next page (``None`` at the end)."""
    heads, next_offset = store.article_heads(limit, offset)
    points = store.article_points([str(h.payload["article_id"]) for h in heads])
    return _summaries(heads, points), next_offset


def get_article(store: VectorStore, article_id: str) -> ArticleDetail | None:
    """The stored article ``article_id`` with its paragraphs, or ``None``."""
    points = sorted(store.article_points([article_id]), key=lambda p: int(p.payload["position"]))
    heads = [p for p in points if p.payload["position"] == 0]
    if not heads:
        return None
    head = heads[-1]
    (summary,) = _summaries([head], points)
    current = [p for p in points if p.payload.get("article_hash") == head.payload["article_hash"]]
    paragraphs = [
        StoredParagraph(position=p.payload["position"], outlet=p.payload["outlet"], text=p.payload["text"])
        for p in current
    ]
    return ArticleDetail(**summary.model_dump(), paragraphs=paragraphs)
