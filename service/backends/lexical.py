"""A BM25-style sparse lexical vector, for Qdrant sparse vectors with the IDF modifier.

Qdrant computes the inverse document frequency at query time (``Modifier.IDF``), so a
chunk's vector holds only the saturated term frequency and the query's holds ones.
Tokens are lower-cased, accent-folded words; numbers keep their inner separators
("1,5", "20:10") so that figures are found verbatim. Token ids are a stable hash.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass

_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+", re.UNICODE)
_K1 = 1.2
_B = 0.75
_AVG_LEN = 60.0  # typical chunk length in tokens; only shapes the length normalisation

# Very common function words carry no signal and would only dilute the query.
# (a block of words, not ruff's preferred 100-line list literal)
_STOP = frozenset(
    """
    a ad al alla alle allo agli ai anche che chi con cui da dal dalla dalle dei del della delle
    dello di e ed gli ha hanno ho il in la le lo ma ne nei nel nella nelle non o per piu quale quali
    quando se si sono su sua sue suo suoi tra fra un una uno e è era erano essere stato stata sia
    the of and to in on at by for with from is are was were be been it its that this which who whom
    what how when where why an as or not did does do has have had according
    """.split()
)


@dataclass(frozen=True)
class SparseVec:
    """Indices and values of a sparse vector (indices unique)."""

    indices: list[int]
    values: list[float]


def fold(text: str) -> str:
    """Lower-case and strip accents: "Perché" and "perche" become the same token."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Lexical tokens of ``text`` without stop words."""
    return [t for t in _TOKEN.findall(fold(text)) if t not in _STOP]


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
