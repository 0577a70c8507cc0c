"""Plain data objects passed between ingest stages."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

# Fixed namespace so that point ids are the same on every machine and every run.
_POINT_NAMESPACE = uuid.UUID("6f1c1f2e-7a52-4b8e-9a4e-2b7f0f6c5a11")


class ArticleFormatError(ValueError):
    """An article's content cannot be parsed; the message says why (and where)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of body text and the single outlet that reported it."""

    text: str
    outlet: str
    section: str | None = None


@dataclass
class Article:
    """A parsed article: metadata plus paragraphs, each with exactly one outlet."""

    id: str
    title: str
    paragraphs: list[Paragraph]
    topic: str | None = None
    published: str | None = None
    url: str | None = None
    dateline: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def outlets(self) -> list[str]:
        """Distinct outlets in order of first appearance."""
        return list(dict.fromkeys(p.outlet for p in self.paragraphs))

    def content_hash(self) -> str:
        """Hash of everything that ends up in the store; equal hash means nothing to re-embed."""
        h = hashlib.sha256()
        for part in (self.id, self.title, self.topic, self.published, self.url):
            h.update((part or "").encode() + b"\x1f")
        for p in self.paragraphs:
            h.update(f"{p.outlet}\x1e{p.section or ''}\x1e{p.text}\x1f".encode())
        return h.hexdigest()


@dataclass(frozen=True)
class Chunk:
    """The unit stored in the vector store: a paragraph (or part of one) with its outlet."""

    article_id: str
    position: int
    text: str
    outlet: str
    title: str
    article_hash: str
    topic: str | None = None
    published: str | None = None
    url: str | None = None
    section: str | None = None

    @property
    def point_id(self) -> str:
        """Deterministic id: same article, position and content give the same point."""
        key = f"{self.article_id}\x1f{self.position}\x1f{self.outlet}\x1f{self.text}"
        return str(uuid.uuid5(_POINT_NAMESPACE, key))

    def payload(self) -> dict[str, object]:
        """The Qdrant payload stored with the chunk."""
        return {
            "article_id": self.article_id,
            "position": self.position,
            "text": self.text,
            "outlet": self.outlet,
            "title": self.title,
            "topic": self.topic,
            "published": self.published,
            "url": self.url,
            "section": self.section,
            "article_hash": self.article_hash,
        }
