"""Unit tests of the generation gate's logic (admission, FIFO, deadlines, cancel, shutdown).

The event iterators here are plain generators standing in for the answer pipeline; the
real model goes through the gate in tests/integration/test_backpressure.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import anyio
import pytest

from service.backpressure import Busy, DeadlineExceeded, GenerationGate, ShuttingDown


def events(
    n: int, delay: float, closed: list[str] | None = None, name: str = ""
) -> Iterator[SimpleNamespace]:
    try:
        for i in range(n):
            time.sleep(delay)
            yield SimpleNamespace(kind="token", data=i)
        yield SimpleNamespace(kind="done", data=name)
    finally:
        if closed is not None:
            closed.append(name)


async def _drain(run) -> list:  # type: ignore[no-untyped-def]
    return [ev async for ev in run]


def test_admission_is_bounded_and_refusals_are_immediate():
    async def main() -> None:
        gate = GenerationGate(slots=1, queue_depth=1, deadline_s=5)
        a, b = gate.admit(), gate.admit()
        assert gate.waiting == 2
        started = time.monotonic()
        with pytest.raises(Busy) as exc:
            gate.admit()
        assert time.monotonic() - started < 0.05
        assert 1 <= exc.value.retry_after <= 120 and "FONTI_QUEUE_DEPTH" in str(exc.value)
        assert gate.rejected == 1
        a.cancel()
        b.cancel()
        assert gate.waiting == 0 and gate.active == 0
        gate.admit().cancel()  # room again

    anyio.run(main)


def test_runs_take_the_slot_in_arrival_order():
    async def main() -> None:
        gate = GenerationGate(slots=1, queue_depth=3, deadline_s=10)
        order: list[str] = []

        async def one(name: str) -> None:
            run = gate.admit()
            await run.start(events(3, 0.01, name=name))
            async for ev in run:
                if ev.kind == "done":
                    order.append(ev.data)

        async with anyio.create_task_group() as tg:
            for name in "abcd":
                tg.start_soon(one, name)
                await anyio.sleep(0.01)
        assert order == list("abcd")
        # The consumer stops at the "done" event; the worker thread books the run on the loop just
        # after (it closes the events first), so the last run's count may land a moment later.
        with anyio.fail_after(5):
            while gate.active:
                await anyio.sleep(0.01)
        assert gate.completed == 4 and gate.active == 0 and gate.waiting == 0

    anyio.run(main)


def test_deadline_while_waiting_and_while_generating():
    async def main() -> None:
        gate = GenerationGate(slots=1, queue_depth=1, deadline_s=0.3)
        closed: list[str] = []
        first = gate.admit()
        await first.start(events(1000, 0.01, closed, "slow"))
        second = gate.admit()
        with pytest.raises(DeadlineExceeded, match="waiting"):
            await second.start(events(1, 0, name="never"))
        assert gate.waiting == 0
        with pytest.raises(DeadlineExceeded, match="generated"):
            await _drain(first)
        assert gate.timed_out == 2
        with anyio.fail_after(2):  # the worker stops at its next event and frees the slot
            while gate.active:
                await anyio.sleep(0.01)
        assert closed == ["slow"]

    anyio.run(main)


def test_cancel_stops_the_generation_and_frees_the_slot():
    async def main() -> None:
        gate = GenerationGate(slots=1, queue_depth=0, deadline_s=10)
        closed: list[str] = []
        run = gate.admit()
        await run.start(events(10_000, 0.005, closed, "long"))
        await run.__anext__()
        run.cancel()
        with anyio.fail_after(2):
            while gate.active:
                await anyio.sleep(0.01)
        assert closed == ["long"] and gate.cancelled == 1 and gate.completed == 0
        run.cancel()  # idempotent
        assert gate.cancelled == 1

    anyio.run(main)


def test_worker_errors_reach_the_caller():
    def failing() -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(kind="token", data="x")
        raise ValueError("model exploded")

    async def main() -> None:
        gate = GenerationGate(slots=1, queue_depth=0, deadline_s=10)
        run = gate.admit()
        await run.start(failing())
        with pytest.raises(ValueError, match="exploded"):
            await _drain(run)
        with anyio.fail_after(2):
            while gate.active:
                await anyio.sleep(0.01)

    anyio.run(main)


def test_shutdown_cancels_running_and_refuses_new():
    async def main() -> None:
        gate = GenerationGate(slots=1, queue_depth=2, deadline_s=30)
        closed: list[str] = []
        run = gate.admit()
        await run.start(events(100_000, 0.005, closed, "running"))
        started = time.monotonic()
        await gate.shutdown(timeout=5)
        assert time.monotonic() - started < 2 and closed == ["running"]
        assert not any(t.name == "fonti-generation" and t.is_alive() for t in threading.enumerate())
        with pytest.raises(Busy, match="shutting down"):
            gate.admit()

    anyio.run(main)


def test_a_requested_shutdown_answers_waiting_and_running_runs_before_the_server_deadline():
    async def main() -> None:
        gate = GenerationGate(slots=1, queue_depth=2, deadline_s=30)
        gate.bind_loop()
        closed: list[str] = []
        running = gate.admit()
        await running.start(events(100_000, 0.005, closed, "running"))
        waiting = gate.admit()
        outcome: dict[str, BaseException] = {}

        async def wait_for_slot() -> None:
            try:
                await waiting.start(events(1, 0))
            except Busy as exc:
                outcome["waiting"] = exc

        async def consume() -> None:
            try:
                await _drain(running)
            except Busy as exc:
                outcome["running"] = exc

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_slot)
            tg.start_soon(consume)
            await anyio.sleep(0.05)
            threading.Thread(target=gate.request_shutdown, args=(1.2,)).start()  # as from a signal
        took = time.monotonic() - started
        assert isinstance(outcome["waiting"], ShuttingDown) and isinstance(outcome["running"], ShuttingDown)
        assert 0.2 <= took < 2.0  # the running one at grace - 1 s, well before the server's deadline
        with pytest.raises(ShuttingDown):
            gate.admit()
        await gate.shutdown(timeout=5)
        assert closed == ["running"] and gate.active == 0 and gate.waiting == 0

    anyio.run(main)
