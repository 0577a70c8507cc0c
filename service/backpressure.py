"""Backpressure for answer generation: a bounded queue in front of the model, with deadlines.

The model serves ``slots`` generations at a time (one for the in-process model). A
request is admitted only while a slot or a place in the queue (``queue_depth``) is free;
otherwise :meth:`GenerationGate.admit` refuses it at once with a Retry-After estimate,
so clients learn when to come back instead of piling up. An admitted request waits
(first come, first served) for a slot until its deadline. Its generation then runs in a
worker thread, which stops at the next event once cancelled (deadline, client gone,
shutdown) and closes the event iterator — that closes llama.cpp's token stream and
frees the model. The slot is released only when the worker has stopped, so the queue
never overtakes a model that is still busy.

Gate bookkeeping runs on the event loop (one loop per app, as under uvicorn); workers
report back with ``call_soon_threadsafe``. The counters (``active``, ``waiting``,
``rejected``, ``timed_out``, ``cancelled``, ``completed``) are plain ints for metrics.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import anyio

log = logging.getLogger(__name__)

_END = object()


class Busy(Exception):
    """Every slot and queue place is taken: come back after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDown(Busy):
    """The service is stopping (SIGTERM): this generation was refused or stopped; retry elsewhere/later."""


class DeadlineExceeded(Exception):
    """The request's deadline passed while it waited or generated; its generation is stopped."""


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class GenerationGate:
    """Admission, a FIFO queue and slot accounting for the model's generations."""

    def __init__(self, slots: int = 1, queue_depth: int = 4, deadline_s: float = 180.0):
        self.slots = slots
        self.queue_depth = queue_depth
        self.deadline_s = deadline_s
        self.active = 0  # runs holding a slot (generating, or stopping after a cancel)
        self.waiting = 0  # admitted runs waiting for a slot
        self.rejected = 0  # refused because the queue was full (503)
        self.timed_out = 0  # deadline passed (504, or an error event in a started stream)
        self.cancelled = 0  # stopped early: client gone or shutdown
        self.completed = 0  # generations that ran to their end
        self._queue: deque[anyio.Event] = deque()
        self._runs: set[GenerationRun] = set()
        self._closing = False
        self._aborted: set[anyio.Event] = set()  # waiters woken by a shutdown, holding no slot
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hold_s = 10.0  # moving average of how long a run holds a slot

    def retry_after(self) -> int:
        """Seconds after which a place in the queue is likely free: about one generation."""
        return int(min(120, max(1, math.ceil(self._hold_s / self.slots))))

    def _stopping(self) -> ShuttingDown:
        return ShuttingDown("shutting down: the service is stopping", self.retry_after())

    def admit(self, deadline_s: float | None = None) -> GenerationRun:
        """Reserve a place for one generation, or raise :class:`Busy` at once."""
        if self._closing:
            self.rejected += 1
            raise self._stopping()
        if self.active + self.waiting >= self.slots + self.queue_depth:
            self.rejected += 1
            raise Busy(
                f"busy: {self.active} answer(s) generating and {self.waiting} waiting, the queue holds "
                f"{self.queue_depth} (FONTI_QUEUE_DEPTH)",
                self.retry_after(),
            )
        self.waiting += 1
        return GenerationRun(self, time.monotonic() + (deadline_s or self.deadline_s))

    async def _acquire(self, timeout: float) -> None:
        if self._closing:
            raise self._stopping()
        if self.active < self.slots and not self._queue:
            self.active += 1
            return
        event = anyio.Event()
        self._queue.append(event)
        try:
            with anyio.fail_after(max(timeout, 0)):
                await event.wait()
        except BaseException:
            if event in self._aborted:
                self._aborted.discard(event)
            elif event.is_set():  # the slot was handed over just as we gave up: pass it on
                self._release()
            else:
                self._queue.remove(event)
            raise
        if event in self._aborted:  # woken by a shutdown, not handed a slot
            self._aborted.discard(event)
            raise self._stopping()

    def _release(self) -> None:
        if self._queue:
            self._queue.popleft().set()  # the slot passes to the longest waiter
        else:
            self.active -= 1

    def _finished(self, run: GenerationRun, held_s: float) -> None:
        self._runs.discard(run)
        self._hold_s = 0.7 * self._hold_s + 0.3 * held_s
        self._release()

    def bind_loop(self) -> None:
        """Remember the serving event loop (called at start-up) for :meth:`request_shutdown`."""
        self._loop = asyncio.get_running_loop()

    def request_shutdown(self, grace_s: float) -> None:
        """A SIGTERM arrived (any thread, or a signal handler): refuse new runs and wake the waiting
        ones now with a 503, and stop running ones at ``grace_s`` minus a second, so their clients
        get a 503 or an ``error`` event rather than a connection cut by the server's own timeout."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._begin_shutdown, grace_s)

    def _begin_shutdown(self, grace_s: float) -> None:
        self._closing = True
        while self._queue:
            event = self._queue.popleft()
            self._aborted.add(event)
            event.set()
        assert self._loop is not None
        self._loop.call_later(max(0.0, grace_s - 1.0), self._abort_running)

    def _abort_running(self) -> None:
        for run in list(self._runs):
            run.abort(self._stopping())

    async def shutdown(self, timeout: float) -> None:
        """Refuse new runs, cancel the running ones and wait (at most ``timeout`` s) until they stop."""
        self._closing = True
        runs = list(self._runs)
        for run in runs:
            run.cancel()
        deadline = time.monotonic() + timeout
        for run in runs:
            thread = run.thread
            if thread is not None:
                await anyio.to_thread.run_sync(thread.join, max(0.0, deadline - time.monotonic()))
        alive = [r for r in runs if r.thread is not None and r.thread.is_alive()]
        if alive:
            log.warning("%d generation(s) still running after %.1f s of shutdown", len(alive), timeout)


class GenerationRun:
    """One admitted generation: :meth:`start` waits for a slot, iteration yields its events."""

    def __init__(self, gate: GenerationGate, deadline: float):
        self._gate = gate
        self.deadline = deadline
        self.state = "admitted"  # admitted → waiting → running → done
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._events: asyncio.Queue[Any] | None = None
        self._started_at = 0.0
        self._delivered_end = False

    def remaining(self) -> float:
        """Seconds left before the deadline."""
        return self.deadline - time.monotonic()

    async def start(self, events: Iterator[Any]) -> None:
        """Wait for a slot until the deadline, then run ``events`` in a worker thread.

        Raises :class:`DeadlineExceeded` when the deadline passes first.
        """
        gate = self._gate
        if self.state != "admitted":
            raise RuntimeError(f"a generation run cannot start when {self.state}")
        self.state = "waiting"
        try:
            await gate._acquire(self.remaining())
        except BaseException as exc:
            gate.waiting -= 1
            self.state = "done"
            if isinstance(exc, TimeoutError):
                gate.timed_out += 1
                raise DeadlineExceeded("the deadline passed while waiting for the model") from None
            raise
        gate.waiting -= 1
        if self._stop.is_set() or gate._closing:  # shutdown began while it waited for the slot
            self.state = "done"
            gate._release()
            raise Busy("shutting down: the service is stopping", gate.retry_after())
        self.state = "running"
        self._started_at = time.monotonic()
        self._events = asyncio.Queue()
        gate._runs.add(self)
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # log records of the worker keep the request id
        self.thread = threading.Thread(
            target=context.run, args=(self._work, events, loop), name="fonti-generation", daemon=True
        )
        self.thread.start()

    def _work(self, events: Iterator[Any], loop: asyncio.AbstractEventLoop) -> None:
        queue = self._events
        assert queue is not None
        outcome = "completed"
        try:
            for event in events:
                if self._stop.is_set():
                    outcome = "cancelled"
                    break
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except BaseException as exc:
            outcome = "failed"
            self._post(loop, queue.put_nowait, _Failure(exc))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                try:
                    close()  # stops llama.cpp's token stream and releases the model lock
                except Exception:
                    log.exception("closing a generation failed")
            self._post(loop, self._done, outcome)

    def _post(self, loop: asyncio.AbstractEventLoop, fn: Any, arg: Any) -> None:
        try:
            loop.call_soon_threadsafe(fn, arg)
        except RuntimeError:  # the loop is gone (process exit): keep the books anyway
            fn(arg)

    def _done(self, outcome: str) -> None:
        gate = self._gate
        if outcome == "completed":
            gate.completed += 1
        self.state = "done"
        assert self._events is not None
        self._events.put_nowait(_END)
        gate._finished(self, time.monotonic() - self._started_at)

    def cancel(self) -> None:
        """Stop the generation at its next event (idempotent); an unstarted run gives its place back."""
        if self.state == "admitted":
            self._gate.waiting -= 1
            self.state = "done"
        elif self.state == "running" and not self._stop.is_set():
            self._stop.set()
            if not self._delivered_end:
                self._gate.cancelled += 1
        elif self.state == "waiting":
            self._stop.set()

    def abort(self, reason: BaseException) -> None:
        """Stop the generation and make the caller's next event raise ``reason`` right away."""
        if self.state != "running" or self._delivered_end or self._events is None:
            return
        self.cancel()
        self._events.put_nowait(_Failure(reason))

    def __aiter__(self) -> GenerationRun:
        return self

    async def __anext__(self) -> Any:
        """The next event; :class:`DeadlineExceeded` (and the run cancelled) when time runs out."""
        if self._events is None or self._delivered_end:
            raise StopAsyncIteration
        try:
            with anyio.fail_after(max(self.remaining(), 0)):
                item = await self._events.get()
        except TimeoutError:
            self._gate.timed_out += 1
            self._delivered_end = True
            self._stop.set()
            raise DeadlineExceeded("the deadline passed while the answer was being generated") from None
        if item is _END:
            self._delivered_end = True
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            self._delivered_end = True
            raise item.exc
        if getattr(item, "kind", None) == "done":
            self._delivered_end = True  # a cancel from here on is just the normal close
        return item
