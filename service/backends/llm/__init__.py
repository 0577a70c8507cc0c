"""LLM backends behind one small protocol (:mod:`~service.backends.llm.base`), chosen by
``FONTI_LLM_BACKEND``."""

from __future__ import annotations

from pathlib import Path

from service.backends.llm.base import (
    SIDE_SLOT,
    ChatMessage,
    GenerationLoad,
    GenerationStats,
    Generator,
    LLMUnavailableError,
    TokenStep,
    closing,
)
from service.model_prep import ModelFileError
from service.model_prep.gguf import resolve_gguf
from service.settings import LLMSettings

__all__ = [
    "SIDE_SLOT",
    "ChatMessage",
    "GenerationLoad",
    "GenerationStats",
    "Generator",
    "LLMUnavailableError",
    "TokenStep",
    "build_generator",
    "closing",
]


def build_generator(settings: LLMSettings, models_dir: Path) -> Generator:
    """The one factory: backend chosen by ``settings.backend``."""
    if settings.backend == "llama_cpp":
        from service.backends.llm.llama_cpp import LlamaCppGenerator

        return LlamaCppGenerator(settings, resolve_gguf(settings.model_path, models_dir))
    if settings.backend == "openai":
        from service.backends.llm.openai import OpenAIGenerator

        try:
            vocab: Path | None = resolve_gguf(settings.model_path, models_dir)
        except ModelFileError:
            vocab = None
        return OpenAIGenerator(settings, vocab)
    raise RuntimeError(f"unknown LLM backend {settings.backend!r}")
