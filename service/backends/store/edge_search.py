"""Hybrid search on an Edge shard: dense and lexical lists fused by reciprocal rank, deterministically.

Edge's sparse search returns points with equal scores in a different order from one call
to the next (aggregator pages repeat paragraphs word for word, so ties are common), and so
did its built-in RRF fusion: the same question could rank passages differently twice in a
row. Here both lists are fetched in one batch, ties are ordered by point id (every point
tied at the cut is fetched first, so which ones make the list is decided the same way), and
the lists are fused with Qdrant's RRF (k = 2: a point at 0-based position p scores
1 / (p + 2) per list). Equal fused scores are ordered by dense similarity, then id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from service.backends.store.base import DENSE, LEXICAL, SparseVec, StoredPoint

RRF_K = 2
# Points tied with the last lexical candidate that are fetched to order the tie (beyond it, the
# order among the tied points at the cut is the engine's).
TIE_CAP = 8


def edge_filter(where: dict[str, Any] | None) -> Any:
    """An Edge filter from ``where``: ``{"field": value}`` matches a value, a list any of
    them; ``"!field"`` excludes them; ``"field>="`` / ``"field<"`` bound a date range."""
    from qdrant_edge import FieldCondition, Filter, MatchAny, MatchValue, RangeDateTime

    if not where:
        return None
    must: list[Any] = []
    must_not: list[Any] = []
    for key, value in where.items():
        if key.endswith(">=") or key.endswith("<"):
            field, bound = (key[:-2], "gte") if key.endswith(">=") else (key[:-1], "lt")
            must.append(FieldCondition(key=field, range=RangeDateTime(**{bound: value})))
            continue
        target = must_not if key.startswith("!") else must
        field = key.lstrip("!")
        if isinstance(value, list | tuple | set):
            target.append(FieldCondition(key=field, match=MatchAny(any=list(value))))
        else:
            target.append(FieldCondition(key=field, match=MatchValue(value=value)))
    return Filter(must=must or None, must_not=must_not or None)


def _ordered(points: list[Any]) -> list[Any]:
    return sorted(points, key=lambda p: (-p.score, str(p.id)))


def hybrid_search(
    read: Callable[[Callable[[Any], Any]], Any],
    dense: np.ndarray,
    sparse: SparseVec,
    limit: int,
    where: dict[str, Any] | None = None,
) -> list[StoredPoint]:
    """Points ranked by RRF of the dense and lexical lists (``limit`` each), with their dense
    vectors; ``read`` runs a call on the shard."""
    from qdrant_edge import Query as Q
    from qdrant_edge import QueryBatchRequest, QueryRequest, SparseVector

    flt = edge_filter(where)
    query = dense.astype(np.float32)
    common: dict[str, Any] = {"filter": flt, "with_payload": True, "with_vector": [DENSE]}
    requests = [QueryRequest(limit=limit, query=Q.Nearest(query.tolist(), using=DENSE), **common)]
    lexical_query = Q.Nearest(SparseVector(sparse.indices, sparse.values), using=LEXICAL)
    if sparse.indices:
        requests.append(QueryRequest(limit=limit + 1, query=lexical_query, **common))
    results = read(lambda s: s.query_batch(QueryBatchRequest(requests)))
    lists = [_ordered(results[0])[:limit]]
    if sparse.indices:
        lexical = _ordered(results[1])
        if len(lexical) > limit and lexical[limit - 1].score == lexical[limit].score:
            # a tie across the cut: fetch every point with that score, then cut by id
            tied = QueryRequest(
                limit=limit * TIE_CAP, query=lexical_query, score_threshold=lexical[limit - 1].score, **common
            )
            lexical = _ordered(read(lambda s: s.query(tied)))
        lists.append(lexical[:limit])
    fused: dict[str, float] = {}
    points: dict[str, Any] = {}
    for ranked in lists:
        for position, p in enumerate(ranked):
            key = str(p.id)
            fused[key] = fused.get(key, 0.0) + 1.0 / (position + RRF_K)
            points.setdefault(key, p)
    vectors = {k: np.asarray(p.vector[DENSE], dtype=np.float32) for k, p in points.items()}
    similarity = {
        k: float(np.dot(v, query) / (np.linalg.norm(v) * np.linalg.norm(query) or 1.0))
        for k, v in vectors.items()
    }
    order = sorted(fused, key=lambda k: (-fused[k], -similarity[k], k))[:limit]
    return [
        StoredPoint(id=k, payload=dict(points[k].payload or {}), score=fused[k], dense=vectors[k])
        for k in order
    ]
