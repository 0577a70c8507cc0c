"""``fonti eval`` without a service: bad question files, and retrieval scoring of one
question. The runs against a real service are in tests/integration/test_eval_cli.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
