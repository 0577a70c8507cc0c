"""The HTTP API end to end: real models, the real store (Qdrant Edge), real HTTP through the ASGI app."""

from __future__ import annotations

import json
import re

import pytest

from tests.factories import check_citation_invariants, dev_question

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("qid", ["dev-002", "dev-003"])  # English and Italian, answered in the dev eval
def test_a_dev_question_is_answered_in_its_language_citing_an_outlet_that_states_it(dev_client, qid):
    q = dev_question(qid)
    r = dev_client.post("/v1/ask", json={"question": q["question"]})
    assert r.status_code == 200, r.text
    body = r.json()
    check_citation_invariants(body)
    assert body["language"] == q["lang"]
    assert not body["abstained"], body
    assert all(m.lower() in body["answer"].lower() for m in q["must_mention"]), body["answer"]
    outlets = {c["outlet"] for c in body["citations"]}
    assert outlets & set(q["gold_outlets"]), body["citations"]
    assert [s["text"] for s in body["sentences"]] and " ".join(s["text"] for s in body["sentences"]) == body[
        "answer"
    ]
    assert body["timings"]["total_ms"] > 0


def test_search_finds_italian_paragraphs_for_english_query(dev_client):
    r = dev_client.post("/v1/search", json={"query": "Which outlet mentions Sergei Kiriyenko?", "top_k": 3})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results[0]["outlet"] == "CremonaOggi"
    assert results[0]["article_id"] == "musk-putin-wsj.txt"
    r = dev_client.post(
        "/v1/search", json={"query": "How many gold medals did Italy win in Paris?", "top_k": 5}
    )
    assert "olimpiadi-parigi-2024-medagliere.txt" in {h["article_id"] for h in r.json()["results"]}


def parse_sse(raw: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of a server-sent event stream."""
    return [(m.group(1), json.loads(m.group(2))) for m in re.finditer(r"event: (\w+)\ndata: (.*)\n\n", raw)]


def test_streaming_gives_same_final_answer(dev_client):
    question = "Quale testata riferisce che Musk avrebbe parlato anche con Sergei Kiriyenko?"
    plain = dev_client.post("/v1/ask", json={"question": question}).json()
    with dev_client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = "".join(r.iter_text())
    events = parse_sse(raw)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done"
    done = events[-1][1]
    timing_free = lambda b: {k: v for k, v in b.items() if k != "timings"}  # noqa: E731
    assert timing_free(done) == timing_free(plain)
    if not done["abstained"]:
        # Only verified sentences are streamed, and each of them is in the final answer.
        shown = "".join(data["text"] for kind, data in events if kind == "token")
        assert shown == done["answer"], (shown, done["answer"])
        assert [s["text"] for s in done["sentences"]] == [
            data["text"].strip() for kind, data in events if kind == "token"
        ]


def test_a_question_naming_an_outlet_is_answered_from_it(dev_client):
    assert "WIRED Italia" in dev_client.app.state.store.outlets(1000)
    question = "What did the Kremlin reply to the report, according to WIRED Italia?"
    body = dev_client.post("/v1/ask", json={"question": question}).json()
    check_citation_invariants(body)
    assert not body["abstained"], body
    assert {c["outlet"] for c in body["citations"]} == {"WIRED Italia"}
    # a request's own outlet filter wins over the name in the question
    body = dev_client.post(
        "/v1/ask", json={"question": question, "filters": {"outlets": ["Il Messaggero Veneto"]}}
    ).json()
    check_citation_invariants(body)
    assert {c["outlet"] for c in body["citations"]} <= {"Il Messaggero Veneto"}


def test_unanswerable_off_topic_question_abstains(dev_client):
    r = dev_client.post("/v1/ask", json={"question": "What is the recipe for a good carbonara?"})
    body = r.json()
    assert body["abstained"] is True
    assert body["citations"] == []
    assert body["language"] == "en"
    check_citation_invariants(body)


def _count(client) -> int:
    return client.app.state.store.count()


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"json": {"question": ""}}, 422, "question"),
        ({"json": {"question": "   "}}, 422, "question"),
        ({"json": {"question": "x" * 100_000}}, 422, "limit"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
        ({"json": {"questio": "typo"}}, 422, "question"),
    ],
)
def test_bad_ask_input_is_a_4xx_naming_the_problem(dev_client, kwargs, status, needle):
    before = _count(dev_client)
    r = dev_client.post("/v1/ask", **kwargs)
    assert r.status_code == status
    body = r.json()
    assert needle.lower() in body["error"].lower(), body
    assert _count(dev_client) == before


def test_bad_articles_are_rejected_without_losing_anything(dev_client):
    before = _count(dev_client)
    r = dev_client.post("/v1/articles", json={"articles": [{"text": "x", "format": "pdf"}]})
    assert r.status_code == 422 and "format" in r.json()["error"]
    r = dev_client.post("/v1/articles", json={"articles": []})
    assert r.status_code == 422 and "articles" in r.json()["error"]
    r = dev_client.post(
        "/v1/articles",
        json={
            "articles": [
                {"id": "no-outlet", "text": "Titolo\n\nSolo testo senza testata.", "format": "aggregator"},
                {
                    "id": "plain-ok",
                    "text": "Un titolo\n\nIl testo del pezzo.",
                    "format": "plain",
                    "outlet": "Il Post",
                },
            ]
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["ingested"] == 1 and body["articles"][0]["id"] == "plain-ok"
    assert body["errors"][0]["index"] == 0 and "Outlet" in body["errors"][0]["error"]
    assert _count(dev_client) == before + 1
    # the same articles again: nothing duplicated
    r = dev_client.post(
        "/v1/articles",
        json={
            "articles": [
                {
                    "id": "plain-ok",
                    "text": "Un titolo\n\nIl testo del pezzo.",
                    "format": "plain",
                    "outlet": "Il Post",
                }
            ]
        },
    )
    assert r.json()["skipped"] == 1 and _count(dev_client) == before + 1


def test_healthz_and_openapi(dev_client):
    assert dev_client.get("/healthz").json()["status"] == "ok"
    paths = dev_client.get("/openapi.json").json()["paths"]
    assert {"/v1/articles", "/v1/search", "/v1/ask", "/healthz"} <= set(paths)


def test_answers_report_prompt_tokens_and_the_reused_cache(dev_client):
    question = "Quale testata riferisce che Musk avrebbe parlato anche con Sergei Kiriyenko?"
    first = dev_client.post("/v1/ask", json={"question": question}).json()["timings"]
    second = dev_client.post("/v1/ask", json={"question": question}).json()["timings"]
    # The fixed system prompt comes first, so it is always reused; the same question reuses all
    # its passages too (one prompt evaluation of them, then only the reply's tokens).
    assert first["prompt_tokens"] > first["cached_prompt_tokens"] > 400
    assert second["cached_prompt_tokens"] >= second["prompt_tokens"] - 1
    metrics = dev_client.get("/metrics").text
    counts = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(fonti_answer_prompt_tokens(?:_cached)?_total) (\S+)$", metrics, re.M)
    }
    total, cached = (
        counts["fonti_answer_prompt_tokens_total"],
        counts["fonti_answer_prompt_tokens_cached_total"],
    )
    assert total >= first["prompt_tokens"] + second["prompt_tokens"]
    assert cached >= first["cached_prompt_tokens"] + second["cached_prompt_tokens"] and cached < total
    # every step of an answer is timed, and its tokens counted by step
    step = {
        (m.group(1), m.group(2)): float(m.group(3))
        for m in re.finditer(r'^fonti_model_tokens_total\{kind="(\w+)",step="(\w+)"\} (\S+)$', metrics, re.M)
    }
    assert step[("prompt", "evidence")] >= total and step[("cached", "evidence")] >= cached
    timed = dict(re.findall(r'^fonti_answer_step_seconds_count\{step="(\w+)"\} (\S+)$', metrics, re.M))
    assert float(timed["evidence"]) >= 2 and float(timed["retrieval"]) >= 2
