"""Scoring of question sets: pure logic on hand-made answers."""

from __future__ import annotations

from service.evaluation.metrics import fold, mentions_all, score_one, summarise

Q_WHO = {
    "id": "q1",
    "kind": "who",
    "must_mention": ["Peskov"],
    "gold_outlets": ["WIRED Italia", "Il Messaggero Veneto"],
}
Q_NONE = {"id": "q2", "kind": "unanswerable", "must_mention": [], "gold_outlets": []}


def answer(text: str, outlets: list[str], abstained: bool = False) -> dict:
    return {"answer": text, "abstained": abstained, "citations": [{"outlet": o} for o in outlets]}


def test_terms_match_without_case_or_accents():
    assert fold("Perché ÈCCO") == "perche ecco"
    assert mentions_all("Dmitry PESKOV ha smentito", ["peskov"])
    assert not mentions_all("Il Cremlino ha smentito", ["Peskov"])


def test_summary_counts_precision_recall_and_abstention():
    scores = [
        score_one(Q_WHO, answer("Peskov [1] [2]", ["WIRED Italia", "Corriere della Sera", "WIRED Italia"])),
        score_one(Q_NONE, answer("Invented [1]", ["ANSA"])),
        score_one(Q_NONE, answer("Not in the articles.", [], abstained=True)),
    ]
    s = summarise(scores)
    assert s["must_mention_share"] == 1.0
    assert s["outlet_precision"] == round(1 / 3, 4)  # WIRED right; Corriere and the unanswerable's ANSA wrong
    assert s["outlet_recall"] == 0.5
    assert s["abstention_accuracy"] == 0.5
    assert s["false_abstention_rate"] == 0.0
    assert s["by_kind"]["unanswerable"]["abstained"] == 1
