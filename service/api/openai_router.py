"""OpenAI-compatible chat API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Existing OpenAI clients work unchanged: the last user message is the question, earlier
user/assistant messages are the history (the follow-up is rewritten to stand alone),
and the answer carries ``[n]`` markers in its text plus a ``citations`` field (also on
the final stream chunk, with ``sentences`` and ``abstained``). Client ``system``
messages are ignored: Fonti's instructions are fixed, so a client cannot turn off the
evidence and its verification. Sampling options are accepted for compatibility; the service's settings
decide them, so answers stay reproducible.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.errors import ApiError, over_limit
from service.api.generation import admit, answer_json, answer_stream
from service.api.schemas import SPACES, CitationOut, ErrorOut, SentenceOut
from service.deps import AnswersDep, GateDep, SettingsDep
from service.pipeline.followup import Turn
from service.settings import ServerSettings

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger(__name__)
MODEL_ID = "fonti"


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionIn(BaseModel):
    # OpenAI clients send many optional fields (temperature, n, user …): accepted, not used.
    model_config = ConfigDict(extra="allow")

    model: str = Field(MODEL_ID, description="Any value; Fonti serves one model.")
    messages: list[ChatMessageIn] = Field(..., min_length=1)
    stream: bool = Field(False, strict=True)


class _Message(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class _Choice(BaseModel):
    index: int = 0
    message: _Message
    finish_reason: Literal["stop"] = "stop"


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[_Choice]
    usage: dict[str, int]
    citations: list[CitationOut]
    sentences: list[SentenceOut]
    abstained: bool
    standalone_question: str | None = None


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        return " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content or ""


def _conversation(body: ChatCompletionIn, limits: ServerSettings) -> tuple[str, list[Turn]]:
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise ApiError(422, "messages: the last user/assistant message must be from the user (the question)")
    question = _text(turns[-1].content).strip(SPACES)
    if not question:
        raise ApiError(422, "messages: the last user message is empty")
    if len(question) > limits.max_question_chars:
        raise over_limit(
            "messages",
            f"the question has {len(question)} characters",
            limits.max_question_chars,
            "FONTI_MAX_QUESTION_CHARS",
        )
    history = [Turn(m.role, _text(m.content)) for m in turns[:-1]]  # type: ignore[arg-type]
    return question, history


@router.get("/models")
def list_models() -> dict[str, Any]:
    """The one model Fonti serves (OpenAI format)."""
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "fonti"}],
    }


def _chunk(
    cid: str, created: int, model: str, delta: dict[str, Any], extra: dict[str, Any] | None = None
) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if extra is not None else None}],
        **(extra or {}),
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _renderer(cid: str, created: int, model: str) -> Callable[[Any], str | None]:
    def render(ev: Any) -> str | None:
        if ev.kind == "token":
            return _chunk(cid, created, model, {"content": ev.data})
        if ev.kind == "done":
            ans = ev.data.to_dict()
            extra = {
                k: ans[k] for k in ("citations", "sentences", "abstained", "answer", "standalone_question")
            }
            return _chunk(cid, created, model, {}, extra)
        return None

    return render


def _render_error(message: str) -> str:  # the status line is sent already: report in-band
    return f"data: {json.dumps({'error': {'message': message}}, ensure_ascii=False)}\n\n"


@router.post(
    "/chat/completions",
    response_model=ChatCompletionOut,
    responses={
        422: {"model": ErrorOut},
        200: {"content": {"text/event-stream": {}}},
        503: {"model": ErrorOut, "description": "The queue is full: retry after `Retry-After` seconds."},
        504: {"model": ErrorOut, "description": "The deadline passed (FONTI_REQUEST_DEADLINE_S)."},
    },
)
async def chat_completions(
    body: ChatCompletionIn, request: Request, settings: SettingsDep, answers: AnswersDep, gate: GateDep
) -> Any:
    """Answer the last user message from the stored articles, OpenAI style, with citations.

    The same bounded queue as /v1/ask: 503 with `Retry-After` when full, 504 past the deadline.
    """
    question, history = _conversation(body, settings.server)
    log.debug("question: %s", question)
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    run = admit(gate)
    events = answers.stream(question, None, history)
    if body.stream:
        return await answer_stream(
            request,
            gate,
            run,
            events,
            _renderer(cid, created, body.model),
            _render_error,
            prelude=_chunk(cid, created, body.model, {"role": "assistant", "content": ""}),
            trailer="data: [DONE]\n\n",
        )
    ans = await answer_json(request, gate, run, events)
    if isinstance(ans, Response):
        return ans  # the client went away
    tokens = int(ans.timings.get("completion_tokens", 0))
    return ChatCompletionOut(
        id=cid,
        created=created,
        model=body.model,
        choices=[_Choice(message=_Message(content=ans.answer))],
        usage={"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens},
        citations=[CitationOut(**asdict(c)) for c in ans.citations],
        sentences=[SentenceOut(**asdict(s)) for s in ans.sentences],
        abstained=ans.abstained,
        standalone_question=ans.standalone_question,
    )
