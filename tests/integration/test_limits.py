"""Request limits and validation through the ASGI app with real components: every violation is
a 4xx JSON error naming the field and the limit, and nothing is stored or generated."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import LLMSettings, ServerSettings
from tests.factories import make_settings

pytestmark = pytest.mark.e2e

ARTICLE = "Titolo del pezzo di prova\n\nIl consiglio comunale ha approvato il bilancio con venti voti favorevoli e cinque contrari. (ANSA)\n"
LIMITS = ServerSettings(
    max_body_bytes=4096,
    max_question_chars=100,
    max_articles_per_request=2,
    max_article_chars=300,
    max_ask_top_k=5,
    max_search_top_k=7,
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("limits") / "store", llm=LLMSettings(warmup=False), server=LIMITS
    )
    with TestClient(create_app(settings)) as c:
        yield c


def count(client: TestClient) -> int:
    return client.app.state.store.count()  # type: ignore[attr-defined]


def _error(r) -> str:  # type: ignore[no-untyped-def]
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == {"error", "detail"}, body
    return str(body["error"])


@pytest.mark.parametrize(
    ("path", "body", "status", "needles"),
    [
        ("/v1/ask", {"question": "x" * 101}, 422, ["question", "100", "FONTI_MAX_QUESTION_CHARS"]),
        ("/v1/ask", {"question": "Chi?", "top_k": 6}, 422, ["top_k", "5", "FONTI_MAX_ASK_TOP_K"]),
        ("/v1/ask", {"question": "Chi?", "top_k": 21}, 422, ["top_k", "20"]),
        ("/v1/search", {"query": "ponte", "top_k": 8}, 422, ["top_k", "7", "FONTI_MAX_SEARCH_TOP_K"]),
        ("/v1/search", {"query": "y" * 101}, 422, ["query", "100", "FONTI_MAX_QUESTION_CHARS"]),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "z" * 101}]},
            422,
            ["messages", "100", "FONTI_MAX_QUESTION_CHARS"],
        ),
        (
            "/v1/articles",
            {"articles": [{"text": ARTICLE, "id": str(i)} for i in range(3)]},
            413,
            ["articles", "2", "FONTI_MAX_ARTICLES_PER_REQUEST"],
        ),
        (
            "/v1/articles",
            {"articles": [{"text": ARTICLE, "id": "ok"}, {"text": ARTICLE + "a" * 300, "id": "big"}]},
            413,
            ["articles[1].text", "300", "FONTI_MAX_ARTICLE_CHARS"],
        ),
    ],
)
def test_each_limit_is_a_4xx_naming_field_and_limit(client, path, body, status, needles):
    before = count(client)
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    error = _error(r)
    for needle in needles:
        assert needle in error, (needle, error)
    assert count(client) == before


def test_body_size_limit_is_413_before_anything_is_read(client):
    before = count(client)
    big = json.dumps({"articles": [{"text": ARTICLE + "b" * 5000}]})
    r = client.post("/v1/articles", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "FONTI_MAX_BODY_BYTES" in _error(r) and "4096" in _error(r)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(10):
            yield b" " * 1000

    r = client.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "FONTI_MAX_BODY_BYTES" in _error(r)
    files = [("files", ("big.txt", ("c" * 5000).encode(), "text/plain"))]
    assert client.post("/v1/articles", files=files).status_code == 413
    assert count(client) == before


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/search", "/v1/chat/completions", "/v1/articles"])
def test_non_utf8_and_wrong_content_types_are_4xx_never_5xx(client, path):
    before = count(client)
    r = client.post(path, content=b'{"question": "caf\xe9"}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "UTF-8" in _error(r) and "0xe9" in _error(r)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        r = client.post(path, content=b'{"question": "ciao"}', headers={"content-type": ctype})
        assert r.status_code == 415 and "application/json" in _error(r), (ctype, r.text)
    r = client.post(path, content=b"{}", headers={"content-type": "application/json; charset=latin-1"})
    assert r.status_code == 415 and "UTF-8" in _error(r)
    for raw in (b"\xff\xfe{\x00}", b"[" * 3000, b'"just a string"', b"null", b'{"question": "\\ud800"}'):
        r = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (raw[:20], r.status_code, r.text)
        _error(r)
    assert count(client) == before


def test_upload_file_too_large_is_413_naming_the_file(client):
    files = [
        ("files", ("ok.txt", ARTICLE.encode(), "text/plain")),
        ("files", ("enorme.txt", (ARTICLE + "d" * 400).encode(), "text/plain")),
    ]
    before = count(client)
    r = client.post("/v1/articles", files=files)
    assert r.status_code == 413 and "enorme.txt" in _error(r) and "FONTI_MAX_ARTICLE_CHARS" in _error(r)
    assert count(client) == before
