"""``fonti eval --retrieval-only``: how well ``/v1/search`` finds the gold outlets and articles.

Per answerable question (one with ``gold_outlets``): gold-outlet recall at 5 and 10
(distinct gold outlets among the outlets of the top hits), gold-article hit at 5 (a
gold article among the articles the top hits stand for, collapsed copies included),
and the reciprocal rank of the first hit from a gold outlet. Averaged overall, per
language and per kind; unanswerable questions are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from service.evaluation.metrics import fold

METRICS = ("outlet_recall_at_5", "outlet_recall_at_10", "article_hit_at_5", "mrr")


def score_hits(question: dict[str, Any], hits: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The retrieval figures of one question (``None`` when it has no gold outlets)."""
    gold = {fold(o) for o in question.get("gold_outlets") or []}
    if not gold:
        return None
    articles = set(question.get("gold_articles") or [])
    outlets = [fold(h["outlet"]) for h in hits]

    def recall(k: int) -> float:
        return len(gold & set(outlets[:k])) / len(gold)

    rank = next((i for i, o in enumerate(outlets, start=1) if o in gold), None)
    hit5 = None
    if articles:
        seen = {a for h in hits[:5] for a in (h.get("article_ids") or [h["article_id"]])}
        hit5 = float(bool(seen & articles))
    return {
        "id": question["id"],
        "language": question.get("lang") or question.get("language"),
        "kind": question.get("kind"),
        "outlet_recall_at_5": recall(5),
        "outlet_recall_at_10": recall(10),
        "article_hit_at_5": hit5,
        "mrr": 1.0 / rank if rank else 0.0,
    }


def _average(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"questions": len(rows)}
    for m in METRICS:
        values = [r[m] for r in rows if r[m] is not None]
        out[m] = round(sum(values) / len(values), 4) if values else None
    return out


def summarise_retrieval(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall, per-language and per-kind averages."""

    def by(key: str) -> dict[str, Any]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r[key] is not None:
                groups.setdefault(str(r[key]), []).append(r)
        return {k: _average(v) for k, v in sorted(groups.items())}

    return {
        "overall": _average(rows),
        "by_language": by("language"),
        "by_kind": by("kind"),
        "per_question": rows,
    }


def run_retrieval(client: httpx.Client, questions: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Search every answerable question (top 10), score, write ``retrieval.json`` and print tables."""
    rows = []
    for q in questions:
        if not q.get("gold_outlets"):
            continue
        r = client.post("/v1/search", json={"query": q["question"], "top_k": 10})
        r.raise_for_status()
        score = score_hits(q, r.json()["results"])
        if score is not None:
            rows.append(score)
    summary = summarise_retrieval(rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "retrieval.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), "utf-8")
    print(format_tables(summary))
    print(f"retrieval report: {out / 'retrieval.json'}")
    return summary


def format_tables(summary: dict[str, Any]) -> str:
    """Plain-text tables: overall, by language, by kind."""
    lines = [f"{'group':16} {'n':>3} " + " ".join(f"{m:>19}" for m in METRICS)]
    groups = [("overall", summary["overall"])]
    groups += [(f"lang={k}", v) for k, v in summary["by_language"].items()]
    groups += [(f"kind={k}", v) for k, v in summary["by_kind"].items()]
    for name, fig in groups:
        cells = " ".join(f"{fig[m]:>19.3f}" if fig[m] is not None else f"{'-':>19}" for m in METRICS)
        lines.append(f"{name:16} {fig['questions']:>3} {cells}")
    return "\n".join(lines)
