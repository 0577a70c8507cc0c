"""POST /v1/ask: answer a question with outlet citations (JSON, or server-sent events)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from service.api.errors import ApiError
from service.api.schemas import AskIn, AskOut, ErrorOut
from service.pipeline.followup import Turn

router = APIRouter(prefix="/v1", tags=["ask"])
log = logging.getLogger(__name__)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _event_stream(events: Iterator[Any]) -> Iterator[str]:
    try:
        for ev in events:
            if ev.kind == "token":
                yield _sse("token", {"text": ev.data})
            elif ev.kind == "citation":
                yield _sse("citation", asdict(ev.data))
            elif ev.kind == "done":
                yield _sse("done", ev.data.to_dict())
    except Exception as exc:  # the status line is sent already: report in-band
        log.exception("answer stream failed")
        yield _sse("error", {"error": f"{type(exc).__name__}: {exc}"})
    finally:
        close = getattr(events, "close", None)
        if close:
            close()  # stops generation when the client went away


class ClosingStreamingResponse(StreamingResponse):
    """Streams a sync iterator and closes it when the response ends, however it ends.

    When the client goes away Starlette cancels the response; the iterator would then
    be closed only when garbage-collected, and the model (or the upstream LLM server)
    would go on generating for nobody. Closing it here stops the generation at once.
    """

    def __init__(self, content: Iterator[str], **kwargs: Any):
        super().__init__(content, **kwargs)
        self._source = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(close)


@router.post(
    "/ask",
    response_model=AskOut,
    responses={
        422: {"model": ErrorOut},
        200: {"content": {"text/event-stream": {}}, "description": "JSON answer, or SSE when streaming"},
    },
)
def ask(body: AskIn, request: Request) -> Any:
    """Answer from the stored articles; `citations[].id` is the `[id]` marker in `answer`."""
    question = body.question.strip()
    limit = request.app.state.settings.server.max_question_chars
    if not question:
        raise ApiError(422, "question: must not be blank")
    if len(question) > limit:
        raise ApiError(
            422, f"question: {len(question)} characters, the limit is {limit} (FONTI_MAX_QUESTION_CHARS)"
        )
    history = [Turn(turn.role, turn.content) for turn in body.history or []]
    max_turns = request.app.state.settings.server.max_history_turns
    if len(history) > max_turns:
        raise ApiError(
            422,
            f"history: {len(history)} turns, the limit is {max_turns} (FONTI_MAX_HISTORY_TURNS)",
            detail={"field": "history", "limit": max_turns},
        )
    service = request.app.state.answers
    where = body.filters.where() if body.filters else None
    wants_sse = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if wants_sse:
        return ClosingStreamingResponse(
            _event_stream(service.stream(question, body.top_k, history=history, where=where)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return service.ask(question, body.top_k, history=history, where=where).to_dict()
