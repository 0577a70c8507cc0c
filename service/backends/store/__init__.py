"""Vector stores behind one protocol (:mod:`~service.backends.store.base`), chosen by the settings.

Qdrant Edge in-process (:mod:`.edge`) by default; a Qdrant server through qdrant-client
(:mod:`.qdrant`) when ``FONTI_QDRANT_URL`` is set. qdrant-client's local mode remains only
to read stores written before Qdrant Edge (:mod:`.upgrade`, ``fonti migrate``).
"""

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


def build_store(
    settings: StoreSettings, dim: int, embedder: str = "", *, background_index: bool = False
) -> VectorStore:
    """The one factory: a Qdrant server when ``FONTI_QDRANT_URL`` is set, else Qdrant Edge in
    ``FONTI_STORE_PATH`` (a qdrant-client local-mode store found there is copied into it on the
    first start). ``background_index``: an Edge store builds its search index in the background
    (``fonti serve``); otherwise :meth:`VectorStore.build_index` does (``fonti ingest``)."""
    if settings.url:
        from service.backends.store.qdrant import QdrantStore

        return QdrantStore(settings, dim, embedder)
    from service.backends.store.edge import EdgeStore
    from service.backends.store.upgrade import upgrade_local_mode

    upgrade_local_mode(settings, dim, embedder)
    return EdgeStore(settings, dim, embedder, background_index=background_index)
