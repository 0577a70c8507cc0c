"""The eval runner's orchestration on a scripted HTTP transport (pure logic; the real
service path is covered by test_eval_cli)."""

from __future__ import annotations

import json

import httpx
import pytest

from service.evaluation.runner import evaluate_one, run_questions

DONE = {"answer": "Peskov [1]", "abstained": False, "citations": [{"id": 1, "outlet": "WIRED Italia"}]}


def transport(fail_ids: set[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path == "/v1/ask":
            if body["question"] in fail_ids:
                return httpx.Response(500, json={"error": "boom"})
            sse = f"event: token\ndata: {json.dumps({'text': 'Peskov'})}\n\nevent: done\ndata: {json.dumps(DONE)}\n\n"
            return httpx.Response(200, text=sse, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"results": [{"outlet": "WIRED Italia", "article_id": "a"}]})

    return httpx.MockTransport(handler)


def test_http_failure_becomes_an_error_row_not_an_exception():
    client = httpx.Client(transport=transport({"bad"}), base_url="http://x")
    score, row = evaluate_one(client, {"id": "1", "question": "bad", "kind": "who", "must_mention": ["x"]}, 5)
    assert score.error and "500" in score.error and row["error"] == score.error
    assert score.answer_correct is False
    score, row = evaluate_one(client, {"id": "2", "question": "ok", "gold_outlets": ["WIRED Italia"]}, 5)
    assert score.error is None and score.cited == ["WIRED Italia"] and score.retrieval_outlet_recall == 1.0
    assert score.first_token_ms is not None and score.total_ms is not None


def test_interrupt_keeps_what_is_done_and_propagates():
    client = httpx.Client(transport=transport(set()), base_url="http://x")
    questions = [{"id": str(i), "question": f"q{i}"} for i in range(6)]
    seen: list[str] = []

    def on_done(score, row):
        seen.append(score.id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_questions(client, questions, 5, 1, on_done)
    assert seen[:2] == ["0", "1"] and len(seen) < 6
