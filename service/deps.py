"""Typed FastAPI dependencies: what a route may take from the running app.

Routes declare what they use (``answers: AnswersDep``) instead of reading
``request.app.state`` untyped. The app factory (:mod:`service.app`) puts the settings,
metrics, keys and gate on the app when it is created, and the :class:`~service.app.Components`
when its lifespan has loaded them; these functions are the only readers. They are
``async`` so that FastAPI calls them on the event loop, not in a worker thread.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from ingest.pipeline import IngestService
from service.backends.llm import Generator
from service.backends.store import VectorStore
from service.backpressure import GenerationGate
from service.keys import KeyRing
from service.metrics import Metrics
from service.pipeline.answer import AnswerService
from service.pipeline.retrieve import Retriever
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_metrics(request: Request) -> Metrics:
    return cast(Metrics, request.app.state.metrics)


async def get_keys(request: Request) -> KeyRing:
    return cast(KeyRing, request.app.state.keys)


async def get_gate(request: Request) -> GenerationGate:
    return cast(GenerationGate, request.app.state.gate)


async def get_store(request: Request) -> VectorStore:
    return cast(VectorStore, request.app.state.store)


async def get_generator(request: Request) -> Generator:
    return cast(Generator, request.app.state.generator)


async def get_ingest(request: Request) -> IngestService:
    return cast(IngestService, request.app.state.ingest)


async def get_retriever(request: Request) -> Retriever:
    return cast(Retriever, request.app.state.retriever)


async def get_answers(request: Request) -> AnswerService:
    return cast(AnswerService, request.app.state.answers)


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
KeysDep = Annotated[KeyRing, Depends(get_keys)]
GateDep = Annotated[GenerationGate, Depends(get_gate)]
StoreDep = Annotated[VectorStore, Depends(get_store)]
GeneratorDep = Annotated[Generator, Depends(get_generator)]
IngestDep = Annotated[IngestService, Depends(get_ingest)]
RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
AnswersDep = Annotated[AnswerService, Depends(get_answers)]
