"""The default vector store: Qdrant Edge, Qdrant's own engine in-process, in a folder of its own.

One Edge shard holds every chunk with two vectors, as on a Qdrant server: ``dense`` (the
embedder's, cosine) and ``lexical`` (sparse, IDF modifier). Search fuses both with
reciprocal rank fusion (k = 2, Qdrant's default; :mod:`.edge_search`, deterministic);
filters use keyword, datetime and integer payload indexes.

Writes land in an appendable segment that is searched exactly; the HNSW index of new
points is built off the request path (:mod:`.edge_index`). The folder (owner lock,
metadata, generations) is :mod:`.edge_folder`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.backends.store.base import (
    DENSE,
    LEXICAL,
    SparseVec,
    StoredPoint,
    StoreError,
    StorePoint,
    VectorStore,
    edge_folder,
)
from service.backends.store.copy import Source
from service.backends.store.edge_folder import CURRENT_FILE, EdgeFolder, StoreMeta
from service.backends.store.edge_index import LiveShard
from service.backends.store.edge_search import edge_filter, hybrid_search
from service.backends.store.lexical import encoder
from service.settings import StoreSettings

log = logging.getLogger(__name__)

# Points waiting for the index that make a store build it in the background. Below this,
# exact search over them takes about a millisecond.
INDEX_AFTER = 10_000
PAGE = 256


def upsert_operation(points: Sequence[StorePoint]) -> Any:
    """An Edge upsert of ``points`` (both vectors and the payload, by id)."""
    from qdrant_edge import Point, SparseVector, UpdateOperation

    return UpdateOperation.upsert_points(
        [
            Point(
                p.id,
                {
                    DENSE: p.dense.astype(float).tolist(),
                    LEXICAL: SparseVector(p.sparse.indices, p.sparse.values),
                },
                p.payload,
            )
            for p in points
        ]
    )


def scroll(
    read: Callable[[Callable[[Any], Any]], Any], flt: Any, fields: list[str] | bool, vectors: bool = False
) -> Iterator[Any]:
    """Every point matching ``flt``, page by page; ``read`` runs a call on the shard (under its lock)."""
    from qdrant_edge import ScrollRequest

    offset = None
    while True:
        request = ScrollRequest(
            offset=offset, limit=PAGE, filter=flt, with_payload=fields, with_vector=vectors
        )
        points, offset = read(lambda s: s.scroll(request))  # noqa: B023
        yield from points
        if offset is None:
            return


def export(read: Callable[[Callable[[Any], Any]], Any], batch: int) -> Iterator[list[StorePoint]]:
    """Every point with its vectors, ``batch`` at a time."""
    out: list[StorePoint] = []
    for p in scroll(read, None, True, vectors=True):
        sparse = p.vector[LEXICAL]
        dense = np.asarray(p.vector[DENSE], dtype=np.float32)
        sv = SparseVec(list(sparse.indices), [float(v) for v in sparse.values])
        out.append(StorePoint(str(p.id), dict(p.payload or {}), dense, sv))
        if len(out) >= batch:
            yield out
            out = []
    if out:
        yield out


def open_edge_source(root: Path) -> Source:
    """The Edge store in ``root`` as it is, for copying (its folder locked until closed)."""
    from qdrant_edge import CountRequest, EdgeShard

    if not (root / CURRENT_FILE).is_file():
        raise StoreError(f"there is no Qdrant Edge store at {root}: nothing to migrate")
    folder = EdgeFolder(root)
    try:
        current, meta = folder.current(), folder.read_meta()
        if current is None or meta is None:
            raise StoreError(f"the store at {root} is incomplete (no CURRENT or fonti.json)")
        shard = EdgeShard.load(str(current))
    except BaseException:
        folder.close()
        raise

    def read(call: Callable[[Any], Any]) -> Any:
        return call(shard)

    def close() -> None:
        shard.close()
        folder.close()

    return Source(
        where=str(root),
        dense_size=meta.dense_size,
        embedder=meta.embedder,
        sparse=meta.sparse,
        count=lambda: int(shard.count(CountRequest(exact=True))),
        batches=lambda n: export(read, n),
        close=close,
    )


class EdgeStore(VectorStore):
    """:class:`VectorStore` on Qdrant Edge (``qdrant-edge-py``), in ``FONTI_STORE_PATH/edge/<collection>``.

    ``background_index``: build the HNSW index in the background once ``INDEX_AFTER``
    points wait for it (``fonti serve``); otherwise only :meth:`build_index` builds it
    (``fonti ingest`` calls it at its end). ``folder`` overrides the settings' folder.
    A new folder gets Fonti's schema; an existing one is opened only with the same dense
    size, embedder and sparse encoder, and never changed otherwise.
    """

    def __init__(
        self,
        settings: StoreSettings,
        dim: int,
        embedder: str = "",
        *,
        background_index: bool = False,
        folder: Path | None = None,
    ):
        self._dim = dim
        root = folder or edge_folder(settings)
        self._where = str(root)
        self._background = background_index
        self._written = 0
        self.created = False
        lock = EdgeFolder(root)
        try:
            shard = self._open(lock, embedder)
        except BaseException:
            lock.close()
            raise
        self._live = LiveShard(lock, shard, self._load)
        if self._background and self.pending() >= INDEX_AFTER:
            self._live.start_build(foreground=False)

    @property
    def where(self) -> str:
        """The store's folder, for messages."""
        return self._where

    # --- opening ----------------------------------------------------------------------------
    def _config(self) -> Any:
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeOptimizersConfig,
            EdgeSparseVectorParams,
            EdgeVectorParams,
            Modifier,
        )

        return EdgeConfig(
            vectors={DENSE: EdgeVectorParams(size=self._dim, distance=Distance.Cosine)},
            sparse_vectors={LEXICAL: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            # A segment gets its HNSW index from half of INDEX_AFTER points on, so that a build
            # started for INDEX_AFTER points indexes them (Qdrant counts kilobytes of vectors).
            optimizers=EdgeOptimizersConfig(indexing_threshold=max(1, INDEX_AFTER * self._dim * 4 // 2048)),
        )

    def _load(self, path: Path) -> Any:
        from qdrant_edge import EdgeShard

        try:
            return EdgeShard.load(str(path), self._config())
        except Exception as exc:
            if "incompatible" in str(exc):
                raise StoreError(
                    f"the store at {self._where} has a different schema than this configuration "
                    f"(dense size {self._dim}, cosine; sparse '{LEXICAL}' with IDF): {exc}. Use a new "
                    "FONTI_STORE_PATH or FONTI_STORE_COLLECTION; nothing was changed."
                ) from exc
            raise StoreError(f"the store at {self._where} cannot be opened: {exc}") from exc

    def _open(self, folder: EdgeFolder, embedder: str) -> Any:
        current = folder.current()
        folder.remove_others(current)  # leftovers of a build, a swap or a creation cut short
        if current is None:
            return self._create(folder, embedder)
        self._check_meta(folder.read_meta(), embedder)
        shard = self._load(current)
        self._ensure_indexes(shard)
        return shard

    def _check_meta(self, meta: StoreMeta | None, embedder: str) -> None:
        here = f"the store at {self._where}"
        if meta is None:
            raise StoreError(f"{here} has no fonti.json: it was not written by Fonti, or was damaged")
        if meta.dense_size != self._dim:
            raise StoreError(
                f"{here} has a different schema (dense size {meta.dense_size}) than this configuration "
                f"(dense size {self._dim}): it was built with another embedder. Use a new "
                "FONTI_STORE_PATH or FONTI_STORE_COLLECTION and ingest again; nothing was changed."
            )
        if embedder and meta.embedder and meta.embedder != embedder:
            # Same size, other vector space: searching it would return noise.
            raise StoreError(
                f"{here} was built with the embedder {meta.embedder!r}, this configuration uses "
                f"{embedder!r}. Use a new FONTI_STORE_PATH or FONTI_STORE_COLLECTION and ingest "
                "again; nothing was changed."
            )
        if meta.sparse != encoder().name:
            raise StoreError(
                f"{here} holds lexical vectors of {meta.sparse!r}, this version of Fonti searches with "
                f"{encoder().name!r}. Copy it into a new folder, which re-encodes them (`fonti migrate "
                "--to NEW_FOLDER`), then set FONTI_STORE_PATH=NEW_FOLDER; nothing was changed."
            )

    def _create(self, folder: EdgeFolder, embedder: str) -> Any:
        from qdrant_edge import EdgeShard

        path = folder.next_generation()
        shard = EdgeShard.create(str(path), self._config())
        try:
            self._ensure_indexes(shard)
            shard.flush()
            folder.write_meta(StoreMeta(self._dim, embedder, encoder().name))
            folder.make_current(path)
        except BaseException:
            shard.close()
            raise
        self.created = True
        return shard

    @staticmethod
    def _ensure_indexes(shard: Any) -> None:
        from qdrant_edge import IntegerIndexParams, KeywordIndexParams, PayloadSchemaType, UpdateOperation

        wanted: dict[str, Any] = {
            # Search filters: HNSW gets extra links per value (filtered search keeps its recall).
            "outlet": PayloadSchemaType.Keyword,
            "topic": PayloadSchemaType.Keyword,
            "published": PayloadSchemaType.Datetime,
            # An article's few chunks are read from the index alone; the first chunks (position
            # 0) are listed by scrolling: no HNSW links, which would cost index build time.
            "article_id": KeywordIndexParams(enable_hnsw=False),
            "position": IntegerIndexParams(lookup=True, range=False, enable_hnsw=False),
        }
        existing = shard.info().payload_schema
        for field, schema in wanted.items():
            if field not in existing:
                shard.update(UpdateOperation.create_field_index(field, schema))

    # --- the search index -------------------------------------------------------------------
    def pending(self) -> int:
        """Points written since the last index build (searched exactly meanwhile)."""
        info = self._live.read(lambda s: s.info())
        return max(0, 2 * info.points_count - info.indexed_vectors_count)

    def build_index(self, progress: Callable[[float], None] | None = None) -> bool:
        """Build the index of the points waiting for it, and wait; ``progress`` gets the seconds
        elapsed every half second. False when nothing waited for it."""
        self._live.wait_build()
        if self.pending() < INDEX_AFTER // 2:  # Qdrant's threshold (see _config): nothing to index
            return False
        self._live.start_build(foreground=True)
        self._live.wait_build(progress)
        return True

    def _wrote(self, n: int) -> None:
        self._written += n
        if self._background and self._written >= INDEX_AFTER and not self._live.building:
            self._written = 0
            if self.pending() >= INDEX_AFTER:
                self._live.start_build(foreground=False)

    # --- VectorStore ------------------------------------------------------------------------
    def upsert(self, points: Sequence[StorePoint]) -> None:
        if not points:
            return
        op = upsert_operation(points)
        self._live.write(lambda s: s.update(op), [p.id for p in points])
        self._wrote(len(points))

    def delete_article(self, article_id: str, keep_hash: str | None = None) -> None:
        from qdrant_edge import UpdateOperation

        flt = edge_filter({"article_id": article_id, **({"!article_hash": keep_hash} if keep_hash else {})})
        self._live.write(
            lambda s: s.update(UpdateOperation.delete_points_by_filter(flt)),
            lambda: [str(r.id) for r in self._scroll(flt, False)],
        )

    def _count(self, where: dict[str, Any] | None) -> int:
        from qdrant_edge import CountRequest

        request = CountRequest(exact=True, filter=edge_filter(where))
        return int(self._live.read(lambda s: s.count(request)))

    def article_counts(self, article_id: str, article_hash: str) -> tuple[int, int]:
        return (
            self._count({"article_id": article_id}),
            self._count({"article_id": article_id, "article_hash": article_hash}),
        )

    def count(self) -> int:
        return self._count(None)

    def _scroll(self, flt: Any, fields: list[str] | bool, vectors: bool = False) -> Iterator[Any]:
        return scroll(self._live.read, flt, fields, vectors)

    def iter_points(self) -> Iterator[StoredPoint]:
        for p in self._scroll(None, True):
            yield StoredPoint(id=str(p.id), payload=dict(p.payload or {}))

    def export(self, batch: int = PAGE) -> Iterator[list[StorePoint]]:
        return export(self._live.read, batch)

    def article_states(self, article_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        states: dict[str, dict[str, int]] = {}
        if not article_ids:
            return states
        flt = edge_filter({"article_id": list(dict.fromkeys(article_ids))})
        for p in self._scroll(flt, ["article_id", "article_hash"]):
            payload = p.payload or {}
            by_hash = states.setdefault(str(payload.get("article_id")), {})
            digest = str(payload.get("article_hash"))
            by_hash[digest] = by_hash.get(digest, 0) + 1
        return states

    def article_heads(self, limit: int, offset: str | None = None) -> tuple[list[StoredPoint], str | None]:
        from qdrant_edge import ScrollRequest

        request = ScrollRequest(
            offset=offset, limit=limit, filter=edge_filter({"position": 0}), with_payload=True
        )
        points, next_offset = self._live.read(lambda s: s.scroll(request))
        heads = [StoredPoint(id=str(p.id), payload=dict(p.payload or {})) for p in points]
        return heads, (str(next_offset) if next_offset is not None else None)

    def article_points(self, article_ids: Sequence[str]) -> list[StoredPoint]:
        if not article_ids:
            return []
        flt = edge_filter({"article_id": list(dict.fromkeys(article_ids))})
        return [StoredPoint(id=str(p.id), payload=dict(p.payload or {})) for p in self._scroll(flt, True)]

    def hybrid_search(
        self, dense: np.ndarray, sparse: SparseVec, limit: int, where: dict[str, Any] | None = None
    ) -> list[StoredPoint]:
        return hybrid_search(self._live.read, dense, sparse, limit, where)

    def outlets(self, limit: int) -> list[str]:
        from qdrant_edge import FacetRequest

        request = FacetRequest(key="outlet", limit=limit, exact=True)
        return [str(hit.value) for hit in self._live.read(lambda s: s.facet(request)).hits]

    def close(self) -> None:
        self._live.close()
        self._live.folder.close()
