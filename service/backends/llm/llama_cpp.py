"""The ``llama_cpp`` LLM backend: a GGUF model run in-process by llama-cpp-python."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

from service.backends.llm.base import ChatMessage, GenerationLoad, GenerationStats, Generator
from service.backends.llm.token_logprobs import TopLogprobs
from service.backends.runtime import model_runtime_env
from service.settings import LLMSettings

log = logging.getLogger(__name__)


def open_llama(settings: LLMSettings, model_path: Path, n_ctx: int) -> Any:
    """A ``llama_cpp.Llama`` on ``model_path`` with the thread, batch and GPU settings (mmap'd).

    With ``draft_tokens`` it drafts by prompt lookup (:func:`_prompt_lookup_classes`).
    """
    from llama_cpp import Llama

    cls: Any = Llama
    extra: dict[str, Any] = {}
    if settings.draft_tokens > 0:
        cls, lookup = _prompt_lookup_classes()
        extra["draft_model"] = lookup(num_pred_tokens=settings.draft_tokens)
    return cls(
        model_path=str(model_path),
        n_ctx=n_ctx,
        n_threads=settings.n_threads,
        n_threads_batch=settings.n_threads_batch,
        n_batch=settings.n_batch,
        n_gpu_layers=settings.n_gpu_layers,
        flash_attn=settings.flash_attn,
        seed=settings.seed,
        use_mmap=True,
        verbose=False,
        **extra,
    )


@cache
def _prompt_lookup_classes() -> tuple[type, type]:
    """``Llama`` whose batches carry every position's logits only when they check a draft.

    With a draft model llama-cpp-python asks llama.cpp for the logits of every position of
    every batch, the prompt's hundreds included (each a 151k-entry row, projected and then
    copied into an array sized for one batch only: past position ``n_batch`` that copy
    fails). Sampling reads the logits inside llama.cpp, so this ``eval`` (llama-cpp-python
    0.3.36's, without the copy) asks for them on the batches that check a draft — a
    sampled token and its proposals — and for a prompt's last position only, as without
    drafting. Fonti never reads the copied logits (its log-probabilities come from a logits
    processor, called with llama.cpp's own).
    """
    import numpy as np
    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    class PromptLookup(LlamaPromptLookupDecoding):
        """Prompt lookup that can be paused: a logits processor sees the drafted tokens as
        input, so a generation that records log-probabilities runs without drafts."""

        paused = False

        def __call__(self, input_ids: Any, /, **kwargs: Any) -> Any:
            if self.paused:
                return np.array([], dtype=np.intc)
            return super().__call__(input_ids, **kwargs)

    class PromptLookupLlama(Llama):
        def eval(self, tokens: Sequence[int]) -> None:
            checks_draft = len(tokens) <= 1 + getattr(self.draft_model, "num_pred_tokens", 0)
            self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
            for i in range(0, len(tokens), self.n_batch):
                batch = list(tokens[i : i + self.n_batch])
                n_past = self.n_tokens
                self._batch.set_batch(batch=batch, n_past=n_past, logits_all=checks_draft)
                self._ctx.decode(self._batch)
                self.input_ids[n_past : n_past + len(batch)] = batch
                self.n_tokens += len(batch)
                self._requires_eval = False

    return PromptLookupLlama, PromptLookup


class LlamaCppGenerator(Generator):
    """A GGUF model run in-process by llama-cpp-python, through its chat template.

    One model serves one generation at a time: a lock serialises them. llama.cpp keeps
    the KV cache of the previous prompt and reuses the longest common prefix, so the
    fixed system prompt is processed once, not per request; each generation's stats say
    how many prompt tokens were reused (``cached_tokens``).
    """

    def __init__(self, settings: LLMSettings, model_path: Path):
        model_runtime_env()
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the llama_cpp backend needs llama-cpp-python; run `make install` (it builds it with "
                'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "'
                '-DLLAVA_BUILD=OFF")'
            ) from exc
        self._settings = settings
        self._model_path = model_path
        self._llm = self._load(settings.n_ctx)
        # One more llama.cpp model and context per other prompt-cache slot, made at its first
        # use: they map the same weights file (shared pages), but each repacks its weights (~0.7 GB).
        self._slots: dict[str, Any] = {"answer": self._llm}
        self._formatter = _gguf_chat_formatter(self._llm)
        self.name = model_path.name
        self.lock = threading.Lock()
        self.load = GenerationLoad()
        self._prompt_log = settings.prompt_log
        # One long-lived model thread: llama.cpp's OpenMP pool belongs to the thread that calls it.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fonti-llm")

    def _load(self, n_ctx: int) -> Any:
        return open_llama(self._settings, self._model_path, n_ctx)

    def _context(self, slot: str) -> Any:
        if slot not in self._slots:
            self._slots[slot] = self._load(self._settings.n_ctx)
        return self._slots[slot]

    @property
    def chat_format(self) -> str | None:
        """The chat template llama-cpp-python picked ('chat_template.default': the GGUF's own)."""
        return str(self._llm.chat_format) if self._llm.chat_format is not None else None

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    @property
    def prefills(self) -> bool:
        """Replies can be prefilled when the GGUF's own chat template renders the prompt."""
        return self._formatter is not None

    @property
    def constrains(self) -> bool:
        """llama.cpp samples under a GBNF grammar."""
        return True

    def prompt_token_ids(self, messages: Sequence[ChatMessage], prefix: str = "") -> list[int] | None:
        """The exact tokens ``create_chat_completion`` feeds the model for ``messages``.

        Rendered with the GGUF's own chat template and tokenized as llama-cpp-python's
        chat handler does, then ``prefix`` (the start of the reply); None when another
        chat format is in use.
        """
        if self._formatter is None:
            return None
        return self._tokens(self._formatter(messages=list(messages)).prompt + prefix)

    def _tokens(self, prompt: str) -> list[int]:
        return list(self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        stats: GenerationStats | None = None,
        slot: str = "answer",
        prefix: str = "",
        grammar: str | None = None,
        top_logprobs: int = 0,
    ) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        self.load.add(waiting=1)
        try:
            self.lock.acquire()
        finally:
            self.load.add(waiting=-1)
        self.load.add(active=1)
        try:
            from llama_cpp import LlamaGrammar, LogitsProcessorList

            start = time.perf_counter()
            ctx = self._context(slot)
            rendered = self._formatter(messages=list(messages)) if self._formatter is not None else None
            ids = self._tokens(rendered.prompt + prefix) if rendered is not None else None
            if ids is not None:
                stats.prompt_tokens = len(ids)
                stats.cached_tokens = reusable_prefix(list(ctx._input_ids), ids)
            recorder = TopLogprobs(ctx, top_logprobs) if top_logprobs > 0 else None
            sampling: dict[str, Any] = {
                "max_tokens": max_tokens,
                "temperature": self._settings.temperature,
                "seed": self._settings.seed,
                "stream": True,
            }
            if recorder is not None:  # a Python call per token: only when asked for
                sampling["logits_processor"] = LogitsProcessorList([recorder])
            draft = getattr(ctx, "draft_model", None)
            if draft is not None:
                draft.paused = recorder is not None
            if grammar is not None:
                sampling["grammar"] = LlamaGrammar.from_string(grammar, verbose=False)
            if prefix and rendered is not None and ids is not None:
                chunks = continue_reply(ctx, rendered, ids, **sampling)
            else:
                chunks = ctx.create_chat_completion(messages=list(messages), **sampling)
            # The model runs on its own thread, decoding the next token while the caller
            # (SSE through the event loop) handles this one: the model never waits for the
            # network or a busy core's scheduler between tokens.
            out: queue.SimpleQueue[str | BaseException | None] = queue.SimpleQueue()
            stop = threading.Event()
            done = self._worker.submit(self._produce, chunks, out, stop, stats, start)
            last = None
            written: list[str] = []
            try:
                while (item := out.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    last = item
                    written.append(item)
                    yield item
            finally:
                stop.set()
                done.result()
                if draft is not None and not draft.paused:
                    # The context also holds proposals evaluated but never accepted.
                    stats.completion_tokens = self.count_tokens("".join(written))
                else:
                    # A delta can carry several tokens (multi-byte characters); the context
                    # holds every generated token but the last one sampled.
                    evaluated = ctx.n_tokens - len(ids) if ids is not None else 0
                    stats.completion_tokens = max(stats.completion_tokens, evaluated)
                if recorder is not None:
                    stats.steps = recorder.steps(last)
                if self._prompt_log is not None:
                    self._log_prompt(slot, messages, max_tokens, stats, prefix)
        finally:
            self.load.add(active=-1)
            self.lock.release()

    @staticmethod
    def _produce(
        chunks: Iterator[Any],
        out: queue.SimpleQueue[str | BaseException | None],
        stop: threading.Event,
        stats: GenerationStats,
        start: float,
    ) -> None:
        """Run the generation on the model thread, passing text deltas to ``out``; None ends them."""
        try:
            for chunk in chunks:
                if stop.is_set():  # the caller stopped reading: stop generating
                    break
                delta = chunk_text(chunk)
                if not isinstance(delta, str) or not delta:
                    continue
                if stats.first_token_s is None:
                    stats.first_token_s = time.perf_counter() - start
                stats.completion_tokens += 1
                out.put(delta)
        except BaseException as exc:  # re-raised in the caller's thread
            out.put(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
            stats.total_s = time.perf_counter() - start
            out.put(None)

    def _log_prompt(
        self,
        slot: str,
        messages: Sequence[ChatMessage],
        max_tokens: int,
        stats: GenerationStats,
        prefix: str = "",
    ) -> None:
        """Append one generation to FONTI_LLM_PROMPT_LOG (called under the lock: lines never interleave)."""
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "slot": slot,
            "messages": list(messages),
            "prefix": prefix,
            "max_tokens": max_tokens,
            "prompt_tokens": stats.prompt_tokens,
            "cached_tokens": stats.cached_tokens,
            "completion_tokens": stats.completion_tokens,
            "first_token_s": stats.first_token_s,
            "total_s": stats.total_s,
        }
        assert self._prompt_log is not None
        try:
            with self._prompt_log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:  # diagnostics must never break an answer
            log.warning("cannot write the prompt log %s: %s", self._prompt_log, exc)

    def close(self) -> None:
        """Let the model thread end once idle."""
        self._worker.shutdown(wait=False)

    def check_ready(self) -> str | None:
        loaded = getattr(self._llm, "_ctx", None) is not None
        return None if loaded else "the model is not loaded"

    def warmup(self, system_prompt: str) -> None:
        """Page the weights in and leave the fixed system prompt in the KV cache.

        The first user request then reuses the cached prefix instead of paying for it.
        """
        messages: list[ChatMessage] = [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": "Hi"},
        ]
        for _ in self.stream(messages, max_tokens=1):
            pass


def reusable_prefix(cached: Sequence[int], prompt: Sequence[int]) -> int:
    """Prompt tokens llama.cpp will not recompute: the common prefix with the cached tokens.

    Mirrors ``Llama.generate``: when the whole prompt is cached, the last token is
    evaluated again to refresh the logits.
    """
    n = 0
    for a, b in zip(cached, prompt, strict=False):
        if a != b:
            break
        n += 1
    return min(n, max(len(prompt) - 1, 0))


def continue_reply(llm: Any, rendered: Any, ids: list[int], **sampling: Any) -> Any:
    """Complete a chat prompt already rendered and extended with the start of the reply.

    llama-cpp-python's chat completion cannot prefill a reply. This is the call its chat
    handler makes — the template's stop strings and stopping criteria — on ``ids``:
    ``rendered.prompt`` (a chat formatter's response) plus the prefix, tokenized.
    """
    stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop] if rendered.stop else []
    return llm.create_completion(
        prompt=ids, stop=stop, stopping_criteria=rendered.stopping_criteria, **sampling
    )


def chunk_text(chunk: dict[str, Any]) -> Any:
    """The text of a streamed chunk: a chat chunk's delta, or a (prefilled) completion chunk's text."""
    choice = chunk["choices"][0]
    return choice["delta"].get("content") if "delta" in choice else choice.get("text")


def _gguf_chat_formatter(llm: Any) -> Any:
    """The formatter llama-cpp-python builds from the GGUF's chat template, if that is the format in use."""
    template = llm.metadata.get("tokenizer.chat_template")
    if llm.chat_format != "chat_template.default" or not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def text(token: int) -> str:
        return str(llm._model.token_get_text(token)) if token != -1 else ""

    return Jinja2ChatFormatter(
        template=template,
        eos_token=text(llm.token_eos()),
        bos_token=text(llm.token_bos()),
        stop_token_ids=[llm.token_eos()],
    )
