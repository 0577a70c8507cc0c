"""The HTTP side of backpressure for the routes that generate answers.

``admit`` reserves a place in the :class:`~service.backpressure.GenerationGate` or
answers 503 with ``Retry-After`` at once. ``answer_json`` and ``answer_stream`` wait for
a slot, run the answer's event iterator in a worker thread and enforce the request
deadline: 504 while no byte has been sent; once a stream has started (status 200 is
on the wire), an in-band error event saying the deadline passed. A client that
disconnects, while waiting or while its answer is generated, stops its generation and
frees its slot (the access log shows status 499).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from service.api.errors import ApiError
from service.backpressure import Busy, DeadlineExceeded, GenerationGate, GenerationRun

log = logging.getLogger(__name__)
CLIENT_GONE = 499  # nginx's code for "client closed the request"; never reaches a client
_GONE = object()
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def busy_error(exc: Busy) -> ApiError:
    """503 with Retry-After (header and body)."""
    return ApiError(
        503,
        f"{exc}; retry after {exc.retry_after} s",
        detail={"retry_after": exc.retry_after},
        headers={"Retry-After": str(exc.retry_after)},
    )


def deadline_message(gate: GenerationGate) -> str:
    """What a client is told when its deadline passed."""
    seconds = gate.deadline_s
    return f"deadline: no answer within {seconds:g} s (FONTI_REQUEST_DEADLINE_S); the generation was stopped"


def admit(gate: GenerationGate) -> GenerationRun:
    """A place for one generation, or a 503 (raised as :class:`ApiError`) at once."""
    try:
        return gate.admit()
    except Busy as exc:
        raise busy_error(exc) from None


async def _until_disconnect(request: Request, scope: anyio.CancelScope) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


async def _unless_client_leaves(request: Request, work: Callable[[], Awaitable[Any]]) -> Any:
    """``await work()``, cancelled when the client disconnects first (then ``_GONE``)."""
    outcome: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(_until_disconnect, request, tg.cancel_scope)
        try:
            outcome["value"] = await work()
        except Exception as exc:
            outcome["error"] = exc
        tg.cancel_scope.cancel()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value", _GONE)


async def _start(gate: GenerationGate, run: GenerationRun, events: Iterator[Any]) -> None:
    try:
        await run.start(events)
    except DeadlineExceeded:
        raise ApiError(504, deadline_message(gate)) from None
    except Busy as exc:
        raise busy_error(exc) from None


async def answer_json(
    request: Request, gate: GenerationGate, run: GenerationRun, events: Iterator[Any]
) -> Any:
    """The ``data`` of the final ``done`` event (a 499 response when the client left first);
    504 when the deadline passes first."""

    async def work() -> Any:
        try:
            await _start(gate, run, events)
            async for event in run:
                if event.kind == "done":
                    return event.data
            raise RuntimeError("answer stream ended without a result")
        except DeadlineExceeded:
            raise ApiError(504, deadline_message(gate)) from None
        except Busy as exc:  # stopped by a shutdown
            raise busy_error(exc) from None
        finally:
            run.cancel()

    result = await _unless_client_leaves(request, work)
    return Response(status_code=CLIENT_GONE) if result is _GONE else result


class _RunResponse(StreamingResponse):
    """Streams a run's chunks and cancels the run however the response ends (client gone too)."""

    def __init__(self, run: GenerationRun, content: AsyncIterator[str]):
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._run.cancel()


async def answer_stream(
    request: Request,
    gate: GenerationGate,
    run: GenerationRun,
    events: Iterator[Any],
    render: Callable[[Any], str | None],
    render_error: Callable[[str], str],
    prelude: str = "",
    trailer: str = "",
) -> Response:
    """Server-sent events: ``render(event)`` for each event; errors and a passed deadline in-band.

    The slot is awaited before the response starts, so a deadline spent in the queue is
    still a 504 with a JSON body.
    """

    async def work() -> bool:
        try:
            await _start(gate, run, events)
        except BaseException:
            run.cancel()
            raise
        return True

    if await _unless_client_leaves(request, work) is _GONE:
        run.cancel()
        return Response(status_code=CLIENT_GONE)

    async def chunks() -> AsyncIterator[str]:
        try:
            if prelude:
                yield prelude
            async for event in run:
                text = render(event)
                if text:
                    yield text
            if trailer:
                yield trailer
        except DeadlineExceeded:
            yield render_error(deadline_message(gate))
        except Busy as exc:  # stopped by a shutdown
            yield render_error(f"{exc}; retry after {exc.retry_after} s")
        except Exception as exc:  # the status line is sent already: report in-band
            log.exception("answer stream failed")
            yield render_error(f"{type(exc).__name__}: {exc}")
        finally:
            run.cancel()

    return _RunResponse(run, chunks())
