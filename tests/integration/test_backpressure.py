"""Backpressure through a real uvicorn with the real model: a full queue is a 503 at once,
a deadline is a 504 that stops the generation, a client that leaves frees its slot, and
health and search answer while the model is busy. Tiny settings: one slot, queue depth 1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from service.settings import ServerSettings
from tests.factories import always_answering_calibration, dev_bodies, live_server, make_settings, wait_until

pytestmark = pytest.mark.e2e

QUESTION = "Chi ha smentito i contatti tra Musk e Putin?"
ARTICLES = ["cremlino-smentisce-musk-putin.txt", "musk-putin-wsj.txt", "bce-taglio-tassi.txt"]
LONG = 120.0  # a deadline no answer here reaches
# Bound for the model to stop after a cancel: the next token, or the end of the prompt's
# evaluation when the cancel lands during it (seconds on a busy 2-core machine).
STOP_BOUND = 90.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI]]:
    folder = tmp_path_factory.mktemp("backpressure")
    settings = make_settings(
        folder / "store",
        server=ServerSettings(queue_depth=1, request_deadline_s=LONG),
        calibration_file=always_answering_calibration(folder),  # these tests need the model writing
    )
    articles = dev_bodies(ARTICLES)
    with live_server(settings, articles) as running:
        yield running


def _idle(app: FastAPI) -> bool:
    gate = app.state.gate
    return gate.active == 0 and gate.waiting == 0


@pytest.fixture
def gate_idle(server: tuple[str, FastAPI]) -> Iterator[None]:
    _, app = server
    wait_until(lambda: _idle(app), STOP_BOUND, "the gate to be idle before the test")
    app.state.gate.deadline_s = LONG
    yield
    app.state.gate.deadline_s = LONG
    wait_until(lambda: _idle(app), STOP_BOUND, "the gate to be idle after the test")


def _hold(url: str, stream: bool = True) -> socket.socket:
    """Send an ask over a raw socket and keep the connection open (close it to leave)."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"question": QUESTION, "stream": stream}).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def test_full_queue_is_503_at_once_with_retry_after(server, gate_idle):
    url, app = server
    gate = app.state.gate
    app.state.gate.deadline_s = 30.0
    rejected_before = gate.rejected
    # A: generating (holds the one slot); B: waiting in the queue of depth 1.
    holder = _hold(url)
    wait_until(lambda: gate.active == 1, 30, "A to hold the slot")
    b_result: list[httpx.Response] = []
    b = threading.Thread(
        target=lambda: b_result.append(httpx.post(url + "/v1/ask", json={"question": QUESTION}, timeout=90)),
        daemon=True,
    )
    b.start()
    wait_until(lambda: gate.waiting == 1, 30, "B to wait in the queue")
    # C and D (JSON and the OpenAI endpoint) find the queue full.
    started = time.monotonic()
    c = httpx.post(url + "/v1/ask", json={"question": QUESTION, "stream": True}, timeout=30)
    elapsed = time.monotonic() - started
    d = httpx.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]})
    assert c.status_code == 503 and d.status_code == 503
    assert elapsed < 2.0, f"the 503 took {elapsed:.2f} s"
    for r in (c, d):
        assert r.headers["content-type"].startswith("application/json")
        retry = r.headers["retry-after"]
        assert retry.isdigit() and 1 <= int(retry) <= 120
        body = r.json()
        assert "FONTI_QUEUE_DEPTH" in body["error"] and body["detail"]["retry_after"] == int(retry)
    assert gate.rejected == rejected_before + 2
    metrics = httpx.get(url + "/metrics").text  # the queue as an operator sees it
    assert "fonti_generations_active 1.0" in metrics and "fonti_generations_waiting 1.0" in metrics
    assert f"fonti_generation_rejections_total {float(gate.rejected)}" in metrics
    holder.close()  # A leaves: its slot passes to B
    b.join(timeout=120)
    assert b_result and b_result[0].status_code in (200, 504), b_result


def test_deadline_is_504_and_stops_the_generation(server, gate_idle):
    url, app = server
    gate = app.state.gate
    gate.deadline_s = 1.0
    timed_out_before = gate.timed_out
    started = time.monotonic()
    r = httpx.post(url + "/v1/ask", json={"question": QUESTION}, timeout=60)
    elapsed = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert "FONTI_REQUEST_DEADLINE_S" in r.json()["error"]
    assert elapsed < 1.0 + 3.0, f"the 504 took {elapsed:.2f} s"
    assert gate.timed_out == timed_out_before + 1
    # The generation was stopped: the slot frees without the answer running to its end.
    wait_until(lambda: _idle(app), STOP_BOUND, "the stopped generation to free its slot")


def test_deadline_in_a_started_stream_is_an_error_event(server, gate_idle):
    url, app = server
    app.state.gate.deadline_s = 1.5
    with httpx.stream("POST", url + "/v1/ask", json={"question": QUESTION, "stream": True}, timeout=60) as r:
        assert r.status_code == 200
        raw = "".join(r.iter_text())
    events = [line for line in raw.splitlines() if line.startswith("event: ")]
    assert events[-1] == "event: error" and "event: done" not in events
    assert "FONTI_REQUEST_DEADLINE_S" in raw


def test_client_that_leaves_frees_its_slot(server, gate_idle):
    url, app = server
    gate = app.state.gate
    for stream in (False, True):
        cancelled_before = gate.cancelled
        sock = _hold(url, stream)
        wait_until(lambda: gate.active == 1, 30, "the request to hold the slot")
        time.sleep(0.5)
        sock.close()
        took = wait_until(lambda: _idle(app), STOP_BOUND, "the slot to free after the client left")
        assert gate.cancelled == cancelled_before + 1, (stream, took)


def test_health_and_search_answer_while_the_model_is_busy(server, gate_idle):
    url, app = server
    gate = app.state.gate
    holder = _hold(url)
    try:
        wait_until(lambda: gate.active == 1, 30, "a generation to run")
        for _ in range(5):
            started = time.monotonic()
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200
            health_s = time.monotonic() - started
            r = httpx.post(
                url + "/v1/search", json={"query": "smentita del Cremlino", "top_k": 3}, timeout=30
            )
            assert r.status_code == 200 and r.json()["results"]
            assert health_s < 1.0, f"/healthz took {health_s:.2f} s while generating"
            assert gate.active == 1
    finally:
        holder.close()


def test_the_gate_serves_again_after_all_that(server, gate_idle):
    url, app = server
    completed = app.state.gate.completed
    r = httpx.post(url + "/v1/ask", json={"question": QUESTION}, timeout=300)
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body["abstained"] and body["sentences"], body  # a whole answer, verified and cited
    wait_until(lambda: app.state.gate.completed == completed + 1, 30, "the run to be counted as completed")
