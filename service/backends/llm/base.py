"""What every LLM backend offers: the :class:`Generator` protocol and the types it shares.

Backends: :mod:`~service.backends.llm.llama_cpp` (a GGUF in-process) and
:mod:`~service.backends.llm.openai` (an OpenAI-compatible server); the factory
``build_generator`` is in the package.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict


class ChatMessage(TypedDict):
    role: str
    content: str


@dataclass
class GenerationStats:
    """Filled in while a generation runs; read after the iterator is exhausted."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV llama.cpp reused from the previous request
    completion_tokens: int = 0
    first_token_s: float | None = None
    total_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # One entry per generated token when ``stream(top_logprobs=k)`` asked for them and the
    # backend can tell: the piece generated and the k likeliest pieces at that step with their
    # log-probabilities (over the whole vocabulary, before any grammar). Empty: not known.
    steps: list[TokenStep] = field(default_factory=list)


@dataclass(frozen=True)
class TokenStep:
    """One step of a reply: the piece generated and the likeliest pieces with their log-probabilities."""

    piece: str
    top: dict[str, float]

    def logprob(self, piece: str) -> float:
        """The log-probability of ``piece`` at this step (-inf when it was not among the likeliest)."""
        return self.top.get(piece, float("-inf"))


class LLMUnavailableError(RuntimeError):
    """The model cannot answer now (an LLM server unreachable or failing); the message says why."""


class GenerationLoad:
    """Generations waiting for the model and generating now (read by the metrics at scrape time)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.waiting = 0
        self.active = 0

    def add(self, waiting: int = 0, active: int = 0) -> None:
        with self._guard:
            self.waiting += waiting
            self.active += active


# The prompt-cache slot of the short side prompts (follow-up rewriting, translation of a
# sentence): they share one, and never evict the answer prompt's cached prefix.
SIDE_SLOT = "side"


class Generator(Protocol):
    """Streams the assistant's reply to chat messages as text deltas.

    Backends subclass it explicitly, so they inherit the defaults of the optional
    capabilities (:attr:`prefills`, :attr:`retries`, :meth:`warmup`, :meth:`close`).
    """

    name: str
    load: GenerationLoad

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
        """Yield text deltas; the caller may stop iterating early to cancel.

        ``slot`` names a prompt cache: calls with different fixed system prompts (answers,
        follow-up rewriting) use different slots so none evicts another's prefix.
        ``prefix`` starts the reply (assistant prefill) when :attr:`prefills` is true:
        the deltas continue it and do not repeat it. Backends that cannot prefill ignore it.
        ``grammar`` (GBNF) constrains the reply where the backend can (:attr:`constrains`).
        ``top_logprobs``: record each step's likeliest pieces in ``stats.steps`` where the
        backend can.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's vocabulary."""
        ...

    def check_ready(self) -> str | None:
        """None when the model can answer now, else what is wrong (for GET /readyz)."""
        ...

    # Optional capabilities: a backend that subclasses the protocol inherits these no-ops.

    @property
    def prefills(self) -> bool:
        """Whether :meth:`stream` honours ``prefix`` (default: it does not)."""
        return False

    @property
    def constrains(self) -> bool:
        """Whether :meth:`stream` honours ``grammar`` (default: it does not)."""
        return False

    @property
    def retries(self) -> int | None:
        """Requests retried so far (exported as a metric); None: this backend never retries."""
        return None

    def warmup(self, system_prompt: str) -> None:
        """Prepare for the first request with the fixed system prompt (default: nothing to do)."""
        return None

    def close(self) -> None:
        """Release what the backend holds (default: nothing)."""
        return None


@contextlib.contextmanager
def closing(stream: Iterator[Any]) -> Iterator[None]:
    """Close a :meth:`Generator.stream` on leaving the block, not whenever it is garbage-collected.

    Closing the stream stops the model at once and releases it for the next request.
    """
    try:
        yield
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
