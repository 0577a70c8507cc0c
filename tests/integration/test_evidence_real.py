"""The evidence-first answer path on the real models, on questions of the calibration corpus's tune split.

Real GGUF, real embedder, real Qdrant, real HTTP (ASGI). Only ``tune`` questions are
used: the ``test`` split is frozen for reporting. Each test names the behaviour, not the
question: a different tune question with the same property would do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.evaluation.metrics import answer_language
from tests.factories import REPO, check_citation_invariants, make_settings

pytestmark = pytest.mark.e2e

TUNE = REPO / "data" / "calibration" / "tune"
# The tune questions these tests use, each chosen for the property its test names.
ABSENT_DETAIL = "b-075"
THREE_OUTLETS = "b-002"
FRENCH = "a-003"
STREAMED = ["b-002", "c-024", "a-054", "b-051"]


def tune_question(qid: str) -> dict:
    for line in (TUNE / "questions.jsonl").read_text("utf-8").splitlines():
        q = json.loads(line)
        if q["id"] == qid:
            return q
    raise KeyError(qid)


@pytest.fixture(scope="module")
def tune_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app with the tune split's articles ingested through the API, tracing its decisions."""
    settings = make_settings(tmp_path_factory.mktemp("tune") / "store", answer_trace=True)
    articles = [
        {"id": f.name, "text": f.read_text("utf-8")} for f in sorted((TUNE / "articles").glob("*.txt"))
    ]
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/articles", json={"articles": articles})
        assert r.status_code == 200 and r.json()["ingested"] == len(articles), r.text
        yield client


def parse_sse(raw: str) -> list[tuple[str, dict]]:
    return [(m.group(1), json.loads(m.group(2))) for m in re.finditer(r"event: (\w+)\ndata: (.*)\n\n", raw)]


def ask_streamed(client: TestClient, question: str) -> tuple[list[tuple[str, dict]], dict]:
    with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as r:
        assert r.status_code == 200
        events = parse_sse("".join(r.iter_text()))
    assert events and events[-1][0] == "done", events
    return events, events[-1][1]


def test_a_stored_story_whose_asked_detail_is_absent_gets_an_abstention_and_no_text(tune_client):
    q = tune_question(ABSENT_DETAIL)
    assert q["kind"] == "unanswerable"
    events, body = ask_streamed(tune_client, q["question"])
    # the story is stored: retrieval finds it, the model reads it, and still no sentence is shown
    assert {p["article_id"] for p in body["trace"]["passages"]} & {q["story"]}, body["trace"]
    assert [k for k, _ in events] == ["done"], events
    assert body["abstained"] is True and body["citations"] == [] and body["sentences"] == []
    check_citation_invariants(body)


def test_every_outlet_that_states_a_fact_is_cited(tune_client):
    q = tune_question(THREE_OUTLETS)
    assert q["kind"] == "multi-outlet" and len(q["gold_outlets"]) == 3
    body = tune_client.post("/v1/ask", json={"question": q["question"]}).json()
    check_citation_invariants(body)
    assert not body["abstained"], body
    assert {c["outlet"] for c in body["citations"]} >= set(q["gold_outlets"]), body["citations"]
    assert all(t.lower() in body["answer"].lower() for t in q["must_mention"]), body["answer"]


def test_a_french_question_is_answered_in_french(tune_client):
    q = tune_question(FRENCH)
    assert q["lang"] == "fr" and q["kind"] != "unanswerable"
    body = tune_client.post("/v1/ask", json={"question": q["question"]}).json()
    check_citation_invariants(body)
    assert body["language"] == "fr" and not body["abstained"], body
    assert answer_language(body["answer"], [c["outlet"] for c in body["citations"]]) == "fr", json.dumps(
        body["trace"]["sentences"], ensure_ascii=False
    )
    assert body["answer"].startswith("Selon "), body["answer"]
    # the model went on in the passage's Italian; the shown sentence is its verified translation
    translated = [s for s in body["trace"]["sentences"] if s.get("translation")]
    assert translated, body["trace"]["sentences"]


@pytest.mark.parametrize("qid", STREAMED)
def test_a_streamed_answer_never_shows_a_sentence_that_done_lacks(tune_client, qid):
    """Sentences are verified before they are streamed: what a reader saw is exactly the answer."""
    q = tune_question(qid)
    events, body = ask_streamed(tune_client, q["question"])
    shown = [data["text"] for kind, data in events if kind == "token"]
    if body["abstained"]:
        assert shown == []
        return
    assert "".join(shown) == body["answer"]
    assert [s.strip() for s in shown] == [s["text"] for s in body["sentences"]]
    failed = [s for s in body["trace"]["sentences"] if s["failure"]]
    for sentence in failed:  # a sentence that failed verification reached nobody
        assert sentence["text"] not in "".join(shown)
    streamed_citations = [data["id"] for kind, data in events if kind == "citation"]
    assert streamed_citations == [c["id"] for c in body["citations"]]


def test_the_passages_are_evaluated_once_per_question(tune_client):
    """One prompt evaluation of the passages: the short answer and the answer continue the evidence read's context."""
    q = tune_question(THREE_OUTLETS)
    generator = tune_client.app.state.answers._generator  # type: ignore[attr-defined]
    stream = generator.stream
    calls: list[dict] = []

    def recording(messages, **kwargs):  # type: ignore[no-untyped-def]
        stats = kwargs.get("stats")
        yield from stream(messages, **kwargs)
        calls.append(
            {"prefix": kwargs.get("prefix", ""), "prompt": stats.prompt_tokens, "cached": stats.cached_tokens}
        )

    generator.stream = recording
    try:
        body = tune_client.post("/v1/ask", json={"question": q["question"] + " "}).json()
    finally:
        del generator.stream
    assert not body["abstained"]
    read, short, answer = calls
    assert read["prefix"] == "Evidence:" and short["prefix"].endswith("\nShort answer:")
    assert answer["prefix"].startswith("Evidence: [")
    # the short answer and the answer re-evaluate only the lines they are given, never the passages
    assert short["prompt"] - short["cached"] < 30, calls
    assert answer["prompt"] - answer["cached"] < 30, calls
    assert read["prompt"] - read["cached"] > 200, calls
