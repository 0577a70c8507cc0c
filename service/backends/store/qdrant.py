"""The vector store on Qdrant through qdrant-client: embedded local mode, or a server by URL.

Fonti's schema (:mod:`~service.backends.store.base`) in one collection; search fuses
the dense and lexical vectors with reciprocal rank fusion in Qdrant's Query API.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from service.backends.store.base import (
    DENSE,
    INDEXED_FIELDS,
    LEXICAL,
    SparseVec,
    StoredPoint,
    StoreError,
    StorePoint,
    VectorStore,
)
from service.backends.store.lexical import encoder
from service.backends.store.qdrant_io import open_client, scroll_points, sparse_encoder_of, unreachable
from service.settings import StoreSettings

log = logging.getLogger(__name__)


def _locked(method: Any) -> Any:
    """Serialise calls (local mode is not safe for concurrent use from several threads), and make
    sure the collection was created or checked (a server may have been down at start-up)."""

    @functools.wraps(method)
    def wrapper(self: QdrantStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                self._ensure()
                return method(self, *args, **kwargs)
            except Exception as exc:
                if unreachable(exc):
                    raise StoreError(f"the Qdrant server {self._where} is not reachable: {exc}") from exc
                raise

    return wrapper


class QdrantStore(VectorStore):
    """:class:`VectorStore` on qdrant-client.

    The collection is created on first start with Fonti's schema (dense cosine vector,
    sparse IDF vector, the embedder's name in its metadata, keyword payload indexes);
    an existing collection with another schema is refused, never recreated. A Qdrant
    server that is not reachable at start-up is not fatal: the collection is checked
    at the first use, and GET /readyz reports the store until then.
    """

    def __init__(self, settings: StoreSettings, dim: int, embedder: str = ""):
        self._collection = settings.collection
        self._where = settings.url or str(settings.path)
        self._local = settings.url is None
        self._lock = threading.RLock()
        self._dim = dim
        self._embedder = embedder
        self._checked = False
        self._client = open_client(settings)
        try:
            self._ensure()
        except Exception as exc:
            if self._local or not unreachable(exc):
                self._client.close()
                raise
            log.warning("Qdrant server %s not reachable yet (%s); will retry on first use", self._where, exc)

    @property
    def client(self) -> Any:
        """The qdrant-client (for migration)."""
        return self._client

    @property
    def collection(self) -> str:
        """The collection's name."""
        return self._collection

    @property
    def where(self) -> str:
        """The server URL or the local folder."""
        return self._where

    def _ensure(self) -> None:
        """Create the collection, or check an existing one's schema (once)."""
        if self._checked:
            return
        with self._lock:
            if self._client.collection_exists(self._collection):
                self._check_schema()
            else:
                self._create()
            self._create_indexes()
            self._checked = True

    def _check_schema(self) -> None:
        from qdrant_client import models

        info = self._client.get_collection(self._collection)
        vectors = info.config.params.vectors
        dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
        size = dense.size if dense is not None else None
        distance = dense.distance if dense is not None else None
        sparse = info.config.params.sparse_vectors or {}
        modifier = sparse[LEXICAL].modifier if LEXICAL in sparse else None
        here = f"collection {self._collection!r} at {self._where}"
        if size != self._dim or LEXICAL not in sparse:
            raise StoreError(
                f"{here} has a different schema (dense size {size}, sparse {sorted(sparse)}) than this "
                f"configuration (dense size {self._dim}, sparse ['{LEXICAL}']): it was built with another "
                "embedder. Use a new FONTI_STORE_PATH or FONTI_STORE_COLLECTION and ingest again; "
                "nothing was changed."
            )
        if distance != models.Distance.COSINE or modifier != models.Modifier.IDF:
            raise StoreError(
                f"{here} has a different schema (dense distance {distance}, sparse modifier {modifier}) "
                "than Fonti's (cosine, idf). Use another FONTI_STORE_COLLECTION; nothing was changed."
            )
        built_with = (info.config.metadata or {}).get("embedder")
        if self._embedder and built_with and built_with != self._embedder:
            # Same size, other vector space: searching it would return noise.
            raise StoreError(
                f"{here} was built with the embedder {built_with!r}, this configuration uses "
                f"{self._embedder!r}. Use a new FONTI_STORE_PATH or FONTI_STORE_COLLECTION and ingest "
                "again; nothing was changed."
            )
        sparse_encoder = sparse_encoder_of(info.config.metadata)
        if sparse_encoder != encoder().name:
            # Other term ids: the lexical side of every search would match nothing or noise.
            raise StoreError(
                f"{here} holds lexical vectors of {sparse_encoder!r}, this version of Fonti searches "
                f"with {encoder().name!r}. Copy it into a new collection, which re-encodes them "
                f"(`fonti migrate --to {self._where} --to-collection {self._collection}_2`), then set "
                f"FONTI_STORE_COLLECTION={self._collection}_2; nothing was changed."
            )
        for name, schema in (info.payload_schema or {}).items():
            kind = getattr(schema, "data_type", None)
            if name in INDEXED_FIELDS and kind not in (None, models.PayloadSchemaType.KEYWORD):
                raise StoreError(
                    f"{here} indexes the payload field {name!r} as {kind}, Fonti filters it as a "
                    "keyword. Drop that index or use another FONTI_STORE_COLLECTION."
                )

    def _create(self) -> None:
        from qdrant_client import models

        self._client.create_collection(
            self._collection,
            vectors_config={DENSE: models.VectorParams(size=self._dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={"embedder": self._embedder, "sparse": encoder().name},
        )

    def _create_indexes(self) -> None:
        """Keyword indexes for the filtered fields (a server uses them; local mode ignores them)."""
        from qdrant_client import models

        existing = set() if self._local else set(self._client.get_collection(self._collection).payload_schema)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field in INDEXED_FIELDS:
                if field not in existing:
                    self._client.create_payload_index(
                        self._collection, field, models.PayloadSchemaType.KEYWORD, wait=True
                    )

    @staticmethod
    def _filter(where: dict[str, Any] | None) -> Any:
        """A Qdrant filter from ``where``: ``{"field": value}`` matches a value, a list any of
        them; ``"!field"`` excludes them; ``"field>="`` / ``"field<"`` bound a date range."""
        from qdrant_client import models

        if not where:
            return None
        must: list[Any] = []
        must_not: list[Any] = []
        for key, value in where.items():
            if key.endswith(">=") or key.endswith("<"):
                field, bound = (key[:-2], "gte") if key.endswith(">=") else (key[:-1], "lt")
                rng = models.DatetimeRange(**{bound: value})
                must.append(models.FieldCondition(key=field, range=rng))
                continue
            target = must_not if key.startswith("!") else must
            field = key.lstrip("!")
            if isinstance(value, list | tuple | set):
                target.append(models.FieldCondition(key=field, match=models.MatchAny(any=list(value))))
            else:
                target.append(models.FieldCondition(key=field, match=models.MatchValue(value=value)))
        return models.Filter(must=must or None, must_not=must_not or None)

    @_locked
    def upsert(self, points: Sequence[StorePoint]) -> None:
        from qdrant_client import models

        if not points:
            return
        self._client.upsert(
            self._collection,
            points=[
                models.PointStruct(
                    id=p.id,
                    payload=p.payload,
                    vector={
                        DENSE: p.dense.astype(float).tolist(),
                        LEXICAL: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                    },
                )
                for p in points
            ],
            wait=True,
        )

    @_locked
    def delete_article(self, article_id: str, keep_hash: str | None = None) -> None:
        from qdrant_client import models

        flt = models.Filter(
            must=[models.FieldCondition(key="article_id", match=models.MatchValue(value=article_id))],
            must_not=(
                [models.FieldCondition(key="article_hash", match=models.MatchValue(value=keep_hash))]
                if keep_hash
                else None
            ),
        )
        self._client.delete(self._collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    @_locked
    def article_counts(self, article_id: str, article_hash: str) -> tuple[int, int]:
        total = self._client.count(self._collection, self._filter({"article_id": article_id}), exact=True)
        same = self._client.count(
            self._collection,
            self._filter({"article_id": article_id, "article_hash": article_hash}),
            exact=True,
        )
        return total.count, same.count

    @_locked
    def hybrid_search(
        self, dense: np.ndarray, sparse: SparseVec, limit: int, where: dict[str, Any] | None = None
    ) -> list[StoredPoint]:
        from qdrant_client import models

        flt = self._filter(where)
        prefetch = [models.Prefetch(query=dense.astype(float).tolist(), using=DENSE, limit=limit, filter=flt)]
        if sparse.indices:
            prefetch.append(
                models.Prefetch(
                    query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                    using=LEXICAL,
                    limit=limit,
                    filter=flt,
                )
            )
        res = self._client.query_points(
            self._collection,
            prefetch=prefetch,
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=limit,
            with_payload=True,
            with_vectors=[DENSE],
        )
        out = []
        for p in res.points:
            vec = p.vector.get(DENSE) if isinstance(p.vector, dict) else None
            out.append(
                StoredPoint(
                    id=str(p.id),
                    payload=dict(p.payload or {}),
                    score=float(p.score),
                    dense=np.asarray(vec, dtype=np.float32) if vec is not None else None,
                )
            )
        return out

    def iter_points(self) -> Iterator[StoredPoint]:
        with self._lock:
            self._ensure()
        offset = None
        while True:
            points, offset = self._client.scroll(
                self._collection, limit=256, offset=offset, with_payload=True
            )
            for p in points:
                yield StoredPoint(id=str(p.id), payload=dict(p.payload or {}))
            if offset is None:
                return

    def _scroll(self, flt: Any, fields: list[str] | bool) -> Iterator[Any]:
        """Every point matching ``flt``, page by page."""
        offset = None
        while True:
            with self._lock:
                points, offset = self._client.scroll(
                    self._collection, scroll_filter=flt, limit=256, offset=offset, with_payload=fields
                )
            yield from points
            if offset is None:
                return

    @_locked
    def article_states(self, article_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        states: dict[str, dict[str, int]] = {}
        if not article_ids:
            return states
        flt = self._filter({"article_id": list(dict.fromkeys(article_ids))})
        for p in self._scroll(flt, ["article_id", "article_hash"]):
            payload = p.payload or {}
            by_hash = states.setdefault(str(payload.get("article_id")), {})
            digest = str(payload.get("article_hash"))
            by_hash[digest] = by_hash.get(digest, 0) + 1
        return states

    @_locked
    def article_heads(self, limit: int, offset: str | None = None) -> tuple[list[StoredPoint], str | None]:
        from qdrant_client import models

        flt = models.Filter(must=[models.FieldCondition(key="position", match=models.MatchValue(value=0))])
        points, next_offset = self._client.scroll(
            self._collection, scroll_filter=flt, limit=limit, offset=offset, with_payload=True
        )
        heads = [StoredPoint(id=str(p.id), payload=dict(p.payload or {})) for p in points]
        return heads, (str(next_offset) if next_offset is not None else None)

    @_locked
    def article_points(self, article_ids: Sequence[str]) -> list[StoredPoint]:
        if not article_ids:
            return []
        flt = self._filter({"article_id": list(dict.fromkeys(article_ids))})
        return [StoredPoint(id=str(p.id), payload=dict(p.payload or {})) for p in self._scroll(flt, True)]

    @_locked
    def count(self) -> int:
        return self._client.count(self._collection, exact=True).count

    def export(self, batch: int = 256) -> Iterator[list[StorePoint]]:
        with self._lock:
            self._ensure()
        yield from scroll_points(self._client, self._collection, batch)

    @_locked
    def outlets(self, limit: int) -> list[str]:
        # A facet on the indexed keyword field: the server answers from its index.
        res = self._client.facet(self._collection, key="outlet", limit=limit, exact=True)
        return [str(hit.value) for hit in res.hits]

    def close(self) -> None:
        with self._lock:
            self._client.close()
