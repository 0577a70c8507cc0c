"""qdrant-client plumbing shared by the server store and the copies: opening a client,
telling an unreachable server from a refusal, reading a whole collection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from service.backends.store.base import DENSE, LEXICAL, SparseVec, StoreError, StorePoint
from service.backends.store.copy import Source, local_mode_store
from service.backends.store.lexical import FoldedWords
from service.settings import StoreSettings


def unreachable(exc: BaseException) -> bool:
    """The error says the Qdrant server could not be reached (REST or gRPC), not that it refused."""
    from qdrant_client.http.exceptions import ResponseHandlingException

    if isinstance(exc, ResponseHandlingException):
        return True
    code = getattr(exc, "code", None)
    if callable(code):  # grpc.RpcError
        try:
            return getattr(code(), "name", "") in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
        except Exception:
            return False
    return False


def sparse_encoder_of(metadata: dict[str, Any] | None) -> str:
    """The sparse encoder a collection was written with (collections before Qdrant Edge say none)."""
    return str((metadata or {}).get("sparse") or FoldedWords.name)


def scroll_points(client: Any, collection: str, batch: int) -> Iterator[list[StorePoint]]:
    """Every point of a collection with its vectors, ``batch`` at a time."""
    offset = None
    while True:
        points, offset = client.scroll(
            collection, limit=batch, offset=offset, with_payload=True, with_vectors=True
        )
        out = []
        for p in points:
            vectors = p.vector if isinstance(p.vector, dict) else {}
            sparse = vectors.get(LEXICAL)
            out.append(
                StorePoint(
                    id=str(p.id),
                    payload=dict(p.payload or {}),
                    dense=np.asarray(vectors.get(DENSE), dtype=np.float32),
                    sparse=SparseVec(list(sparse.indices), list(sparse.values))
                    if sparse
                    else SparseVec([], []),
                )
            )
        if out:
            yield out
        if offset is None:
            return


def open_client(settings: StoreSettings) -> Any:
    """A qdrant-client for the settings: a server by URL (REST or gRPC), else the local folder."""
    from qdrant_client import QdrantClient

    if settings.url:
        return QdrantClient(
            url=settings.url,
            api_key=settings.api_key,
            prefer_grpc=settings.prefer_grpc,
            grpc_port=settings.grpc_port,
            timeout=max(1, round(settings.timeout)),
        )
    Path(settings.path).mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(settings.path))
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise StoreError(
                f"the store folder {settings.path} is in use by another process (a running "
                "`fonti serve`?). Send articles through its API with `fonti ingest --url "
                "http://HOST:PORT`, or stop it first."
            ) from exc
        raise


def open_qdrant_source(settings: StoreSettings) -> Source:
    """The collection of a server (``settings.url``) or of a local-mode folder, as it is."""
    where = settings.url or str(settings.path)
    here = f"collection {settings.collection!r} at {where}"
    if not settings.url and not local_mode_store(settings.path, settings.collection):
        raise StoreError(f"{here} does not exist: nothing to migrate")
    client = open_client(settings)
    try:
        if not client.collection_exists(settings.collection):
            raise StoreError(f"{here} does not exist: nothing to migrate")
        info = client.get_collection(settings.collection)
    except Exception as exc:
        client.close()
        if unreachable(exc):
            raise StoreError(f"the Qdrant server {where} is not reachable: {exc}") from exc
        raise
    vectors = info.config.params.vectors
    sparse = info.config.params.sparse_vectors or {}
    if not isinstance(vectors, dict) or DENSE not in vectors or LEXICAL not in sparse:
        client.close()
        raise StoreError(f"{here} is not a Fonti store (no '{DENSE}' and '{LEXICAL}' vectors)")
    metadata = info.config.metadata or {}
    return Source(
        where=f"{where} (collection {settings.collection!r})",
        dense_size=int(vectors[DENSE].size),
        embedder=str(metadata.get("embedder", "")),
        sparse=sparse_encoder_of(metadata),
        count=lambda: int(client.count(settings.collection, exact=True).count),
        batches=lambda n: scroll_points(client, settings.collection, n),
        close=client.close,
    )
