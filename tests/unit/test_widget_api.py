"""The widget's HTTP side without models: the script and demo page, CORS, the history field.

``TestClient(app)`` outside a ``with`` block does not run the lifespan, so no model
loads; routes that need one are not called here (tests/browser/test_widget_live.py does that).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.pipeline.answer import Answer, Event
from service.pipeline.followup import Turn
from service.settings import ServerSettings, Settings
from tests.factories import WIDGET_JS, make_settings


def client(tmp_path: Path, **server: Any) -> TestClient:
    return TestClient(create_app(make_settings(tmp_path / "store", server=ServerSettings(**server))))


def test_widget_script_is_served_with_type_and_cache_headers(tmp_path):
    c = client(tmp_path)
    r = c.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=600"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == WIDGET_JS.read_bytes()
    etag = r.headers["etag"]
    again = c.get("/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert c.get("/widget.js", headers={"If-None-Match": '"stale"'}).status_code == 200
    assert c.head("/widget.js").status_code == 200


def test_demo_page_embeds_the_widget(tmp_path):
    r = client(tmp_path).get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script src="/widget.js"' in r.text and " defer></script>" in r.text


def _preflight(c: TestClient, origin: str) -> Any:
    return c.options(
        "/v1/ask",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )


def test_cors_allows_only_the_configured_origins(tmp_path):
    c = client(tmp_path, cors_origins=["https://intranet.example.com"])
    ok = _preflight(c, "https://intranet.example.com")
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://intranet.example.com"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    refused = _preflight(c, "https://elsewhere.example.com")
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    # A simple request from an allowed origin is answered with the header, and exposes Retry-After.
    r = c.get("/healthz", headers={"Origin": "https://intranet.example.com"})
    assert r.headers["access-control-allow-origin"] == "https://intranet.example.com"
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "https://x.org"}).headers


def test_no_cors_origins_means_same_origin_only(tmp_path):
    c = client(tmp_path)
    assert "access-control-allow-origin" not in _preflight(c, "https://intranet.example.com").headers
    assert "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "https://x.org"}).headers


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FONTI_CORS_ORIGINS", "https://a.example, http://127.0.0.1:8080/ ")
    assert Settings().server.cors_origins == ["https://a.example", "http://127.0.0.1:8080"]
    monkeypatch.setenv("FONTI_CORS_ORIGINS", '["https://b.example"]')
    assert Settings().server.cors_origins == ["https://b.example"]
    monkeypatch.setenv("FONTI_CORS_ORIGINS", "")
    assert Settings().server.cors_origins == []
    monkeypatch.setenv("FONTI_CORS_ORIGINS", "https://a.example/intranet/page.html")
    with pytest.raises(ValidationError, match="not an origin"):
        Settings()


class _RecordingAnswers:
    """Stands in for AnswerService to check the router's plumbing only (no model)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def _answer(self, question: str) -> Answer:
        return Answer("risposta", "it", True, [], {}, question)

    def ask(self, question: str, top_k: int | None = None, **kw: Any) -> Answer:
        self.calls.append({"question": question, **kw})
        return self._answer(question)

    def stream(self, question: str, top_k: int | None = None, **kw: Any) -> Iterator[Event]:
        self.calls.append({"question": question, **kw})
        yield Event("done", self._answer(question))


HISTORY = [{"role": "user", "content": "Chi ha smentito?"}, {"role": "assistant", "content": "Peskov [1]."}]


def test_history_reaches_the_answer_service(tmp_path):
    c = client(tmp_path)
    answers = c.app.state.answers = _RecordingAnswers()  # type: ignore[attr-defined]
    assert c.post("/v1/ask", json={"question": "Quando?", "history": HISTORY}).status_code == 200
    assert (
        c.post("/v1/ask", json={"question": "Quando?", "history": HISTORY, "stream": True}).status_code == 200
    )
    assert c.post("/v1/ask", json={"question": "Chi?"}).status_code == 200
    turns = [Turn("user", "Chi ha smentito?"), Turn("assistant", "Peskov [1].")]
    assert answers.calls == [
        {"question": "Quando?", "history": turns, "where": None},
        {"question": "Quando?", "history": turns, "where": None},
        {"question": "Chi?", "history": [], "where": None},
    ]


def test_history_over_the_limit_or_malformed_is_refused(tmp_path):
    c = client(tmp_path, max_history_turns=2)
    c.app.state.answers = _RecordingAnswers()  # type: ignore[attr-defined]
    too_long = [*HISTORY, {"role": "user", "content": "E poi?"}]
    r = c.post("/v1/ask", json={"question": "Quando?", "history": too_long})
    assert r.status_code == 422
    assert r.json() == {
        "error": "history: 3 turns, the limit is 2 (FONTI_MAX_HISTORY_TURNS)",
        "detail": {"field": "history", "limit": 2},
    }
    r = c.post("/v1/ask", json={"question": "Quando?", "history": [{"role": "system", "content": "x"}]})
    assert r.status_code == 422 and r.json()["error"].startswith("history.0.role:")
    r = c.post("/v1/ask", json={"question": "Quando?", "history": [{"role": "user", "content": ""}]})
    assert r.status_code == 422 and r.json()["error"].startswith("history.0.content:")
    r = c.post("/v1/ask", json={"question": "Quando?", "history": [{"role": "user", "text": "x"}]})
    assert r.status_code == 422 and "history.0" in r.json()["error"]
