"""Scoring of question sets: pure logic on hand-made answers, edge cases included."""

from __future__ import annotations

from service.evaluation.metrics import (
    check_thresholds,
    compare,
    fold,
    mentions_all,
    percentile,
    score_one,
    summarise,
)

Q_WHO = {
    "id": "q1",
    "lang": "en",
    "kind": "who",
    "must_mention": ["Peskov"],
    "gold_outlets": ["WIRED Italia", "Il Messaggero Veneto"],
    "gold_articles": ["a.txt"],
}
Q_RATE = {
    "id": "q2",
    "lang": "it",
    "kind": "date-number",
    "must_mention": ["3,75"],
    "gold_outlets": ["Adnkronos"],
}
Q_NONE = {"id": "q3", "lang": "it", "kind": "unanswerable", "must_mention": [], "gold_outlets": []}
Q_BARE = {"id": "q4", "question": "only id and question"}


def answer(text: str, outlets: list[str], abstained: bool = False) -> dict:
    return {"answer": text, "abstained": abstained, "citations": [{"outlet": o} for o in outlets]}


def test_terms_match_without_case_accents_or_decimal_separator():
    assert fold("Perché ÈCCO 3,75") == "perche ecco 3.75"
    assert mentions_all("Dmitry PESKOV ha smentito", ["peskov"])
    assert mentions_all("the rate falls to 3.75%", ["3,75"])
    assert not mentions_all("Il Cremlino ha smentito", ["Peskov"])


def test_summary_counts_precision_recall_abstention_and_retrieval():
    hits = [{"outlet": "WIRED Italia", "article_id": "a.txt"}, {"outlet": "ANSA", "article_id": "b.txt"}]
    scores = [
        score_one(
            Q_WHO, answer("Peskov [1] [2]", ["WIRED Italia", "Corriere della Sera"]), hits, total_ms=900.0
        ),
        score_one(Q_NONE, answer("Invented [1]", ["ANSA"])),  # unanswerable answered: its citation is wrong
        score_one(
            Q_RATE, answer("Not in the articles.", [], abstained=True)
        ),  # no citations, false abstention
    ]
    overall = summarise(scores)["overall"]
    assert overall["answer_correct"] == 0.5  # q1 right, q2 abstained
    assert overall["citation_precision"] == round(1 / 3, 4)
    assert overall["citation_recall"] == round(1 / 3, 4)  # 1 of 2 gold for q1, 0 of 1 for q2
    assert overall["abstention_accuracy"] == 0.0
    assert overall["false_abstention_rate"] == 0.5
    assert overall["retrieval_outlet_recall_at_k"] == 0.5 and overall["retrieval_article_hit_at_k"] == 1.0
    assert overall["latency_total_ms_p50"] == 900.0


def test_missing_fields_skip_metrics_instead_of_faking_them():
    s = score_one(Q_BARE, answer("Something [1]", ["ANSA"]), hits=[{"outlet": "ANSA", "article_id": "x"}])
    assert s.answer_correct is None and s.answerable is None and s.abstention_correct is None
    assert s.retrieval_outlet_recall is None and s.retrieval_article_hit is None
    summary = summarise([s])
    assert summary["overall"]["answer_correct"] is None
    assert summary["overall"]["citation_precision"] is None
    assert summary["by_language"] == {} and summary["by_kind"] == {}


def test_errors_count_and_groups_split_by_language_and_kind():
    scores = [score_one(Q_WHO, None, error="HTTP 500"), score_one(Q_RATE, answer("3,75 [1]", ["Adnkronos"]))]
    summary = summarise(scores)
    assert summary["overall"]["http_errors"] == 1
    assert summary["overall"]["answer_correct"] == 0.5
    assert summary["by_language"]["it"]["answer_correct"] == 1.0
    assert summary["by_kind"]["who"]["answer_correct"] == 0.0


def test_percentile_compare_and_thresholds():
    assert percentile([100.0, 200.0, 300.0, 400.0], 50) == 200.0
    assert percentile([100.0, 200.0, 300.0, 400.0], 95) == 400.0
    assert percentile([], 50) is None
    deltas = compare({"overall": {"answer_correct": 0.4}}, {"overall": {"answer_correct": 0.5}})
    assert deltas["answer_correct"] == (0.4, 0.5, 0.1)
    assert deltas["citation_recall"] == (None, None, None)
    overall = {"answer_correct": 0.5, "false_abstention_rate": 0.2, "citation_recall": None}
    assert check_thresholds(overall, {"answer_correct": 0.5}, {"false_abstention_rate": 0.2}) == []
    failures = check_thresholds(
        overall, {"answer_correct": 0.6, "citation_recall": 0.1}, {"false_abstention_rate": 0.1}
    )
    assert len(failures) == 3 and "answer_correct = 0.5 is below the minimum 0.6" in failures
