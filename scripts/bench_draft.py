"""Prompt-lookup drafting (FONTI_LLM_DRAFT_TOKENS) against plain decoding: same run, same answers.

Ingests the articles into a throw-away store, then answers every question twice through
the real answer pipeline (retrieval, evidence read, short answer, verified sentences,
translation), once with each of two llama.cpp generators over the same weights: drafting
off, and drafting on with ``--draft`` tokens. The order alternates from one question to
the next, so neither side always runs on a warmer cache. Prints, per side, the medians of
the time to the first verified sentence, the total, and the decoding time after the
evidence read (total minus retrieval and evidence), their on/off ratios, how many
answers came out identical (drafting checks each proposal against the model's own greedy
choice; only floating-point near-ties can flip), and both sides' answers scored as
``fonti eval`` scores them, on the same retrieved passages.

    python scripts/bench_draft.py [--questions FILE] [--articles DIR] [--limit N] [--draft 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEV = REPO.parent / "shared" / "data" / "dev"


def _side(answer: Any, wall_ms: float) -> dict[str, Any]:
    t = answer.timings
    after_read = t.get("total_ms", wall_ms) - t.get("retrieval_ms", 0.0) - t.get("evidence_ms", 0.0)
    return {
        "answer": answer.answer,
        "body": {
            "answer": answer.answer,
            "abstained": answer.abstained,
            "citations": [{"outlet": c.outlet} for c in answer.citations],
        },
        "first_ms": t.get("first_sentence_ms", t.get("total_ms", wall_ms)),
        "total_ms": t.get("total_ms", wall_ms),
        "decode_ms": after_read,
        "completion_tokens": t.get("completion_tokens"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=Path, default=DEV / "questions.jsonl")
    ap.add_argument("--articles", type=Path, default=DEV / "articles")
    ap.add_argument("--limit", type=int, default=0, help="first N questions only (0: all)")
    ap.add_argument("--draft", type=int, default=10, help="draft tokens of the 'on' side")
    ap.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "draft.json")
    args = ap.parse_args()

    from ingest.files import iter_files, read_file
    from service.app import build_components
    from service.backends.llm import build_generator
    from service.pipeline.answer import AnswerService
    from service.pipeline.prompts import PromptLibrary
    from service.settings import Settings, StoreSettings

    questions = [json.loads(x) for x in args.questions.read_text("utf-8").splitlines() if x.strip()]
    if args.limit:
        questions = questions[: args.limit]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(store=StoreSettings(path=Path(tmp) / "store"))
        settings = base.model_copy(update={"llm": base.llm.model_copy(update={"draft_tokens": 0})})
        c = build_components(settings)
        drafting = build_generator(
            settings.llm.model_copy(update={"draft_tokens": args.draft}), settings.models_dir
        )
        try:
            prompts = PromptLibrary(settings.prompts_dir)
            drafting.warmup(prompts.system)
            services = {
                "off": c.answers,
                "on": AnswerService(c.retriever, drafting, prompts, settings),
            }
            c.ingest.ingest(
                [item for path, root in iter_files([args.articles]) for item in read_file(path, root)]
            )
            for i, q in enumerate(questions):
                row: dict[str, Any] = {"id": q.get("id"), "question": q["question"]}
                for side in ("off", "on") if i % 2 == 0 else ("on", "off"):
                    t0 = time.perf_counter()
                    answer = services[side].ask(q["question"])
                    row[side] = _side(answer, (time.perf_counter() - t0) * 1000)
                row["same"] = row["off"]["answer"] == row["on"]["answer"]
                rows.append(row)
                print(
                    f"{row['id']}: total off {row['off']['total_ms'] / 1000:.1f} s, "
                    f"on {row['on']['total_ms'] / 1000:.1f} s, same answer: {row['same']}",
                    flush=True,
                )
        finally:
            close = getattr(drafting, "close", None)
            if close:
                close()
            c.close()

    summary: dict[str, Any] = {"questions": len(rows), "draft_tokens": args.draft}
    for key in ("first_ms", "total_ms", "decode_ms"):
        off = statistics.median(r["off"][key] for r in rows)
        on = statistics.median(r["on"][key] for r in rows)
        ratios = [r["on"][key] / r["off"][key] for r in rows if r["off"][key] > 0]
        summary[key] = {
            "off_p50": round(off),
            "on_p50": round(on),
            "ratio_of_p50": round(on / off, 3) if off else None,
            "median_ratio": round(statistics.median(ratios), 3) if ratios else None,
        }
    summary["identical_answers"] = sum(r["same"] for r in rows)
    # The answers scored as `fonti eval` scores them (questions with gold fields only).
    from service.evaluation.metrics import RATE_METRICS, aggregate, score_one

    scored = [(q, r) for q, r in zip(questions, rows, strict=False) if q.get("kind")]
    if scored:
        for side in ("off", "on"):
            figures = aggregate([score_one(q, r[side]["body"]) for q, r in scored])
            summary[f"quality_{side}"] = {
                k: figures[k]
                for k in RATE_METRICS
                if not k.startswith("retrieval_") and figures.get(k) is not None
            }
    for r in rows:
        for side in ("off", "on"):
            del r[side]["body"]
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, ensure_ascii=False, indent=1), "utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
