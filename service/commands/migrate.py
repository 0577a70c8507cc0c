"""``fonti migrate``: copy a store's collection into another store (a local folder or a Qdrant server).

Points are read in batches with ``scroll`` (payload, dense and sparse vectors) and
upserted by id into a collection created with the same schema and metadata (the
embedder's name) and Fonti's payload indexes. Upserts are idempotent, so a migration
that stopped half-way is finished by running it again. A target collection with
another schema is refused, as at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.backends.store.base import DENSE, LEXICAL, StoreError, describe
from service.backends.store.qdrant import QdrantStore, open_client, unreachable
from service.settings import StoreSettings


@dataclass(frozen=True)
class MigrationReport:
    """What a migration did."""

    source: str
    target: str
    copied: int
    source_count: int
    target_before: int
    target_count: int


def target_settings(
    source: StoreSettings, to: str, api_key: str | None = None, collection: str | None = None
) -> StoreSettings:
    """Settings of the target: ``to`` is an http(s) URL (a server) or a folder (local mode)."""
    is_url = to.startswith(("http://", "https://"))
    update: dict[str, object] = {
        "url": to if is_url else None,
        "api_key": (api_key or source.api_key) if is_url else None,
        "collection": collection or source.collection,
    }
    if not is_url:
        from pathlib import Path

        update["path"] = Path(to)
    return source.model_copy(update=update)


def _source_schema(client: object, source: StoreSettings) -> tuple[int, str]:
    """(dense size, embedder name) of the source collection; StoreError if it is not Fonti's."""
    where = f"collection {source.collection!r} at {describe(source)}"
    if not client.collection_exists(source.collection):  # type: ignore[attr-defined]
        raise StoreError(f"{where} does not exist: nothing to migrate")
    info = client.get_collection(source.collection)  # type: ignore[attr-defined]
    vectors = info.config.params.vectors
    sparse = info.config.params.sparse_vectors or {}
    if not isinstance(vectors, dict) or DENSE not in vectors or LEXICAL not in sparse:
        raise StoreError(f"{where} is not a Fonti store (no '{DENSE}' and '{LEXICAL}' vectors)")
    return int(vectors[DENSE].size), str((info.config.metadata or {}).get("embedder", ""))


def migrate(
    source: StoreSettings,
    target: StoreSettings,
    batch: int = 256,
    progress: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Copy every point of ``source`` into ``target``; counts are checked afterwards."""
    if describe(source) == describe(target) and source.collection == target.collection:
        raise StoreError(f"source and target are the same store ({describe(source)}, {source.collection!r})")
    src = open_client(source)
    try:
        dim, embedder = _source_schema(src, source)
        dst = QdrantStore(target, dim, embedder)
        try:
            report = _copy(src, source, dst, batch, progress)
        finally:
            dst.close()
    except Exception as exc:
        if unreachable(exc):
            raise StoreError(f"a Qdrant server is not reachable: {exc}") from exc
        raise
    finally:
        src.close()
    if report.target_count < report.source_count:
        raise StoreError(
            f"the target holds {report.target_count} points after copying {report.source_count}; "
            "run the migration again"
        )
    return report


def _copy(
    src: Any,
    source: StoreSettings,
    dst: QdrantStore,
    batch: int,
    progress: Callable[[int], None] | None,
) -> MigrationReport:
    from qdrant_client import models

    before = dst.count()  # raises StoreError when a server target is unreachable
    copied = 0
    offset = None
    while True:
        points, offset = src.scroll(
            source.collection, limit=batch, offset=offset, with_payload=True, with_vectors=True
        )
        if points:
            dst.client.upsert(
                dst.collection,
                points=[
                    models.PointStruct(id=p.id, vector=p.vector, payload=p.payload or {}) for p in points
                ],
                wait=True,
            )
            copied += len(points)
            if progress is not None:
                progress(copied)
        if offset is None:
            break
    source_count = src.count(source.collection, exact=True).count
    return MigrationReport(describe(source), dst.where, copied, source_count, before, dst.count())
