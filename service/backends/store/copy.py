"""Copying every point of one store into another: ``fonti migrate``, and the first start of a folder
that holds a store of qdrant-client's local mode (Fonti before Qdrant Edge).

A :class:`Source` reads a store as it is (no check of embedder or sparse encoder: it says
what it holds). :func:`copy_points` upserts its points by id, so a copy that stopped half
way is finished by running it again, and re-encodes the lexical vectors from the stored
text when the source was written with another sparse encoder. Stores before Qdrant Edge
kept no article language: each chunk is then analysed in its own text's language.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from service.backends.store.base import StoreError, StorePoint, VectorStore
from service.backends.store.lexical import article_language, encoder, lexical_text, passage_vector

Engine = Literal["edge", "local", "server"]


@dataclass
class Source:
    """A store opened for reading all of it."""

    where: str
    dense_size: int
    embedder: str
    sparse: str  # the encoder its lexical vectors were written with
    count: Callable[[], int]
    batches: Callable[[int], Iterator[list[StorePoint]]]
    close: Callable[[], None]


def local_mode_store(path: Path, collection: str) -> bool:
    """A qdrant-client local-mode store with this collection is in ``path``."""
    return (Path(path) / "meta.json").is_file() and (Path(path) / "collection" / collection).is_dir()


def _reencoded(batch: list[StorePoint]) -> list[StorePoint]:
    out = []
    for p in batch:
        pl = p.payload
        text = lexical_text(
            str(pl.get("outlet") or ""), str(pl.get("title") or ""), str(pl.get("text") or "")
        )
        language = str(
            pl.get("language") or article_language(f"{pl.get('title') or ''}\n{pl.get('text') or ''}")
        )
        payload = {**pl, "language": language}
        out.append(dataclasses.replace(p, payload=payload, sparse=passage_vector(text, language)))
    return out


def copy_points(
    source: Source, target: VectorStore, batch: int = 256, progress: Callable[[int], None] | None = None
) -> int:
    """Upsert every point of ``source`` into ``target``; the number copied."""
    reencode = source.sparse != encoder().name
    copied = 0
    for points in source.batches(batch):
        target.upsert(_reencoded(points) if reencode else points)
        copied += len(points)
        if progress is not None:
            progress(copied)
    return copied


def verify(source_count: int, target: Any) -> int:
    """The target's count; StoreError when it holds fewer points than the source."""
    held = int(target.count())
    if held < source_count:
        raise StoreError(f"the target holds {held} points after copying {source_count}; run the copy again")
    return held
