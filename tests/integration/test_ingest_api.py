"""/v1/articles through real HTTP (ASGI app): uploads, listing, reading, deleting, replacing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import LLMSettings
from tests.factories import FIXTURES, make_settings

AGGREGATOR = """Titolo aggregato sul ponte

Il sindaco Rossi ha annunciato la chiusura del ponte sul fiume per lavori urgenti fino a marzo. (ANSA)

Secondo il Comune i lavori sul ponte dureranno almeno sei mesi e costeranno due milioni. (Il Tempo)
"""
MARKDOWN = """---
id: nota-md
title: Nuovo orario delle biblioteche
outlet: Il Post
published: 2024-09-01
---
Le biblioteche comunali resteranno aperte fino alle 22 dal lunedì al venerdì, annuncia l'assessora alla cultura.

Il nuovo orario parte a settembre e costa **300 mila euro** l'anno in personale.
"""


def feed() -> bytes:
    rows = [
        {
            "id": "feed-1",
            "title": "Scuole chiuse per neve",
            "outlet": "AGI",
            "text": "Le scuole resteranno chiuse domani per la neve in tutta la provincia.",
        },
        "{broken",
        {
            "url": "https://news.example/treni",
            "title": "Sciopero dei treni",
            "outlet": "ANSA",
            "text": "Sciopero dei treni regionali venerdì dalle 9 alle 17, garantite le fasce pendolari.",
        },
    ]
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("api") / "store", llm=LLMSettings(warmup=False))
    with TestClient(create_app(settings)) as c:
        yield c


def count(client: TestClient) -> int:
    return client.app.state.store.count()  # type: ignore[attr-defined]


def all_articles(client: TestClient, limit: int) -> list[dict]:
    rows, offset = [], None
    while True:
        r = client.get("/v1/articles", params={"limit": limit, **({"offset": offset} if offset else {})})
        assert r.status_code == 200, r.text
        rows += r.json()["articles"]
        offset = r.json()["next_offset"]
        if offset is None:
            return rows


def test_multipart_upload_of_every_format(client: TestClient):
    html = (FIXTURES / "ponte.html").read_text("utf-8").encode("cp1252")
    files = [
        ("files", ("cronaca/ponte.txt", AGGREGATOR.encode("utf-8"), "text/plain")),
        ("files", ("biblioteche.md", MARKDOWN.encode("utf-8"), "text/markdown")),
        ("files", ("feed.jsonl", feed(), "application/x-ndjson")),
        ("files", ("ponte.html", html, "text/html")),
    ]
    before = count(client)
    r = client.post("/v1/articles", files=files)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["ingested"], out["replaced"], out["skipped"], out["failed"]) == (5, 0, 0, 1)
    by_id = {a["id"]: a for a in out["articles"]}
    assert set(by_id) == {
        "cronaca/ponte.txt",
        "nota-md",
        "feed-1",
        "https://news.example/treni",
        "https://gazzetta.example/cronaca/ponte-chiuso",
    }
    assert by_id["cronaca/ponte.txt"]["outlets"] == ["ANSA", "Il Tempo"]
    assert by_id["https://gazzetta.example/cronaca/ponte-chiuso"]["outlets"] == ["Gazzetta di Prova"]
    assert by_id["feed-1"]["source"] == "feed.jsonl:1"
    assert out["errors"] == [
        {"index": None, "source": "feed.jsonl:2", "id": None, "error": out["errors"][0]["error"]}
    ]
    assert "invalid JSON" in out["errors"][0]["error"]
    assert count(client) == before + out["chunks"]
    # The HTML page's metadata is stored and readable back.
    r = client.get("/v1/articles/" + quote("https://gazzetta.example/cronaca/ponte-chiuso", safe=""))
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["published"] == "2024-03-05" and page["title"].startswith("Ponte chiuso per lavori")
    assert page["url"] == "https://gazzetta.example/cronaca/ponte-chiuso"


def test_upload_errors_are_4xx_and_store_nothing(client: TestClient):
    before = count(client)
    r = client.post("/v1/articles", files=[("other", ("a.txt", b"x", "text/plain"))])
    assert r.status_code == 422 and "files" in r.json()["error"]
    r = client.post(
        "/v1/articles",
        data={"format": "pdf"},
        files=[("files", ("a.txt", AGGREGATOR.encode(), "text/plain"))],
    )
    assert r.status_code == 422 and "format" in r.json()["error"]
    r = client.post("/v1/articles", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
    r = client.post("/v1/articles", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert count(client) == before


def test_plain_upload_takes_the_outlet_field(client: TestClient):
    body = "Un titolo semplice\n\nIl consiglio comunale ha approvato il bilancio con 20 voti favorevoli.\n"
    r = client.post("/v1/articles", files=[("files", ("nota.txt", body.encode(), "text/plain"))])
    assert r.json()["failed"] == 1 and "outlet" in r.json()["errors"][0]["error"]
    r = client.post(
        "/v1/articles",
        data={"outlet": "Il Post"},
        files=[("files", ("nota.txt", body.encode(), "text/plain"))],
    )
    assert r.json()["ingested"] == 1 and r.json()["articles"][0]["outlets"] == ["Il Post"]


def test_listing_pages_cover_every_article_once_with_chunk_counts(client: TestClient):
    rows = all_articles(client, limit=2)
    ids = [a["id"] for a in rows]
    assert len(ids) == len(set(ids)) >= 6
    assert sum(a["chunks"] for a in rows) == count(client)
    ponte = next(a for a in rows if a["id"] == "cronaca/ponte.txt")
    assert ponte == {
        "id": "cronaca/ponte.txt",
        "title": "Titolo aggregato sul ponte",
        "outlets": ["ANSA", "Il Tempo"],
        "chunks": 2,
        "url": None,
        "published": None,
        "topic": None,
    }
    assert client.get("/v1/articles", params={"limit": 0}).status_code == 422
    assert client.get("/v1/articles", params={"offset": "not-a-point-id"}).status_code == 422


def test_read_one_article_in_reading_order(client: TestClient):
    r = client.get("/v1/articles/cronaca/ponte.txt")
    assert r.status_code == 200, r.text
    paragraphs = r.json()["paragraphs"]
    assert [p["position"] for p in paragraphs] == [0, 1]
    assert [p["outlet"] for p in paragraphs] == ["ANSA", "Il Tempo"]
    assert paragraphs[0]["text"].startswith("Il sindaco Rossi")
    r = client.get("/v1/articles/nowhere")
    assert r.status_code == 404 and "nowhere" in r.json()["error"]


def test_changed_article_replaces_its_chunks_and_unchanged_is_skipped(client: TestClient):
    item = {
        "id": "biblio-json",
        "title": "Biblioteche",
        "outlet": "Il Post",
        "format": "plain",
        "text": "Primo paragrafo.\n\nSecondo paragrafo.\n\nTerzo paragrafo.",
    }
    r = client.post("/v1/articles", json={"articles": [item]})
    assert r.json()["ingested"] == 1 and r.json()["chunks"] == 3
    before = count(client)
    r = client.post("/v1/articles", json={"articles": [item]})
    assert (r.json()["skipped"], r.json()["chunks"]) == (1, 0)
    assert count(client) == before
    changed = {**item, "text": "Primo paragrafo, corretto.\n\nSecondo paragrafo."}
    r = client.post("/v1/articles", json={"articles": [changed]})
    assert (r.json()["replaced"], r.json()["chunks"]) == (1, 2)
    assert count(client) == before - 1  # three old chunks gone, two new ones in: no orphans
    texts = [p["text"] for p in client.get("/v1/articles/biblio-json").json()["paragraphs"]]
    assert texts == ["Primo paragrafo, corretto.", "Secondo paragrafo."]


def test_delete_removes_every_chunk_and_only_those(client: TestClient):
    before = count(client)
    chunks = client.get("/v1/articles/" + quote("https://news.example/treni", safe="")).json()["chunks"]
    r = client.delete("/v1/articles/" + quote("https://news.example/treni", safe=""))
    assert r.status_code == 200 and r.json() == {"id": "https://news.example/treni", "deleted_chunks": chunks}
    assert count(client) == before - chunks
    assert client.delete("/v1/articles/" + quote("https://news.example/treni", safe="")).status_code == 404
    hits = client.post("/v1/search", json={"query": "sciopero dei treni regionali", "top_k": 5}).json()[
        "results"
    ]
    assert all(h["article_id"] != "https://news.example/treni" for h in hits)


FILTER_ARTICLES = [
    {
        "id": "flt-1",
        "title": "Porto di Genova",
        "outlet": "Il Secolo XIX",
        "topic": "Economia",
        "published": "2024-02-10",
        "format": "plain",
        "text": "Il porto di Genova chiude il bilancio con un traffico record di container.",
    },
    {
        "id": "flt-2",
        "title": "Porto di Genova, i sindacati",
        "outlet": "ANSA",
        "topic": "Lavoro",
        "published": "2024-05-31",
        "format": "plain",
        "text": "I sindacati del porto di Genova annunciano uno sciopero per il rinnovo del contratto.",
    },
    {
        "id": "flt-3",
        "title": "Porto di Genova, il traffico",
        "outlet": "AGI",
        "topic": "Economia",
        "published": "2024-07-01",
        "format": "plain",
        "text": "Nel porto di Genova il traffico di container cresce per il terzo mese di fila.",
    },
]


def search_ids(client: TestClient, filters: dict) -> set[str]:
    r = client.post(
        "/v1/search", json={"query": "porto di Genova container", "top_k": 10, "filters": filters}
    )
    assert r.status_code == 200, r.text
    return {h["article_id"] for h in r.json()["results"]} & {"flt-1", "flt-2", "flt-3"}


def test_search_filters(client: TestClient):
    assert client.post("/v1/articles", json={"articles": FILTER_ARTICLES}).json()["ingested"] == 3
    assert search_ids(client, {}) == {"flt-1", "flt-2", "flt-3"}
    assert search_ids(client, {"outlets": ["ANSA", "AGI"]}) == {"flt-2", "flt-3"}
    assert search_ids(client, {"exclude_outlets": ["ANSA"]}) == {"flt-1", "flt-3"}
    assert search_ids(client, {"topics": ["Economia"]}) == {"flt-1", "flt-3"}
    assert search_ids(client, {"article_ids": ["flt-2"]}) == {"flt-2"}
    # Date bounds are inclusive days: an article of 31 May is in "to 2024-05-31".
    assert search_ids(client, {"published_from": "2024-02-11", "published_to": "2024-05-31"}) == {"flt-2"}
    assert search_ids(client, {"published_from": "2024-06-01"}) == {"flt-3"}
    assert search_ids(client, {"topics": ["Economia"], "exclude_outlets": ["AGI"]}) == {"flt-1"}


def test_bad_filters_are_422_naming_the_key(client: TestClient):
    r = client.post("/v1/search", json={"query": "porto", "filters": {"outlet": ["ANSA"]}})
    assert r.status_code == 422 and "filters.outlet" in r.json()["error"]
    r = client.post(
        "/v1/search",
        json={"query": "porto", "filters": {"published_from": "2024-07-01", "published_to": "2024-01-01"}},
    )
    assert r.status_code == 422 and "published_from is after published_to" in r.json()["error"]
    r = client.post("/v1/ask", json={"question": "porto?", "filters": {"published_from": "ieri"}})
    assert r.status_code == 422 and "filters.published_from" in r.json()["error"]


def test_ask_with_filters_that_leave_nothing_abstains(client: TestClient):
    r = client.post(
        "/v1/ask",
        json={
            "question": "Che cosa annunciano i sindacati del porto di Genova?",
            "filters": {"article_ids": ["no-such-article"]},
        },
    )
    assert r.status_code == 200 and r.json()["abstained"] is True and r.json()["citations"] == []
