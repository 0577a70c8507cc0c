"""The ``openai`` LLM backend: any OpenAI-compatible chat-completions server over HTTP.

llama.cpp's server, llama-cpp-python's ``python -m llama_cpp.server``, vLLM or a hosted
API. Fonti sends the same messages the in-process backend renders; the server applies
its chat template (the GGUF's own when it serves the same file). Replies stream as
server-sent events. A request that fails before its first token (connection refused
or reset, 429, 5xx) is retried with exponential backoff; once tokens have been shown
a failure ends the answer, since a retry would repeat them. Closing the iterator (the
Fonti client went away) closes the upstream HTTP stream, which stops the generation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Generator as PyGenerator
from pathlib import Path
from typing import Any

import httpx

from service.backends.llm.base import (
    ChatMessage,
    GenerationLoad,
    GenerationStats,
    Generator,
    LLMUnavailableError,
    TokenStep,
)
from service.settings import LLMSettings

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


class _Retryable(Exception):
    """A failure before the first token that another try may not have."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date, or absent: use the backoff


def _open_vocab(path: Path) -> Any:
    """The GGUF's tokenizer alone (vocab-only load: ~0.4 s, ~90 MB, no weights), or None."""
    try:
        import llama_cpp
        from llama_cpp._internals import LlamaModel
    except ImportError:
        return None
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    return LlamaModel(path_model=str(path), params=params, verbose=False)


class OpenAIGenerator(Generator):
    """:class:`~service.backends.llm.base.Generator` on an OpenAI-compatible ``/chat/completions``."""

    def __init__(
        self,
        settings: LLMSettings,
        vocab_path: Path | None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._settings = settings
        self._url = settings.base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        self._client = httpx.Client(
            base_url=self._url + "/",
            headers=headers,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            transport=transport,
        )
        self._sleep = sleep
        self._model = settings.model
        self.name = settings.model or self._url
        self.load = GenerationLoad()
        self._retries = 0
        self._vocab = _open_vocab(vocab_path) if vocab_path else None
        if self._vocab is None:
            log.warning(
                "no GGUF vocabulary for the openai backend (FONTI_LLM_MODEL_PATH): prompt tokens are "
                "estimated from characters"
            )

    @property
    def prefills(self) -> bool:
        """An OpenAI-compatible server cannot be asked to continue a prefilled reply."""
        return False

    @property
    def constrains(self) -> bool:
        """Whether the server is sent grammars (FONTI_LLM_GRAMMAR: llama.cpp's server takes GBNF)."""
        return self._settings.grammar

    @property
    def retries(self) -> int:
        """Requests retried so far (exported as a metric)."""
        return self._retries

    def count_tokens(self, text: str) -> int:
        if self._vocab is not None:
            return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        return max(1, math.ceil(len(text) / 3))  # BPE on Italian/English: ~3.5-4 chars a token

    def _model_name(self) -> str:
        """FONTI_LLM_MODEL, else the first model the server lists."""
        if not self._model:
            r = self._client.get("models")
            r.raise_for_status()
            models = r.json().get("data") or []
            if not models:
                raise LLMUnavailableError(f"{self._url}/models lists no model; set FONTI_LLM_MODEL")
            self._model = str(models[0]["id"])
        return self._model

    def _attempt(self, body: dict[str, Any], steps: list[TokenStep]) -> PyGenerator[str, None, None]:
        """One request: yield text deltas; :class:`_Retryable` for failures worth another try.

        The token log-probabilities the server sends are appended to ``steps``.
        """
        try:
            body = {"model": self._model_name(), **body}
            request = self._client.build_request("POST", "chat/completions", json=body)
            response = self._client.send(request, stream=True)
        except httpx.HTTPStatusError as exc:  # from GET /models
            message = f"{exc.request.url} answered {exc.response.status_code}"
            if exc.response.status_code == 429 or exc.response.status_code >= 500:
                raise _Retryable(message, _retry_after(exc.response)) from exc
            raise LLMUnavailableError(message + "; set FONTI_LLM_MODEL") from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"{self._url}: {type(exc).__name__}: {exc}") from exc
        try:
            if response.status_code != 200:
                response.read()
                message = (
                    f"{self._url}/chat/completions answered {response.status_code}: {response.text[:300]}"
                )
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Retryable(message, _retry_after(response))
                raise LLMUnavailableError(message)
            if response.headers.get("content-type", "").startswith("application/json"):
                # A server that ignores "stream": one JSON completion.
                response.read()
                choice = response.json()["choices"][0]
                steps.extend(_token_steps(choice))
                content = choice["message"].get("content")
                if content:
                    yield content
                return
            try:
                yield from self._sse_deltas(response, steps)
            except httpx.TransportError as exc:
                raise _Retryable(f"{self._url}: {type(exc).__name__} while streaming: {exc}") from exc
        finally:
            response.close()

    def _sse_deltas(self, response: httpx.Response, steps: list[TokenStep]) -> Iterator[str]:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # comments (pings), event names, blank separators
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise LLMUnavailableError(f"{self._url} sent a stream event that is not JSON") from exc
            if chunk.get("error"):
                raise _Retryable(f"{self._url} reported an error: {chunk['error']}")
            choices = chunk.get("choices") or []
            delta = (choices[0].get("delta") or {}).get("content") if choices else None
            if choices:
                steps.extend(_token_steps(choices[0]))
            if isinstance(delta, str) and delta:
                yield delta

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
        # ``slot`` is for in-process prompt caches; an LLM server keeps its own. The chat
        # API has no portable prefill: ``prefix`` is ignored (``prefills`` is False).
        stats = stats if stats is not None else GenerationStats()
        s = self._settings
        body: dict[str, Any] = {
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": s.temperature,
            "seed": s.seed,
            "stream": True,
            **(
                {"logprobs": True, "top_logprobs": min(top_logprobs, 20)}
                if top_logprobs and s.logprobs
                else {}
            ),
            **({"grammar": grammar} if grammar is not None and s.grammar else {}),
            **s.extra_body,
        }
        start = time.perf_counter()
        n = 0
        self.load.add(active=1)
        try:
            for attempt in range(s.max_retries + 1):
                try:
                    with contextlib.closing(self._attempt(body, stats.steps)) as deltas:
                        for delta in deltas:
                            if stats.first_token_s is None:
                                stats.first_token_s = time.perf_counter() - start
                            n += 1
                            yield delta
                    return
                except _Retryable as exc:
                    if n:
                        raise LLMUnavailableError(f"the LLM server failed mid-answer: {exc}") from exc
                    if attempt >= s.max_retries:
                        raise LLMUnavailableError(
                            f"the LLM server failed {attempt + 1} times: {exc}"
                        ) from exc
                    delay = min(MAX_BACKOFF_S, s.retry_backoff * 2**attempt)
                    if exc.retry_after is not None:
                        delay = min(MAX_BACKOFF_S, exc.retry_after)
                    log.warning("LLM request failed (%s); retry %d in %.1f s", exc, attempt + 1, delay)
                    self._retries += 1
                    self._sleep(delay)
        finally:
            self.load.add(active=-1)
            stats.completion_tokens = n
            stats.total_s = time.perf_counter() - start

    def check_ready(self) -> str | None:
        """None when the server answers ``GET /models``, else what failed."""
        try:
            r = self._client.get("models", timeout=min(5.0, self._settings.read_timeout))
        except httpx.HTTPError as exc:
            return f"{self._url}/models: {type(exc).__name__}: {exc}"
        if r.status_code != 200:
            return f"{self._url}/models answered {r.status_code}"
        return None

    def warmup(self, system_prompt: str) -> None:
        """Leave the system prompt in the server's prompt cache; a server not up yet is not fatal."""
        messages: list[ChatMessage] = [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": "Hi"},
        ]
        try:
            for _ in self.stream(messages, max_tokens=1):
                pass
        except LLMUnavailableError as exc:
            log.warning("LLM server not answering at start-up (GET /readyz reports it): %s", exc)

    def close(self) -> None:
        """Close the HTTP client and the vocabulary."""
        self._client.close()
        if self._vocab is not None:
            self._vocab.close()


def _token_steps(choice: dict[str, Any]) -> list[TokenStep]:
    """The steps of a choice's ``logprobs.content`` (token, top_logprobs); [] when absent.

    Malformed entries are skipped; a step always lists its own token.
    """
    content = (choice.get("logprobs") or {}).get("content") or []
    steps = []
    for t in content:
        if not isinstance(t, dict) or not isinstance(t.get("token"), str):
            continue
        if not _number(t.get("logprob")):
            continue
        top = {
            a["token"]: float(a["logprob"])
            for a in t.get("top_logprobs") or []
            if isinstance(a, dict) and isinstance(a.get("token"), str) and _number(a.get("logprob"))
        }
        top.setdefault(t["token"], float(t["logprob"]))
        steps.append(TokenStep(t["token"], top))
    return steps


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
