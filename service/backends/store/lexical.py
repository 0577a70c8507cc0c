"""A BM25-style sparse lexical vector, for Qdrant sparse vectors with the IDF modifier.

Qdrant computes the inverse document frequency at query time (``Modifier.IDF``), so a
chunk's vector holds only the saturated term frequency and the query's holds ones.
Tokens are :func:`service.text.tokens` (lower-cased, accent-folded words and verbatim
figures, without stop words); token ids are a stable hash.
"""

from __future__ import annotations

import zlib
from collections import Counter

from service.backends.store.base import SparseVec
from service.text import tokens

_K1 = 1.2
_B = 0.75
_AVG_LEN = 60.0  # typical chunk length in tokens; only shapes the length normalisation


def _token_id(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF


def _vector(weights: dict[int, float]) -> SparseVec:
    items = sorted(weights.items())
    return SparseVec([i for i, _ in items], [float(v) for _, v in items])


def passage_vector(text: str) -> SparseVec:
    """BM25 term-frequency part for a stored chunk."""
    toks = tokens(text)
    if not toks:
        return SparseVec([], [])
    norm = _K1 * (1 - _B + _B * len(toks) / _AVG_LEN)
    weights: dict[int, float] = {}
    for tok, tf in Counter(toks).items():
        tid = _token_id(tok)
        weights[tid] = weights.get(tid, 0.0) + tf * (_K1 + 1) / (tf + norm)
    return _vector(weights)


def query_vector(text: str) -> SparseVec:
    """Binary query vector; Qdrant's IDF modifier weighs each term."""
    return _vector({_token_id(t): 1.0 for t in set(tokens(text))})
