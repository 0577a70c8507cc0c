"""``fonti eval`` as a user runs it: a real local service on the dev set, real files out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEV_ARTICLES, DEV_DATA

FONTI = str(Path(sys.executable).with_name("fonti"))


def run(args: list[str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FONTI, "eval", *args], capture_output=True, text=True, timeout=timeout, env=os.environ
    )


def test_bad_question_file_names_file_and_line(tmp_path: Path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"id": "a", "question": "ok?"}\n{not json\n', encoding="utf-8")
    r = run([str(f), "--url", "http://127.0.0.1:1"])
    assert r.returncode == 2 and f"{f}:2: invalid JSON" in r.stderr
    f.write_text('{"id": "a", "question": "ok?"}\n{"id": "b"}\n', encoding="utf-8")
    r = run([str(f), "--url", "http://127.0.0.1:1"])
    assert r.returncode == 2 and f"{f}:2:" in r.stderr and "'question'" in r.stderr
    r = run([str(f)])
    assert r.returncode == 2 and "--url" in r.stderr


@pytest.mark.e2e
def test_eval_against_a_local_service_writes_the_report_and_gates(tmp_path: Path):
    questions = DEV_DATA / "questions.jsonl"
    if not questions.is_file():
        pytest.skip(f"no dev questions at {questions}")
    old = tmp_path / "old-summary.json"
    old.write_text(json.dumps({"overall": {"answer_correct": 0.0, "http_errors": 5}}), encoding="utf-8")
    out = tmp_path / "report"
    r = run(
        [
            str(questions),
            "--articles",
            str(DEV_ARTICLES),
            "--limit",
            "2",
            "--out",
            str(out),
            "--compare",
            str(old),
            "--min-answer-correct",
            "1.01",
            "--max-http-errors",
            "0",
        ]
    )
    assert r.returncode == 3, r.stderr[-3000:]
    assert "answer_correct = " in r.stderr and "below the minimum 1.01" in r.stderr
    assert "http_errors" not in r.stderr  # no errors: that bound holds
    assert "compared with" in r.stdout and "http_errors" in r.stdout
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text("utf-8").splitlines()]
    assert [row["id"] for row in rows] == ["dev-001", "dev-002"]
    for row in rows:
        assert "error" not in row, row
        assert row["answer"]["citations"] or row["answer"]["abstained"]
        assert row["metrics"]["total_ms"] > 0 and row["search"]
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["overall"]["questions"] == 2 and summary["overall"]["http_errors"] == 0
    assert (
        set(summary["by_language"]) == {"en"}
        and summary["overall"]["retrieval_outlet_recall_at_k"] is not None
    )
    report = (out / "report.md").read_text("utf-8")
    assert "## By kind" in report and "dev-001" in report
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.e2e
def test_retrieval_only_meets_the_recall_targets_per_language(tmp_path: Path):
    questions = DEV_DATA / "questions.jsonl"
    if not questions.is_file():
        pytest.skip(f"no dev questions at {questions}")
    out = tmp_path / "retrieval"
    r = run([str(questions), "--articles", str(DEV_ARTICLES), "--retrieval-only", "--out", str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "outlet_recall_at_10" in r.stdout and "lang=it" in r.stdout and "kind=conflict" in r.stdout
    summary = json.loads((out / "retrieval.json").read_text("utf-8"))
    assert summary["overall"]["questions"] == 39  # the answerable ones
    for lang in ("en", "it"):
        figures = summary["by_language"][lang]
        assert figures["outlet_recall_at_10"] >= 0.9, figures
        assert figures["article_hit_at_5"] >= 0.95, figures
        assert 0 < figures["mrr"] <= 1


def test_retrieval_scores_of_one_question():
    from service.evaluation.retrieval import score_hits

    q = {
        "id": "x",
        "lang": "en",
        "kind": "who",
        "gold_outlets": ["ANSA", "Il Post"],
        "gold_articles": ["b.txt"],
    }
    hits = (
        [
            {"outlet": "AGI", "article_id": "a.txt", "article_ids": ["a.txt", "b.txt"]},
            {"outlet": "ansa", "article_id": "a.txt"},
        ]
        + [{"outlet": f"O{i}", "article_id": "c.txt"} for i in range(8)]
        + [{"outlet": "Il Post", "article_id": "b.txt"}]
    )
    s = score_hits(q, hits)
    assert s is not None
    assert (s["outlet_recall_at_5"], s["outlet_recall_at_10"], s["article_hit_at_5"], s["mrr"]) == (
        0.5,
        0.5,
        1.0,
        0.5,
    )
    assert score_hits({"id": "u", "kind": "unanswerable", "gold_outlets": []}, hits) is None
