"""``fonti eval``: score a question set against a deployment and write the report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

# flag -> (metric, kind of bound)
THRESHOLDS = {
    "min_answer_correct": ("answer_correct", "min"),
    "min_citation_precision": ("citation_precision", "min"),
    "min_citation_recall": ("citation_recall", "min"),
    "min_abstention_accuracy": ("abstention_accuracy", "min"),
    "max_false_abstention_rate": ("false_abstention_rate", "max"),
    "min_retrieval_recall": ("retrieval_outlet_recall_at_k", "min"),
    "max_http_errors": ("http_errors", "max"),
}
EXIT_BELOW_THRESHOLD = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``fonti eval``."""
    p.add_argument("questions", type=Path, help="question file (JSONL; 'id' and 'question' required)")
    p.add_argument("--url", default=None, help="a running Fonti (the normal case)")
    p.add_argument(
        "--articles", type=Path, default=None, help="start a local Fonti with these articles instead"
    )
    p.add_argument(
        "--out", type=Path, default=Path("var/eval/latest"), help="report folder (default var/eval/latest)"
    )
    p.add_argument("--concurrency", type=int, default=1, help="questions in flight at once (default 1)")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--k", type=int, default=5, help="hits of /v1/search scored for retrieval (default 5)")
    p.add_argument("--compare", type=Path, default=None, help="an older summary.json: print the deltas")
    p.add_argument(
        "--retrieval-only",
        action="store_true",
        help="only /v1/search: gold-outlet recall@5/@10, article hit@5, MRR (no answers generated)",
    )
    for flag, (metric, bound) in THRESHOLDS.items():
        word = "below" if bound == "min" else "above"
        p.add_argument(
            f"--{flag.replace('_', '-')}", type=float, default=None, help=f"fail when {metric} is {word}"
        )


def _print_compare(old_path: Path, summary: dict[str, Any]) -> None:
    from service.evaluation.metrics import compare

    old = json.loads(old_path.read_text("utf-8"))
    print(f"compared with {old_path}:")
    for key, (a, b, delta) in compare(old, summary).items():
        sign = "" if delta is None else f"{delta:+.4g}"
        print(f"  {key:30} {a!s:>10} -> {b!s:>10}  {sign}")


def run_eval(args: argparse.Namespace) -> int:
    """Entry point of ``fonti eval``; returns the exit status."""
    import httpx
    from tqdm import tqdm

    from service.evaluation.metrics import check_thresholds, summarise
    from service.evaluation.report import write_report
    from service.evaluation.runner import QuestionFileError, load_questions, local_service, run_questions

    if (args.url is None) == (args.articles is None):
        print("fonti: eval needs exactly one of --url (a running service) or --articles", file=sys.stderr)
        return 2
    if args.compare is not None and not args.compare.is_file():
        print(f"fonti: {args.compare}: no such summary file", file=sys.stderr)
        return 2
    try:
        questions = load_questions(args.questions)
    except QuestionFileError as exc:
        print(f"fonti: {exc}", file=sys.stderr)
        return 2
    questions = questions[: args.limit] if args.limit else questions
    from service.discovery import client_headers
    from service.settings import Settings

    headers = client_headers(Settings())  # FONTI_API_KEY, when the service wants one
    service: AbstractContextManager[str] = (
        local_service(args.articles) if args.articles else nullcontext(args.url)
    )
    scores, rows = [], []
    interrupted = False
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    if args.retrieval_only:
        from service.evaluation.retrieval import run_retrieval

        with service as url, httpx.Client(base_url=url.rstrip("/"), timeout=600, headers=headers) as client:
            run_retrieval(client, questions, args.out)
        return 0
    with service as url, httpx.Client(base_url=url.rstrip("/"), timeout=600, headers=headers) as client:
        bar = tqdm(total=len(questions), unit="q", desc="eval")

        def done(score: Any, row: dict[str, Any]) -> None:
            scores.append(score)
            rows.append(row)
            bar.update(1)

        try:
            run_questions(client, questions, args.k, max(1, args.concurrency), done)
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: writing the questions done so far", file=sys.stderr)
        finally:
            bar.close()
    order = {q["id"]: i for i, q in enumerate(questions)}
    pairs = sorted(zip(scores, rows, strict=True), key=lambda p: order[p[0].id])
    summary = summarise([s for s, _ in pairs])
    meta = {
        "questions_file": str(args.questions),
        "service": args.url or f"local, articles from {args.articles}",
        "started": started,
        "questions_done": f"{len(pairs)} of {len(questions)}" + (" (interrupted)" if interrupted else ""),
        "k": args.k,
    }
    write_report(args.out, summary, [r for _, r in pairs], meta)
    overall = summary["overall"]
    print(json.dumps(overall, indent=1))
    print(f"report: {args.out / 'report.md'}")
    if args.compare:
        _print_compare(args.compare, summary)
    bounds: dict[str, dict[str, float]] = {"min": {}, "max": {}}
    for flag, (metric, bound) in THRESHOLDS.items():
        value = getattr(args, flag)
        if value is not None:
            bounds[bound][metric] = value
    failures = check_thresholds(overall, bounds["min"], bounds["max"])
    for line in failures:
        print(f"fonti: threshold: {line}", file=sys.stderr)
    if interrupted:
        return 130
    return EXIT_BELOW_THRESHOLD if failures else 0
