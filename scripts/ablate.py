"""What each kept verification rule is worth: metrics with it and without it, from one traced eval run.

    FONTI_ANSWER_TRACE=true fonti eval QUESTIONS.jsonl --articles DIR --out OUT
    python scripts/ablate.py QUESTIONS.jsonl OUT/results.jsonl

The trace of every answer lists each generated sentence, the check it failed (if any),
the evidence outlets the service added to the first sentence, the translation of a sentence
written in another language than the question's, and the short answer with its failure
(the answer it stopped is still written, into the trace only). Turning a rule off shows the
sentences it stopped (or drops the outlets it added), so the answer each question would
have had is rebuilt offline and scored with the same definitions as ``fonti eval``. The
model's text does not change when a check is off (checks only decide what is shown), so
these figures are exact for the checks; the calibrated decision itself is the mechanism,
compared with its single signals by ``scripts/calibrate.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.evaluation.metrics import RATE_METRICS, aggregate, score_one  # noqa: E402
from service.pipeline.verify import add_markers, name_outlets  # noqa: E402

VARIANTS = {
    "all rules (as served)": set(),
    "without the figure check": {"figures"},
    "without adding the other evidence outlets": {"added"},
    "without the short-answer check": {"short"},
    "without translating sentences in another language": {"translate"},
    "without rewriting words copied from a passage in another language": {"copied"},
    "without naming the cited outlets": {"naming"},
}
# The answer metrics of ``fonti eval`` (its retrieval metrics do not change with a check).
REPORTED = tuple(m for m in RATE_METRICS if not m.startswith("retrieval_"))


def rebuild(body: dict[str, Any], off: set[str]) -> dict[str, Any]:
    """The answer body as it would have been with the rules in ``off`` turned off."""
    trace = body.get("trace")
    if not trace or trace.get("abstain") or not trace.get("sentences"):
        return body  # decided before any sentence: the checks played no part
    if (trace.get("short") or {}).get("failure") and "short" not in off:
        return body  # the short answer stopped it: its sentences were never shown
    outlets = {p["number"]: p["outlet"] for p in trace["passages"]}
    shown, cited = [], []
    for s in trace["sentences"]:
        failure = s.get("failure") or ""
        if failure and not any(rule in failure for rule in off):
            continue
        added = [] if "added" in off or shown else list(s.get("added") or [])
        numbers = list(s["passages"]) + added
        rewritten = "translate" not in off and not ("copied" in off and s.get("copied"))
        translated = s.get("translation") if rewritten and not s.get("translation_failure") else None
        text = add_markers(translated or s["text"], added)
        shown.append(text if "naming" in off else name_outlets(text, outlets))
        cited += [n for n in numbers if n not in cited]
    if not shown:
        return {**body, "answer": "", "abstained": True, "citations": []}
    return {
        **body,
        "answer": " ".join(shown),
        "abstained": False,
        "citations": [{"outlet": outlets[n]} for n in cited if n in outlets],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("results", type=Path)
    args = ap.parse_args()
    questions = {
        q["id"]: q for q in map(json.loads, args.questions.read_text("utf-8").splitlines()) if q.get("id")
    }
    rows = [json.loads(line) for line in args.results.read_text("utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("answer")]
    if not any((r["answer"].get("trace") or {}).get("sentences") for r in rows):
        raise SystemExit("ablate.py: no traces in the results; run the eval with FONTI_ANSWER_TRACE=true")
    print("| variant | " + " | ".join(REPORTED) + " |")
    print("|---" * (len(REPORTED) + 1) + "|")
    for name, off in VARIANTS.items():
        scores = [score_one(questions[r["id"]], rebuild(r["answer"], off)) for r in rows]
        figures = aggregate(scores)
        print(f"| {name} | " + " | ".join(f"{figures[k]}" for k in REPORTED) + " |")


if __name__ == "__main__":
    main()
