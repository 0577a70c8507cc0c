"""The retrieve service: hybrid search, then duplicate collapsing across pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.backends.embedder import Embedder
from service.backends.store import SparseVec, StoredPoint, VectorStore
from service.backends.store.lexical import query_vector
from service.pipeline.named_outlets import OutletNames
from service.text import tokens

# Two chunks from the same outlet whose words overlap this much are one passage
# (aggregator pages repeat the same paragraph under different articles).
DUPLICATE_JACCARD = 0.8
# Outlet names read from the store to recognise them in questions.
OUTLET_LIMIT = 10_000


@dataclass
class Passage:
    """A retrieved chunk, possibly standing for several identical copies."""

    chunk_id: str
    article_id: str
    outlet: str
    title: str
    text: str
    url: str | None
    published: str | None
    score: float  # fused rank score from the store
    dense_score: float  # cosine similarity of the query and the chunk
    article_ids: list[str] = field(default_factory=list)
    number: int = 0  # its number in the prompt, set when the prompt is built
    position: int = 0  # its place in the article (reading order)
    vector: np.ndarray | None = field(default=None, repr=False)  # stored dense vector

    @classmethod
    def from_point(cls, p: StoredPoint, query: np.ndarray) -> Passage:
        pl = p.payload
        dense = float(np.dot(p.dense, query)) if p.dense is not None else 0.0
        return cls(
            chunk_id=p.id,
            article_id=str(pl.get("article_id", "")),
            outlet=str(pl.get("outlet", "")),
            title=str(pl.get("title", "")),
            text=str(pl.get("text", "")),
            url=pl.get("url"),
            published=pl.get("published"),
            position=int(pl.get("position") or 0),
            score=p.score,
            dense_score=dense,
            article_ids=[str(pl.get("article_id", ""))],
            vector=p.dense,
        )


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def collapse_duplicates(passages: list[Passage]) -> list[Passage]:
    """Merge same-outlet near-identical passages, keeping every article id that carries them."""
    kept: list[tuple[Passage, set[str]]] = []
    for p in passages:
        words = set(tokens(p.text))
        for q, q_words in kept:
            if q.outlet == p.outlet and _jaccard(words, q_words) >= DUPLICATE_JACCARD:
                for aid in p.article_ids:
                    if aid not in q.article_ids:
                        q.article_ids.append(aid)
                break
        else:
            kept.append((p, words))
    return [p for p, _ in kept]


def diversify(
    passages: list[Passage], relevance_weight: float, same_outlet_penalty: float = 0.1
) -> list[Passage]:
    """Maximal marginal relevance over the ranked passages, with a penalty for a repeated outlet.

    Relevance is the rank (1 for the first, falling linearly); redundancy is the highest
    cosine to a passage already chosen. ``relevance_weight`` 1.0 keeps the ranking as it is.
    """
    if relevance_weight >= 1.0 or len(passages) < 3 or any(p.vector is None for p in passages):
        return passages
    n = len(passages)
    vectors = np.stack([np.asarray(p.vector, dtype=np.float32) for p in passages])
    sims = vectors @ vectors.T
    relevance = [1.0 - i / n for i in range(n)]
    chosen: list[int] = []
    outlets: set[str] = set()
    left = list(range(n))
    while left:

        def value(i: int) -> float:
            redundancy = max((float(sims[i, j]) for j in chosen), default=0.0)
            penalty = same_outlet_penalty if passages[i].outlet in outlets else 0.0
            return relevance_weight * relevance[i] - (1 - relevance_weight) * redundancy - penalty

        best = max(left, key=value)
        chosen.append(best)
        outlets.add(passages[best].outlet)
        left.remove(best)
    return [passages[i] for i in chosen]


def focus_on_top_articles(passages: list[Passage], focus: int) -> list[Passage]:
    """Passages of the articles behind the ``focus`` best passages first, then the rest.

    A short question often scores many passages almost alike; when the best ones come
    from one story, its other paragraphs are better evidence than equally scored
    paragraphs of unrelated stories (ranks 6-8 of "who denied the contacts?" were a
    blackout, a shooting and a trial, while the story's Peskov paragraph was 9th).
    """
    if focus <= 0:
        return passages
    top = {p.article_id for p in passages[:focus]}
    return [p for p in passages if p.article_id in top] + [p for p in passages if p.article_id not in top]


class Retriever:
    """Finds passages for a query in the vector store."""

    def __init__(
        self, embedder: Embedder, store: VectorStore, mode: str = "hybrid", relevance_weight: float = 1.0
    ):
        self._embedder = embedder
        self._store = store
        self._mode = mode
        self._relevance_weight = relevance_weight
        self._outlets = OutletNames(lambda: store.outlets(OUTLET_LIMIT))

    @property
    def embedder(self) -> Embedder:
        """The embedder queries go through (shared with the support checks)."""
        return self._embedder

    def named_outlets(self, question: str) -> list[str]:
        """Stored outlets the question names (see :mod:`service.pipeline.named_outlets`)."""
        return self._outlets.get().find(question)

    def search(
        self,
        query: str,
        top_k: int,
        candidates: int | None = None,
        where: dict[str, Any] | None = None,
        focus: int = 0,
    ) -> list[Passage]:
        """Top ``top_k`` distinct passages for ``query`` (hybrid dense + lexical, RRF-fused).

        ``focus`` > 0 prefers the articles of the ``focus`` best passages
        (:func:`focus_on_top_articles`); 0 keeps the plain ranking.
        """
        qvec = self._embedder.embed_query(query)
        # "dense" leaves the lexical list out of the fusion (for comparisons).
        sparse = query_vector(query) if self._mode == "hybrid" else SparseVec([], [])
        points = self._store.hybrid_search(qvec, sparse, max(top_k, candidates or 0), where)
        passages = collapse_duplicates([Passage.from_point(p, qvec) for p in points])
        passages = diversify(passages, self._relevance_weight)
        return focus_on_top_articles(passages, focus)[:top_k]
