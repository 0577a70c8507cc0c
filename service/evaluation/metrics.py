"""Pure scoring functions for question sets in the ``questions.jsonl`` shape.

A question record needs ``id`` and ``question``; the optional fields enable metrics:
``kind`` (``unanswerable`` marks questions the corpus cannot answer), ``lang``,
``must_mention`` (terms a correct answer contains), ``gold_outlets`` and
``gold_articles``. A metric whose field is missing is ``None`` for that question and
left out of the averages: never faked. Definitions are in the README ("Evaluation").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

UNANSWERABLE = "unanswerable"


def fold(text: str) -> str:
    """Case- and accent-insensitive form with one decimal separator ("3,75" -> "3.75")."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return re.sub(r"(?<=\d),(?=\d)", ".", plain)


def mentions_all(answer: str, terms: Iterable[str]) -> bool:
    """True when every term occurs in the answer (folded substring match)."""
    folded = fold(answer)
    return all(fold(t) in folded for t in terms)


def answer_language(answer: str, outlets: Iterable[str]) -> str:
    """The language an answer is written in, judged on its prose: markers and outlet names left out."""
    from service.pipeline.language import prose_language

    return prose_language(answer, outlets)


def _distinct_folded(values: Iterable[str]) -> set[str]:
    return {fold(v) for v in values if v}


@dataclass
class QuestionScore:
    """Per-question metric values; ``None`` where the question set lacks the field."""

    id: str
    language: str | None
    kind: str | None
    answerable: bool | None
    abstained: bool
    answer_correct: bool | None
    cited: list[str] = field(default_factory=list)
    gold_outlets: list[str] = field(default_factory=list)
    cited_gold: int = 0  # distinct cited outlets that are gold
    retrieval_outlet_recall: float | None = None
    retrieval_article_hit: bool | None = None
    total_ms: float | None = None
    first_token_ms: float | None = None
    error: str | None = None
    in_language: bool | None = None  # a given answer written in the question's language

    @property
    def abstention_correct(self) -> bool | None:
        return None if self.answerable is None else self.abstained != self.answerable


def score_one(
    question: dict[str, Any],
    answer: dict[str, Any] | None,
    hits: list[dict[str, Any]] | None = None,
    error: str | None = None,
    total_ms: float | None = None,
    first_token_ms: float | None = None,
) -> QuestionScore:
    """Score one ``/v1/ask`` body (and optional ``/v1/search`` hits) against its question."""
    kind = question.get("kind")
    answerable = None if kind is None else kind != UNANSWERABLE
    answer = answer or {}
    abstained = bool(answer.get("abstained")) if not error else False
    terms = question.get("must_mention")
    correct = None
    if error:
        correct = False if answerable is not False and terms else None
    elif answerable is not False and terms:
        correct = not abstained and mentions_all(answer.get("answer", ""), terms)
    cited = sorted({c.get("outlet", "") for c in answer.get("citations", []) if c.get("outlet")})
    lang = question.get("lang") or question.get("language")
    in_language = None
    if lang and not error and not abstained and answer.get("answer"):
        in_language = answer_language(answer["answer"], cited) == lang
    gold = list(question.get("gold_outlets") or [])
    gold_f = _distinct_folded(gold)
    recall_k = hit_k = None
    if hits is not None:
        if gold_f:
            found = _distinct_folded(h.get("outlet", "") for h in hits)
            recall_k = len(found & gold_f) / len(gold_f)
        if question.get("gold_articles"):
            ids = {a for h in hits for a in (h.get("article_ids") or [h.get("article_id")])}
            hit_k = bool(ids & set(question["gold_articles"]))
    return QuestionScore(
        id=str(question.get("id", "")),
        language=question.get("lang") or question.get("language"),
        kind=kind,
        answerable=answerable,
        abstained=abstained,
        answer_correct=correct,
        cited=cited,
        gold_outlets=gold,
        cited_gold=sum(fold(c) in gold_f for c in cited),
        retrieval_outlet_recall=recall_k,
        retrieval_article_hit=hit_k,
        total_ms=total_ms,
        first_token_ms=first_token_ms,
        error=error,
        in_language=in_language,
    )


def _mean(values: Iterable[float | bool | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    vals = sorted(values)
    if not vals:
        return None
    rank = max(1, math.ceil(q / 100 * len(vals)))
    return round(vals[rank - 1], 1)


def aggregate(scores: Sequence[QuestionScore]) -> dict[str, Any]:
    """Headline figures of a group of questions.

    * ``answer_correct``: share of answerable questions with ``must_mention`` whose
      answer has every term (an abstention or an error is incorrect).
    * ``citation_precision``: distinct cited outlets that are gold, over all cited
      outlets (micro); an outlet cited for an unanswerable question counts as wrong.
    * ``citation_recall``: gold outlets cited, over gold outlets (micro, answerable).
    * ``abstention_accuracy``: unanswerable questions that abstained;
      ``false_abstention_rate``: answerable questions that abstained.
    * ``answer_in_language``: given answers whose prose is in the question's language.
    * ``retrieval_outlet_recall_at_k`` / ``retrieval_article_hit_at_k``: from /v1/search.
    * latency percentiles of successful answers; ``http_errors``: failed questions.
    """
    ok = [s for s in scores if not s.error]
    labelled = [s for s in ok if s.answerable is not None]
    answerable = [s for s in labelled if s.answerable]
    unanswerable = [s for s in labelled if not s.answerable]
    cited = sum(len(s.cited) for s in labelled)
    with_gold = [s for s in answerable if s.gold_outlets]
    gold = sum(len(_distinct_folded(s.gold_outlets)) for s in with_gold)
    totals = [s.total_ms for s in ok if s.total_ms is not None]
    firsts = [s.first_token_ms for s in ok if s.first_token_ms is not None and not s.abstained]
    return {
        "questions": len(scores),
        "answer_correct": _mean(s.answer_correct for s in scores),
        "citation_precision": round(sum(s.cited_gold for s in labelled) / cited, 4) if cited else None,
        "citation_recall": round(sum(s.cited_gold for s in with_gold) / gold, 4) if gold else None,
        "abstention_accuracy": _mean(s.abstained for s in unanswerable),
        "false_abstention_rate": _mean(s.abstained for s in answerable),
        "answer_in_language": _mean(s.in_language for s in ok),
        "retrieval_outlet_recall_at_k": _mean(s.retrieval_outlet_recall for s in ok),
        "retrieval_article_hit_at_k": _mean(s.retrieval_article_hit for s in ok),
        "latency_total_ms_p50": percentile(totals, 50),
        "latency_total_ms_p95": percentile(totals, 95),
        "first_token_ms_p50": percentile(firsts, 50),
        "first_token_ms_p95": percentile(firsts, 95),
        "http_errors": sum(1 for s in scores if s.error),
    }


def summarise(scores: Sequence[QuestionScore]) -> dict[str, Any]:
    """Overall figures, the same per language and per kind, and the per-question rows."""

    def by(key: str) -> dict[str, Any]:
        groups: dict[str, list[QuestionScore]] = {}
        for s in scores:
            value = getattr(s, key)
            if value is not None:
                groups.setdefault(str(value), []).append(s)
        return {k: aggregate(v) for k, v in sorted(groups.items())}

    return {
        "overall": aggregate(scores),
        "by_language": by("language"),
        "by_kind": by("kind"),
        "per_question": [asdict(s) for s in scores],
    }


# Shares in 0..1 (the bars of report.png), then the other overall figures.
RATE_METRICS = (
    "answer_correct",
    "citation_precision",
    "citation_recall",
    "abstention_accuracy",
    "false_abstention_rate",
    "answer_in_language",
    "retrieval_outlet_recall_at_k",
)
HEADLINE = (
    *RATE_METRICS,
    "retrieval_article_hit_at_k",
    "latency_total_ms_p50",
    "latency_total_ms_p95",
    "first_token_ms_p50",
    "first_token_ms_p95",
    "http_errors",
)


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any, float | None]]:
    """``metric -> (old, new, delta)`` of the overall figures of two summaries."""
    o, n = old.get("overall", old), new.get("overall", new)
    out = {}
    for key in HEADLINE:
        a, b = o.get(key), n.get(key)
        delta = round(b - a, 4) if isinstance(a, int | float) and isinstance(b, int | float) else None
        out[key] = (a, b, delta)
    return out


def check_thresholds(
    overall: dict[str, Any], minimums: dict[str, float], maximums: dict[str, float]
) -> list[str]:
    """Failures, one line each: a metric under its minimum or over its maximum (missing fails too)."""
    failures = []
    for key, bound in minimums.items():
        value = overall.get(key)
        if value is None or value < bound:
            failures.append(f"{key} = {value} is below the minimum {bound}")
    for key, bound in maximums.items():
        value = overall.get(key)
        if value is None or value > bound:
            failures.append(f"{key} = {value} is above the maximum {bound}")
    return failures
