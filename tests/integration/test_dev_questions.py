"""All dev questions end to end through the HTTP API; metrics are written and printed, not thresholded.

The figures (must_mention share, outlet citation precision/recall, abstention) are the
measurement the closing notes report; the assertions here are the contract every
answer must keep whatever its quality.
"""

from __future__ import annotations

import json
import time

import pytest

from service.evaluation.metrics import score_one, summarise
from tests.factories import DEV_DATA, REPO, check_citation_invariants

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def load_questions() -> list[dict]:
    path = DEV_DATA / "questions.jsonl"
    if not path.is_file():
        pytest.skip(f"no dev questions at {path}")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def test_dev_questions_through_http(dev_client):
    questions = load_questions()
    scores, rows = [], []
    for q in questions:
        r = dev_client.post("/v1/ask", json={"question": q["question"]})
        assert r.status_code == 200, (q["id"], r.text)
        body = r.json()
        check_citation_invariants(body)
        assert body["language"] == q["lang"], (q["id"], body["language"])
        scores.append(score_one(q, body))
        rows.append({"id": q["id"], "question": q["question"], "response": body})
    summary = summarise(scores)
    out = REPO / "var" / "eval"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"dev-{stamp}.json").write_text(
        json.dumps({"summary": summary, "answers": rows}, ensure_ascii=False, indent=1)
    )
    print("\nDEV METRICS", json.dumps(summary["overall"], indent=1))
    print("BY KIND", json.dumps(summary["by_kind"], indent=1))
    assert len(scores) == len(questions)
