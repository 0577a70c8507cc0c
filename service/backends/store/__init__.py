"""Vector stores behind one protocol (:mod:`~service.backends.store.base`), chosen by the settings."""

from __future__ import annotations

from service.backends.store.base import (
    SparseVec,
    StoredPoint,
    StoreError,
    StorePoint,
    VectorStore,
    describe,
)
from service.settings import StoreSettings

__all__ = [
    "SparseVec",
    "StoreError",
    "StorePoint",
    "StoredPoint",
    "VectorStore",
    "build_store",
    "describe",
]


def build_store(settings: StoreSettings, dim: int, embedder: str = "") -> VectorStore:
    """The one factory: a server when ``FONTI_QDRANT_URL`` is set, else local mode."""
    from service.backends.store.qdrant import QdrantStore

    return QdrantStore(settings, dim, embedder)
