"""The HTTP API end to end: real models, the real store (Qdrant Edge), real HTTP through the ASGI app."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from service.backends.llm import GenerationStats
from service.pipeline.answer_type import misses_asked_kind
from service.pipeline.confidence import guessed_figures
from tests.conftest import DEV_DATA, check_citation_invariants

pytestmark = pytest.mark.e2e

DENIERS = {"Il Messaggero Veneto", "WIRED Italia"}


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("Who denied the contacts?", "en"),
        ("Chi ha smentito i contatti?", "it"),
    ],
)
def test_seed_question_names_peskov_with_denial_outlets(dev_client, question, language):
    r = dev_client.post("/v1/ask", json={"question": question})
    assert r.status_code == 200, r.text
    body = r.json()
    check_citation_invariants(body)
    assert body["language"] == language
    assert not body["abstained"]
    assert "Peskov" in body["answer"]
    outlets = {c["outlet"] for c in body["citations"]}
    assert outlets & DENIERS, body
    for c in body["citations"]:
        assert re.search(r"(?i)smenti|falsa|peskov", c["quote"]), f"{c['outlet']} does not report the denial"
    if language == "it":
        assert re.search(r"(?i)\b(il|la|ha|di|che)\b", body["answer"])
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


@dataclass
class Generation:
    """One call of the model during a request: its keyword arguments and the text it produced."""

    kwargs: dict[str, Any]
    text: str = ""


@contextmanager
def recorded(client) -> Iterator[list[Generation]]:  # type: ignore[no-untyped-def]
    """Note every call of the app's real model (arguments and text) while the block runs."""
    generator = client.app.state.answers._generator
    stream = generator.stream
    calls: list[Generation] = []

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(Generation(kwargs))
        for piece in stream(*args, **kwargs):  # the real model; its text is only kept
            calls[-1].text += piece
            yield piece

    generator.stream = recording
    try:
        yield calls
    finally:
        del generator.stream


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
        assert "token" in kinds


def dev_question(qid: str) -> dict:
    for line in (DEV_DATA / "questions.jsonl").read_text("utf-8").splitlines():
        q = json.loads(line)
        if q["id"] == qid:
            return q
    raise KeyError(qid)


def test_unanswerable_dev_question_abstains_in_its_language(dev_client):
    # The cover night's radio-jury share: on topic, but no article gives it. The model's
    # figure is in no passage it cites, so grounding removes the claim and Fonti abstains.
    q = dev_question("dev-041")
    assert q["kind"] == "unanswerable"
    body = dev_client.post("/v1/ask", json={"question": q["question"]}).json()
    assert body["abstained"] is True and body["citations"] == [] and body["sentences"] == []
    assert body["language"] == "it" and "articoli" in body["answer"]
    assert "recheck_ms" not in body["timings"]  # not a which-outlet question: read once


def test_a_which_outlet_question_whose_premise_no_passage_states_is_not_answered(dev_client):
    """No article says a newspaper interviewed Musk: the passages on the story name outlets all
    the same. The second reading (direct prompt, its own prompt-cache slot) opens with NOT_FOUND,
    so the answer generation never starts and nothing is streamed."""
    q = dev_question("dev-043")
    assert q["kind"] == "unanswerable"
    with recorded(dev_client) as calls:
        r = dev_client.post("/v1/ask", json={"question": q["question"], "stream": True})
    events = parse_sse(r.text)
    assert [e for e, _ in events] == ["done"], events  # no token of an answer was shown
    body = events[-1][1]
    assert body["abstained"] is True and body["citations"] == [] and body["language"] == "it", body
    slots = [c.kwargs.get("slot", "answer") for c in calls]
    assert slots == ["recheck"] and "recheck_ms" in body["timings"], (slots, body["timings"])
    assert calls[0].text.lstrip().startswith("NOT_FOUND"), calls[0].text


def test_a_figure_the_model_guessed_is_not_published(dev_client):
    """Leo XIV's first apostolic trip: no article gives it; the model fills in a date of the
    story (his birth date, in the passage it cites, so grounding cannot object) and is
    unsure of its digits: the sentence leaves the answer and Fonti abstains."""
    q = dev_question("dev-045")
    assert q["kind"] == "unanswerable"
    with recorded(dev_client) as calls:
        body = dev_client.post("/v1/ask", json={"question": q["question"]}).json()
    stats: GenerationStats = calls[-1].kwargs["stats"]
    reply = stats.token_logprobs
    floor = dev_client.app.state.settings.answer_min_figure_confidence
    assert guessed_figures(reply, floor, q["question"]), "".join(p for p, _ in reply)
    assert body["abstained"] is True and body["citations"] == [], body


def test_an_answer_without_the_kind_of_value_asked_for_is_an_abstention(dev_client):
    """At what time did the Milan exchange halt trading? The articles say it halted, not
    when. The model answers with the passage that says it halted (a true, cited sentence
    without a time), so the service abstains: nothing in the reply gives a time."""
    question = (
        "A che ora la Borsa di Milano ha interrotto le contrattazioni durante il blackout "
        "informatico del 19 luglio 2024?"
    )
    with recorded(dev_client) as calls:
        body = dev_client.post("/v1/ask", json={"question": question}).json()
    reply = calls[-1].text
    assert reply.strip() and "NOT_FOUND" not in reply, reply  # the model did answer
    assert misses_asked_kind(question, [reply], []), reply
    assert body["abstained"] is True and body["citations"] == [] and body["language"] == "it", body


def test_conflict_dev_question_cites_both_sides(dev_client):
    q = dev_question("dev-035")  # 45,000 vs 80,000 people in St Peter's Square
    assert q["kind"] == "conflict"
    body = dev_client.post("/v1/ask", json={"question": q["question"]}).json()
    check_citation_invariants(body)
    assert {c["outlet"] for c in body["citations"]} >= set(q["gold_outlets"])
    for c in body["citations"]:
        assert re.search(r"45|80", c["quote"]), c
    assert re.search(r"45", body["answer"]) and re.search(r"80", body["answer"])
    assert [s["text"] for s in body["sentences"]] and not any(s["unsupported"] for s in body["sentences"])


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


@pytest.mark.parametrize(
    ("question", "outlets", "detail"),
    [
        # two flood paragraphs say 41 municipalities; the others give 23 or 24
        (
            "Which outlets put the number of municipalities hit by the flood at 41?",
            {"Borderline24", "Italianotizie"},
            "41",
        ),
        # two Musk paragraphs mention Taiwan; the model cites one, the service quotes the other
        (
            "Quali testate scrivono che Putin avrebbe chiesto di non attivare Starlink su Taiwan?",
            {"Milano Finanza", "Corriere della Sera"},
            "Taiwan",
        ),
    ],
)
def test_a_which_outlets_question_cites_every_outlet_stating_the_detail(
    dev_client, question, outlets, detail
):
    body = dev_client.post("/v1/ask", json={"question": question}).json()
    check_citation_invariants(body)
    assert "recheck_ms" in body["timings"], body["timings"]  # read twice, and the second reading answers
    assert not body["abstained"], body
    assert {c["outlet"] for c in body["citations"]} == outlets, body
    assert all(detail in c["quote"] for c in body["citations"]), body["citations"]
    # the outlets the service added are named in the answer, not only in the citation list
    assert sum(outlet in body["answer"] for outlet in outlets) >= len(outlets) - 1, body["answer"]


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
    # The fixed system prompt comes first, so it is always reused; the same question reuses all but one.
    assert first["prompt_tokens"] > first["cached_prompt_tokens"] > 400
    assert second["cached_prompt_tokens"] == second["prompt_tokens"] - 1
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
