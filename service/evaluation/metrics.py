"""Pure scoring functions for question sets in the ``questions.jsonl`` shape.

A question record has ``question``, ``kind`` (``unanswerable`` marks questions the
corpus cannot answer), ``must_mention`` (terms a correct answer contains) and
``gold_outlets`` (outlets whose passages support the answer). An answer record is
the JSON body of ``POST /v1/ask``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def fold(text: str) -> str:
    """Case- and accent-insensitive form used for term and outlet matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def mentions_all(answer: str, terms: Iterable[str]) -> bool:
    """True when every term occurs in the answer (folded substring match)."""
    folded = fold(answer)
    return all(fold(t) in folded for t in terms)


@dataclass
class QuestionScore:
    id: str
    kind: str
    answerable: bool
    abstained: bool
    mentions_all: bool
    cited: list[str]
    gold: list[str]
    true_positive: int  # distinct cited outlets that are gold

    @property
    def abstention_correct(self) -> bool:
        return self.abstained != self.answerable


def score_one(question: dict[str, Any], answer: dict[str, Any]) -> QuestionScore:
    """Score one answer against its question record."""
    answerable = question.get("kind") != "unanswerable"
    cited = sorted({c["outlet"] for c in answer.get("citations", [])})
    gold = list(question.get("gold_outlets", []))
    gold_folded = {fold(g) for g in gold}
    return QuestionScore(
        id=str(question.get("id", "")),
        kind=str(question.get("kind", "")),
        answerable=answerable,
        abstained=bool(answer.get("abstained")),
        mentions_all=bool(question.get("must_mention"))
        and mentions_all(answer.get("answer", ""), question["must_mention"]),
        cited=cited,
        gold=gold,
        true_positive=sum(fold(c) in gold_folded for c in cited),
    )


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def summarise(scores: Sequence[QuestionScore]) -> dict[str, Any]:
    """Aggregate figures over a run.

    * ``must_mention_share``: answerable questions whose answer contains every term.
    * ``outlet_precision``: micro-averaged over all questions, distinct cited outlets
      against ``gold_outlets``; an outlet cited for an unanswerable question counts as
      wrong. ``outlet_recall``: micro-averaged over answerable questions (an abstention
      cites nothing).
    * ``abstention_accuracy``: unanswerable questions that abstained;
      ``false_abstention_rate``: answerable questions that abstained.
    """
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    cited = sum(len(s.cited) for s in scores)
    gold = sum(len(s.gold) for s in answerable)
    tp = sum(s.true_positive for s in answerable)
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({s.kind for s in scores}):
        ks = [s for s in scores if s.kind == kind]
        by_kind[kind] = {
            "n": len(ks),
            "must_mention_share": _ratio(sum(s.mentions_all for s in ks), len(ks))
            if kind != "unanswerable"
            else None,
            "abstained": sum(s.abstained for s in ks),
        }
    return {
        "questions": len(scores),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "must_mention_share": _ratio(sum(s.mentions_all for s in answerable), len(answerable)),
        "outlet_precision": _ratio(tp, cited),
        "outlet_recall": _ratio(tp, gold),
        "abstention_accuracy": _ratio(sum(s.abstained for s in unanswerable), len(unanswerable)),
        "false_abstention_rate": _ratio(sum(s.abstained for s in answerable), len(answerable)),
        "by_kind": by_kind,
        "per_question": [asdict(s) for s in scores],
    }
