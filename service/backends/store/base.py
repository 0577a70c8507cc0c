"""What every vector store offers: the :class:`VectorStore` protocol, its points and Fonti's schema.

One collection (a Qdrant Edge shard, or a collection on a Qdrant server) holds every chunk
with two vectors: ``dense`` (the embedder's, cosine) and ``lexical`` (sparse BM25 term
frequencies, :mod:`~service.backends.store.lexical`; the engine applies the IDF modifier).
Search fuses both with reciprocal rank fusion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from service.settings import StoreSettings

DENSE = "dense"
LEXICAL = "lexical"
# Payload fields the filters use, indexed as keywords on a Qdrant server.
INDEXED_FIELDS = ("article_id", "outlet", "topic", "published")


@dataclass(frozen=True)
class SparseVec:
    """Indices and values of a sparse vector (indices unique)."""

    indices: list[int]
    values: list[float]


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says what to do."""


@dataclass(frozen=True)
class StoredPoint:
    """One chunk as the store gives it back."""

    id: str
    payload: dict[str, Any]
    score: float = 0.0
    dense: np.ndarray | None = None


@dataclass(frozen=True)
class StorePoint:
    """One chunk to write."""

    id: str
    payload: dict[str, Any]
    dense: np.ndarray
    sparse: SparseVec


class VectorStore(Protocol):
    """What the services need from a vector store."""

    def upsert(self, points: Sequence[StorePoint]) -> None:
        """Insert or overwrite points by id."""
        ...

    def delete_article(self, article_id: str, keep_hash: str | None = None) -> None:
        """Delete an article's points (all, or those whose ``article_hash`` differs from ``keep_hash``)."""
        ...

    def article_counts(self, article_id: str, article_hash: str) -> tuple[int, int]:
        """(points of the article, points of the article with that hash)."""
        ...

    def article_states(self, article_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """For each stored article among ``article_ids``: its chunk count by content hash."""
        ...

    def article_heads(self, limit: int, offset: str | None = None) -> tuple[list[StoredPoint], str | None]:
        """One page of first chunks (position 0), one per article, and the next page's offset."""
        ...

    def article_points(self, article_ids: Sequence[str]) -> list[StoredPoint]:
        """Every chunk of the given articles (payload only)."""
        ...

    def hybrid_search(
        self, dense: np.ndarray, sparse: SparseVec, limit: int, where: dict[str, Any] | None = None
    ) -> list[StoredPoint]:
        """Points ranked by RRF of dense and lexical search, with their dense vectors."""
        ...

    def iter_points(self) -> Iterator[StoredPoint]:
        """Every stored point (payload only)."""
        ...

    def count(self) -> int:
        """Number of stored points."""
        ...

    def outlets(self, limit: int) -> list[str]:
        """Distinct outlet names of the stored chunks (at most ``limit``, most chunks first)."""
        ...

    def export(self, batch: int = 256) -> Iterator[list[StorePoint]]:
        """Every point with its vectors, ``batch`` at a time (``fonti migrate``)."""
        ...

    def build_index(self, progress: Callable[[float], None] | None = None) -> bool:
        """Build the search index of the points written since the last build, and wait for it;
        ``progress`` gets the seconds elapsed every half second. False when there was nothing to
        build (the default: a Qdrant server indexes by itself)."""
        return False

    def close(self) -> None:
        """Release the store (and the lock on its folder)."""
        ...


def edge_folder(settings: StoreSettings) -> Path:
    """The folder of the Qdrant Edge store of these settings."""
    return Path(settings.path) / "edge" / settings.collection


def describe(settings: StoreSettings) -> str:
    """Where a store lives, for messages."""
    return settings.url or str(edge_folder(settings))
