"""The ``e5_st`` and ``sentence_transformers`` embedding backends: a local sentence-transformers folder."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from service.backends.embedder.base import normalise
from service.backends.runtime import model_runtime_env

# Texts per forward pass. sentence-transformers sorts a call's texts by length, so small
# batches pad little: with 32 dev paragraphs per call, batches of 4 ran ~2.5x faster than
# one batch of 32 padded to the longest (scripts/bench_embed.py).
ENCODE_BATCH = 4


def native_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), as Linux reports it."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_dtype(dtype: str) -> str:
    """``auto`` → ``bfloat16`` on CPUs with native bf16, else ``float32``."""
    if dtype == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return dtype


class SentenceTransformerEmbedder:
    """Any local sentence-transformers model folder (no hub access)."""

    def __init__(
        self,
        model_path: Path,
        query_prefix: str,
        passage_prefix: str,
        threads: int,
        name: str | None = None,
        dtype: str = "float32",
    ):
        model_runtime_env()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the e5_st and sentence_transformers backends need `pip install torch==2.13.0` (CPU "
                "wheel) then `pip install sentence-transformers` (make install does both)"
            ) from exc
        if not Path(model_path).is_dir():
            raise RuntimeError(f"FONTI_EMBED_MODEL_PATH={model_path} is not a sentence-transformers folder")
        torch.set_num_threads(threads)
        # transformers draws a "Loading weights" bar on stderr, which is the JSON log stream.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self._model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self.dtype = resolve_dtype(dtype)
        if self.dtype == "bfloat16":
            # ~3x the float32 throughput where the CPU has bf16 dot products; vectors
            # stay within cosine 0.9999 of float32 (scripts/check_e5_conversion.py).
            self._model.to(torch.bfloat16)
        # renamed in sentence-transformers 6; keep working with older releases
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        self.dim = int(dim) if dim else int(self._model.encode(["x"]).shape[1])
        self.name = name or f"sentence-transformers/{Path(model_path).name}"
        self._qp, self._pp = query_prefix, passage_prefix
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            out = self._model.encode(
                texts, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True
            )
        return normalise(out)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode([self._pp + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self._qp + text])[0]
