"""``fonti eval`` as a user runs it: a real local service on the dev set, real files out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import DEV_ARTICLES, DEV_QUESTIONS, dev_data

FONTI = str(Path(sys.executable).with_name("fonti"))


def run(args: list[str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FONTI, "eval", *args], capture_output=True, text=True, timeout=timeout, env=os.environ
    )


@pytest.mark.e2e
def test_eval_against_a_local_service_writes_the_report_and_gates(tmp_path: Path):
    questions = dev_data(DEV_QUESTIONS)
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
def test_retrieval_only_meets_the_recall_targets_per_language(tmp_path: Path, dev_service: str):
    """Against the session's dev service (--url); the test above covers --articles."""
    questions = dev_data(DEV_QUESTIONS)
    out = tmp_path / "retrieval"
    r = run([str(questions), "--url", dev_service, "--retrieval-only", "--out", str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "outlet_recall_at_10" in r.stdout and "lang=it" in r.stdout and "kind=conflict" in r.stdout
    summary = json.loads((out / "retrieval.json").read_text("utf-8"))
    assert summary["overall"]["questions"] == 39  # the answerable ones
    for lang in ("en", "it"):
        figures = summary["by_language"][lang]
        assert figures["outlet_recall_at_10"] >= 0.9, figures
        assert figures["article_hit_at_5"] >= 0.95, figures
        assert 0 < figures["mrr"] <= 1
