"""The app factory: ``create_app(settings)`` builds a FastAPI app whose lifespan loads the models."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.api import (
    articles_router,
    ask_router,
    health_router,
    openai_router,
    search_router,
    web_router,
)
from service.api.errors import install_error_handlers
from service.api.middleware import BODY_ERRORS, BodyGuardMiddleware, RequestContextMiddleware
from service.api.schema_limits import install_schema_limits
from service.api.security import UNAUTHORIZED, require_key
from service.backends.store import StoreError
from service.backpressure import GenerationGate
from service.discovery import remove_owner
from service.keys import KeyRing
from service.metrics import Metrics, MetricsMiddleware
from service.settings import Settings

if TYPE_CHECKING:
    from ingest.pipeline import IngestService
    from service.backends.embedder import Embedder
    from service.backends.llm import Generator
    from service.backends.store import VectorStore
    from service.pipeline.answer import AnswerService
    from service.pipeline.retrieve import Retriever

log = logging.getLogger(__name__)


@dataclass
class Components:
    """The loaded backends and the services built on them (one set per app or CLI run).

    The app's lifespan puts each field on ``app.state``; routes take them through
    :mod:`service.deps`.
    """

    embedder: Embedder
    store: VectorStore
    generator: Generator
    ingest: IngestService
    retriever: Retriever
    answers: AnswerService

    def close(self) -> None:
        """Release the store (the embedded one holds a folder lock) and the LLM (thread, HTTP client)."""
        self.store.close()
        self.generator.close()


def build_components(
    settings: Settings, metrics: Metrics | None = None, *, background_index: bool = False
) -> Components:
    """Load the models and open the store (heavy: seconds); ``metrics`` receives their figures.
    ``background_index``: the store builds its search index in the background as points arrive
    (a long-running service; a one-shot command leaves it to ``fonti ingest``)."""
    from ingest.pipeline import IngestService
    from service.backends.embedder import build_embedder
    from service.backends.llm import build_generator
    from service.backends.store import build_store
    from service.pipeline.answer import AnswerService
    from service.pipeline.calibration import Calibrator, default_calibrator
    from service.pipeline.prompts import PromptLibrary
    from service.pipeline.retrieve import Retriever

    prompts = PromptLibrary(settings.prompts_dir)
    path = settings.calibration_file
    calibrator = Calibrator.load(path) if path is not None else default_calibrator()
    embedder = build_embedder(settings.embed, settings.models_dir)
    store = build_store(settings.store, embedder.dim, embedder.name, background_index=background_index)
    try:
        generator = build_generator(settings.llm, settings.models_dir)
    except Exception:
        store.close()
        raise
    if settings.llm.warmup:
        generator.warmup(prompts.system)
    retriever = Retriever(embedder, store, settings.retrieval.mode, settings.retrieval.relevance_weight)
    if metrics is not None:
        metrics.bind(store, generator)
    return Components(
        embedder=embedder,
        store=store,
        generator=generator,
        ingest=IngestService(embedder, store, settings.embed.batch_size, metrics),
        retriever=retriever,
        answers=AnswerService(retriever, generator, prompts, settings, metrics, calibrator),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: from the environment). Models load at start-up."""
    settings = settings or Settings()
    server = settings.server
    keys = KeyRing(server)  # KeyConfigError: unreadable key file, contradictory settings
    gate = GenerationGate(server.generation_slots, server.queue_depth, server.request_deadline_s)
    metrics = Metrics()
    metrics.bind_gate(gate)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gate.bind_loop()
        components = build_components(settings, metrics, background_index=True)
        for f in fields(components):
            setattr(app.state, f.name, getattr(components, f.name))  # read by service.deps
        try:
            log.info("fonti started: %d chunks in the store", components.store.count())
        except StoreError as exc:  # a Qdrant server still starting: GET /readyz reports it
            log.warning("fonti started, the store is not reachable yet: %s", exc)
        try:
            yield
        finally:
            await gate.shutdown(server.shutdown_grace_s)  # stop generations before the store closes
            components.close()
            remove_owner(app.state.owner_file)

    app = FastAPI(
        title="Fonti",
        version="0.1.0",
        description="Question answering over news, with citations to the outlets that reported each fact.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.keys = keys
    app.state.gate = gate  # backpressure counters: active, waiting, rejected, timed_out, cancelled
    app.state.owner_file = None  # `fonti serve` records itself as the store's owner here
    install_error_handlers(app)
    for module in (health_router, web_router):
        app.include_router(module.router)
    # Keys guard writes whenever configured, reads on request; only guarded routes declare it.
    guard = [Depends(require_key)]
    reads = guard if server.require_key_for_ask else []
    read_errors = UNAUTHORIZED if reads else {}
    app.include_router(articles_router.router, dependencies=reads, responses=read_errors)
    app.include_router(
        articles_router.writes,
        dependencies=guard if keys.configured else [],
        responses={**BODY_ERRORS, **(UNAUTHORIZED if keys.configured else {})},
    )
    for module in (search_router, ask_router, openai_router):
        app.include_router(module.router, dependencies=reads, responses={**BODY_ERRORS, **read_errors})
    install_schema_limits(app, server)
    # Starlette runs the middleware added last first: request id, metrics, CORS, body guard.
    app.add_middleware(
        BodyGuardMiddleware, max_bytes=server.max_body_bytes, multipart_paths=("/v1/articles",)
    )
    if server.cors_origins:
        # The widget runs on intranet pages of other origins; without this only Fonti's own pages may call.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=server.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestContextMiddleware)  # outermost: every response carries X-Request-ID
    return app
