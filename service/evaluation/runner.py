"""Run a question set against a Fonti deployment through its HTTP API.

Each question is asked with ``"stream": true`` (so the time to the first token is
measured as a client sees it) and searched with ``/v1/search`` for retrieval recall.
A local deployment is a real uvicorn on a free loopback port, built from a folder of
articles into a throw-away store: the same HTTP path users take.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from service.evaluation.metrics import QuestionScore, score_one


class QuestionFileError(ValueError):
    """The question file cannot be read; the message names the file and line."""


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Question records of a JSONL file; ``id`` and ``question`` are required."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise QuestionFileError(f"{path}: cannot read ({exc.strerror})") from exc
    out, seen = [], set()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not str(record.get("question", "")).strip():
            raise QuestionFileError(f"{path}:{n}: a question record needs a non-empty 'question'")
        if "id" not in record:
            raise QuestionFileError(f"{path}:{n}: a question record needs an 'id'")
        if record["id"] in seen:
            raise QuestionFileError(f"{path}:{n}: duplicate id {record['id']!r}")
        seen.add(record["id"])
        out.append(record)
    return out


BUSY_RETRIES = 20


@contextmanager
def _admitted_stream(client: httpx.Client, question: str) -> Iterator[httpx.Response]:
    """The SSE response of /v1/ask, waiting out 503s (the service's queue is full) as told by Retry-After."""
    for _ in range(BUSY_RETRIES):
        with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as r:
            if r.status_code == 503 and r.headers.get("retry-after", "").isdigit():
                r.read()
                time.sleep(min(int(r.headers["retry-after"]), 60))
                continue
            if r.status_code != 200:
                r.read()
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
            yield r
            return
    raise RuntimeError(f"HTTP 503: the service stayed busy through {BUSY_RETRIES} retries")


def ask_streaming(client: httpx.Client, question: str) -> tuple[dict[str, Any], float, float | None]:
    """POST /v1/ask as SSE; returns (final body, total ms, first-token ms or None)."""
    start = time.perf_counter()
    first: float | None = None
    event, done = "", None
    with _admitted_stream(client, question) as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: "):
                if event == "token" and first is None:
                    first = (time.perf_counter() - start) * 1000
                elif event == "done":
                    done = json.loads(line[6:])
                elif event == "error":
                    raise RuntimeError(f"stream error: {json.loads(line[6:]).get('error')}")
    if done is None:
        raise RuntimeError("the answer stream ended without a 'done' event")
    return done, (time.perf_counter() - start) * 1000, first


def evaluate_one(
    client: httpx.Client, question: dict[str, Any], k: int
) -> tuple[QuestionScore, dict[str, Any]]:
    """Ask and search one question; never raises for HTTP trouble (it becomes ``error``)."""
    row: dict[str, Any] = {"id": question["id"], "question": question["question"]}
    try:
        body, total_ms, first_ms = ask_streaming(client, question["question"])
        r = client.post("/v1/search", json={"query": question["question"], "top_k": k})
        r.raise_for_status()
        hits = r.json()["results"]
    except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as exc:
        score = score_one(question, None, error=f"{type(exc).__name__}: {exc}")
        row.update(error=score.error)
        return score, row
    score = score_one(
        question, body, hits, total_ms=round(total_ms, 1), first_token_ms=first_ms and round(first_ms, 1)
    )
    row.update(
        answer=body, search=[{k_: h.get(k_) for k_ in ("outlet", "article_id", "score")} for h in hits]
    )
    return score, row


def run_questions(
    client: httpx.Client,
    questions: list[dict[str, Any]],
    k: int,
    concurrency: int,
    on_done: Callable[[QuestionScore, dict[str, Any]], None],
) -> None:
    """Evaluate questions with ``concurrency`` workers, calling ``on_done`` as each finishes.

    On KeyboardInterrupt no new question starts; the running ones finish and are
    reported, then the interrupt propagates, so a caller can write what is done.
    """
    pending = iter(questions)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        running: set[Future[tuple[QuestionScore, dict[str, Any]]]] = set()
        try:
            for q in pending:
                running.add(pool.submit(evaluate_one, client, q, k))
                if len(running) >= concurrency:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for f in finished:
                        on_done(*f.result())
            for f in running:
                on_done(*f.result())
        except KeyboardInterrupt:
            for f in running:
                if f.done() and not f.cancelled():
                    on_done(*f.result())
            raise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_service(articles: Path) -> Iterator[str]:
    """A fresh Fonti on a loopback port with ``articles`` ingested; yields its base URL."""
    import uvicorn

    from ingest.files import iter_sources
    from ingest.readers import ReadError
    from service.app import create_app
    from service.discovery import client_headers
    from service.settings import Settings, StoreSettings

    with tempfile.TemporaryDirectory(prefix="fonti-eval-") as tmp:
        settings = Settings(store=StoreSettings(path=Path(tmp) / "store"))
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the local service did not start (see the log above)")
                time.sleep(0.2)
            items = []
            for label, item in iter_sources([str(articles)]):
                if isinstance(item, ReadError):
                    raise RuntimeError(f"{label}: {item.message}")
                items.append(item)
            body = {"articles": [a.as_request() for a in items]}
            r = httpx.post(url + "/v1/articles", json=body, headers=client_headers(settings), timeout=3600)
            r.raise_for_status()
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout=30)
