"""POST /v1/ask: answer a question with outlet citations (JSON, or server-sent events)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response

from service.api.errors import ApiError, over_limit
from service.api.generation import admit, answer_json, answer_stream
from service.api.schemas import SPACES, AskIn, AskOut, ErrorOut
from service.deps import AnswersDep, GateDep, SettingsDep
from service.pipeline.followup import Turn

router = APIRouter(prefix="/v1", tags=["ask"])
log = logging.getLogger(__name__)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _render(ev: Any) -> str | None:
    if ev.kind == "token":
        return _sse("token", {"text": ev.data})
    if ev.kind == "citation":
        return _sse("citation", asdict(ev.data))
    if ev.kind == "done":
        return _sse("done", ev.data.to_dict())
    return None


def _render_error(message: str) -> str:
    return _sse("error", {"error": message})


@router.post(
    "/ask",
    response_model=AskOut,
    response_model_exclude_unset=True,
    responses={
        422: {"model": ErrorOut},
        200: {"content": {"text/event-stream": {}}, "description": "JSON answer, or SSE when streaming"},
        503: {"model": ErrorOut, "description": "The queue is full: retry after `Retry-After` seconds."},
        504: {"model": ErrorOut, "description": "The deadline passed (FONTI_REQUEST_DEADLINE_S)."},
    },
)
async def ask(
    body: AskIn, request: Request, settings: SettingsDep, answers: AnswersDep, gate: GateDep
) -> Any:
    """Answer from the stored articles; `citations[].id` is the `[id]` marker in `answer`.

    Answers wait in a bounded queue for the model: when it is full the reply is 503 with
    `Retry-After`; past FONTI_REQUEST_DEADLINE_S it is 504 (or an `error` event once a
    stream has started) and the generation stops.
    """
    question = body.question.strip(SPACES)
    limits = settings.server
    if not question:
        raise ApiError(422, "question: must not be blank")
    if len(question) > limits.max_question_chars:
        raise over_limit(
            "question", f"{len(question)} characters", limits.max_question_chars, "FONTI_MAX_QUESTION_CHARS"
        )
    history = [Turn(turn.role, turn.content) for turn in body.history or []]
    if len(history) > limits.max_history_turns:
        raise over_limit(
            "history", f"{len(history)} turns", limits.max_history_turns, "FONTI_MAX_HISTORY_TURNS"
        )
    if body.top_k is not None and body.top_k > limits.max_ask_top_k:
        raise over_limit("top_k", str(body.top_k), limits.max_ask_top_k, "FONTI_MAX_ASK_TOP_K")
    log.debug("question: %s", question)
    where = body.filters.where() if body.filters else None
    wants_sse = body.stream or "text/event-stream" in request.headers.get("accept", "")
    run = admit(gate)
    events = answers.stream(question, body.top_k, history=history, where=where)
    if wants_sse:
        return await answer_stream(request, gate, run, events, _render, _render_error)
    answer = await answer_json(request, gate, run, events)
    return answer if isinstance(answer, Response) else answer.to_dict()
