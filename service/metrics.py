"""Prometheus metrics of one Fonti app (GET /metrics).

Each app has its own registry, so several apps in one process (tests) do not mix
their figures. HTTP requests are counted by an ASGI middleware labelled with the
route template (``/v1/ask``), never the raw path, so unknown paths cannot grow the
label set. The answer and ingest services report through :class:`Metrics` methods;
gauges (store size, generations waiting and running) are read at scrape time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from service.backends.llm import Generator
    from service.backends.store import VectorStore

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 12, 20, 30, 60, 120)
TOKENS_PER_S_BUCKETS = (1, 2, 4, 6, 8, 10, 15, 20, 30, 50, 100, 200)


class _GateCollector(Collector):
    """Exports a plain integer counted elsewhere (a backend, the generation gate) as a counter."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]):
        self._name, self._doc, self._read = name, documentation, read

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self._name, self._doc, value=self._read())


def _reader(obj: Any, attr: str) -> Callable[[], int]:
    return lambda: int(getattr(obj, attr))


class Metrics:
    """The app's metrics; plain Python, usable without FastAPI."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "fonti_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "fonti_http_request_duration_seconds",
            "Time from request to the last byte of the response (a whole streamed answer included).",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "fonti_answer_first_token_seconds",
            "Time from the start of generation to the model's first token.",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "fonti_answer_tokens_per_second",
            "Generated tokens per second after the first token, per answer.",
            buckets=TOKENS_PER_S_BUCKETS,
            registry=r,
        )
        self.completion_tokens = Counter(
            "fonti_answer_completion_tokens", "Tokens generated for answers.", registry=r
        )
        self.prompt_tokens = Counter(
            "fonti_answer_prompt_tokens",
            "Prompt tokens of answers (llama_cpp backend).",
            registry=r,
        )
        self.prompt_tokens_cached = Counter(
            "fonti_answer_prompt_tokens_cached",
            "Prompt tokens of answers whose KV cache llama.cpp reused from the previous request "
            "(the shared prefix); cached / prompt tokens is the cache hit rate.",
            registry=r,
        )
        self.step_seconds = Histogram(
            "fonti_answer_step_seconds",
            "Time of each step of an answer: retrieval, evidence (the one prompt evaluation of the "
            "passages), short_answer, answer (its writing), translation (sentences rewritten into "
            "the question's language), followup (a follow-up rewritten to stand alone).",
            ["step"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_tokens = Counter(
            "fonti_model_tokens",
            "Tokens the model handled for answers, by step (as in fonti_answer_step_seconds) and "
            "kind: prompt (all prompt tokens), cached (prompt tokens whose KV cache was reused), "
            "completion (generated).",
            ["step", "kind"],
            registry=r,
        )
        self.answers = Counter(
            "fonti_answers", "Answers by outcome (answered, abstained).", ["outcome"], registry=r
        )
        self.generations_waiting = Gauge(
            "fonti_generations_waiting", "Generations waiting for the model (queue depth).", registry=r
        )
        self.generations_active = Gauge("fonti_generations_active", "Generations running now.", registry=r)
        self.ingested_chunks = Counter(
            "fonti_ingested_chunks", "Chunks written to the store by ingestion.", registry=r
        )
        self.ingested_articles = Counter(
            "fonti_ingested_articles", "Articles ingested, by status.", ["status"], registry=r
        )
        self.store_points = Gauge("fonti_store_points", "Chunks in the store (NaN: unreachable).", registry=r)
        for outcome in ("answered", "abstained"):
            self.answers.labels(outcome)
        for status in ("ingested", "skipped"):
            self.ingested_articles.labels(status)

    def bind(self, store: VectorStore, generator: Generator) -> None:
        """Read the store size and the generation queue at scrape time."""

        def points() -> float:
            try:
                return float(store.count())
            except Exception as exc:  # a scrape must not fail because the store is down
                log.warning("store size unavailable for /metrics: %s", exc)
                return float("nan")

        self.store_points.set_function(points)
        if generator.retries is not None:
            self.registry.register(
                _GateCollector(
                    "fonti_llm_retries",
                    "Requests to the LLM server retried (openai backend).",
                    lambda: int(generator.retries or 0),
                )
            )

    def bind_gate(self, gate: Any) -> None:
        """Export the generation queue (service/backpressure.py): depth, running, and its refusals."""
        self.generations_waiting.set_function(lambda: float(gate.waiting))
        self.generations_active.set_function(lambda: float(gate.active))
        counters = {
            "fonti_generation_rejections": ("rejected", "Answers refused with 503: queue full, stopping."),
            "fonti_generation_timeouts": ("timed_out", "Answers stopped at FONTI_REQUEST_DEADLINE_S (504)."),
            "fonti_generation_cancellations": ("cancelled", "Stopped early: client gone, shutdown."),
        }
        for name, (attr, doc) in counters.items():
            self.registry.register(_GateCollector(name, doc, _reader(gate, attr)))

    def observe_generation(
        self,
        first_token_s: float | None,
        tokens: int,
        total_s: float,
        prompt_tokens: int = 0,
        cached_tokens: int = 0,
    ) -> None:
        """Record one generation's time to first token, decode speed and prompt-cache reuse."""
        self.completion_tokens.inc(tokens)
        self.prompt_tokens.inc(prompt_tokens)
        self.prompt_tokens_cached.inc(cached_tokens)
        if first_token_s is None:
            return
        self.first_token.observe(first_token_s)
        decode_s = total_s - first_token_s
        if tokens > 1 and decode_s > 0:
            self.tokens_per_second.observe((tokens - 1) / decode_s)

    def observe_steps(self, seconds: Mapping[str, float], spent: Iterable[tuple[str, Any]]) -> None:
        """Record one answer's time per step and the model's tokens per step.

        ``spent`` holds (step, :class:`~service.backends.llm.GenerationStats`) pairs, one per
        model call; a step may have several (one per translated sentence).
        """
        for step, value in seconds.items():
            self.step_seconds.labels(step).observe(value)
        for step, stats in spent:
            self.model_tokens.labels(step, "prompt").inc(stats.prompt_tokens)
            self.model_tokens.labels(step, "cached").inc(stats.cached_tokens)
            self.model_tokens.labels(step, "completion").inc(stats.completion_tokens)

    def observe_answer(self, abstained: bool) -> None:
        """Count one finished answer."""
        self.answers.labels("abstained" if abstained else "answered").inc()

    def observe_ingest(self, statuses: Iterable[str], chunks: int) -> None:
        """Count ingested articles (by status) and the chunks written."""
        for status in statuses:
            self.ingested_articles.labels(status).inc()
        self.ingested_chunks.inc(chunks)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware counting HTTP requests by route template and status, with latency."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)
