"""Evaluation outputs: results.jsonl, summary.json, report.md and report.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.evaluation.metrics import HEADLINE, RATE_METRICS


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1.0 else f"{value:.0f}"
    return str(value)


def _table(groups: dict[str, dict[str, Any]], title: str) -> list[str]:
    keys = ("questions", *HEADLINE)
    lines = [f"## {title}", "", "| group | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, figures in groups.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(figures.get(k)) for k in keys) + " |")
    return [*lines, ""]


def _worst(rows: list[dict[str, Any]], scores: list[dict[str, Any]], n: int = 10) -> list[str]:
    """The questions that did worst: errors, wrong answers, then imprecise citations."""

    def badness(s: dict[str, Any]) -> tuple[int, int, float]:
        wrong_abstention = s["answerable"] is not None and s["abstained"] == s["answerable"]
        precision = s["cited_gold"] / len(s["cited"]) if s["cited"] else 1.0
        return (bool(s["error"]), int(s["answer_correct"] is False or wrong_abstention), 1.0 - precision)

    by_id = {r["id"]: r for r in rows}
    worst = sorted(scores, key=badness, reverse=True)[:n]
    lines = [f"## The {len(worst)} worst questions", ""]
    for s in worst:
        row = by_id.get(s["id"], {})
        answer = row.get("answer") or {}
        lines.append(f"### {s['id']} ({s.get('kind') or 'no kind'}, {s.get('language') or '?'})")
        lines.append(f"> {row.get('question', '')}".replace("\n", " "))
        lines.append("")
        if s["error"]:
            lines.append(f"Error: `{s['error']}`")
        else:
            text = str(answer.get("answer", "")).replace("\n", " ")
            lines.append(f"Answer{' (abstained)' if s['abstained'] else ''}: {text}")
            for c in answer.get("citations", []):
                quote = str(c.get("quote", ""))[:200].replace("\n", " ")
                lines.append(f"- [{c.get('id')}] {c.get('outlet')} — {c.get('article_id')}: «{quote}»")
            lines.append(
                f"Gold outlets: {', '.join(s['gold_outlets']) or '–'}; cited: {', '.join(s['cited']) or '–'}"
            )
        lines.append("")
    return lines


def write_report(
    out: Path, summary: dict[str, Any], rows: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    """Write results.jsonl, summary.json, report.md and report.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    scores = summary["per_question"]
    by_id = {s["id"]: s for s in scores}
    with (out / "results.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({**row, "metrics": by_id.get(row["id"])}, ensure_ascii=False) + "\n")
    public = {k: v for k, v in summary.items() if k != "per_question"}
    (out / "summary.json").write_text(
        json.dumps({**public, "meta": meta}, ensure_ascii=False, indent=1), "utf-8"
    )
    md = [f"# Fonti evaluation — {meta.get('questions_file', '')}", ""]
    md += [f"- {k}: {v}" for k, v in meta.items()] + [""]
    md += _table({"overall": summary["overall"]}, "Overall")
    md += _table(summary["by_language"], "By language")
    md += _table(summary["by_kind"], "By kind")
    md += ["![metrics](report.png)", ""]
    md += _worst(rows, scores)
    (out / "report.md").write_text("\n".join(md), "utf-8")
    plot(out / "report.png", summary)


def plot(path: Path, summary: dict[str, Any]) -> None:
    """Bar charts of the rate metrics by language and by kind, and a latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    for ax, key, title in ((axes[0], "by_language", "by language"), (axes[1], "by_kind", "by kind")):
        groups = summary[key]
        names = list(groups)
        width = 0.8 / len(RATE_METRICS)
        for i, metric in enumerate(RATE_METRICS):
            values = [groups[g].get(metric) or 0.0 for g in names]
            ax.bar([x + i * width for x in range(len(names))], values, width, label=metric)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(names))], names, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"Metrics {title}")
    axes[0].legend(fontsize=7, loc="upper right")
    totals = [s["total_ms"] / 1000 for s in summary["per_question"] if s.get("total_ms") is not None]
    firsts = [
        s["first_token_ms"] / 1000 for s in summary["per_question"] if s.get("first_token_ms") is not None
    ]
    axes[2].hist([totals, firsts], bins=15, label=["total", "first token"])
    axes[2].set_xlabel("seconds")
    axes[2].set_title("Latency")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
