"""The app factory: ``create_app(settings)`` builds a FastAPI app whose lifespan loads the models."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from typing import Any

from fastapi import FastAPI

from service.api import articles_router, ask_router, health_router, search_router
from service.api.errors import install_error_handlers
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Components:
    """The loaded backends and the services built on them (one set per app or CLI run)."""

    embedder: Any
    store: Any
    generator: Any
    ingest: Any
    retriever: Any
    answers: Any

    def close(self) -> None:
        """Release the store (local mode holds a folder lock)."""
        self.store.close()


def build_components(settings: Settings) -> Components:
    """Load the models and open the store (heavy: seconds)."""
    from ingest.pipeline import IngestService
    from service.backends.embedder import build_embedder
    from service.backends.llm import build_generator
    from service.backends.vector_store import build_store
    from service.pipeline.answer import AnswerService
    from service.pipeline.prompts import PromptLibrary
    from service.pipeline.retrieve import Retriever

    prompts = PromptLibrary(settings.prompts_dir)
    embedder = build_embedder(settings.embed, settings.models_dir)
    store = build_store(settings.store, embedder.dim, embedder.name)
    try:
        generator = build_generator(settings.llm, settings.models_dir)
    except Exception:
        store.close()
        raise
    warmup = getattr(generator, "warmup", None)
    if settings.llm.warmup and warmup is not None:
        warmup(prompts.system)
    retriever = Retriever(embedder, store)
    return Components(
        embedder=embedder,
        store=store,
        generator=generator,
        ingest=IngestService(embedder, store, settings.embed.batch_size),
        retriever=retriever,
        answers=AnswerService(retriever, generator, prompts, settings),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: from the environment). Models load at start-up."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        components = build_components(settings)
        for f in fields(components):
            setattr(app.state, f.name, getattr(components, f.name))
        log.info("fonti ready: %d chunks in the store", components.store.count())
        try:
            yield
        finally:
            components.close()

    app = FastAPI(
        title="Fonti",
        version="0.1.0",
        description="Question answering over news, with citations to the outlets that reported each fact.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for module in (health_router, articles_router, search_router, ask_router):
        app.include_router(module.router)
    return app
