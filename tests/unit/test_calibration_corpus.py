"""The calibration corpus: the test split is frozen, the splits are apart, the shape is as promised."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from tests.factories import REPO

CORPUS = REPO / "data" / "calibration"


def questions(split: str) -> list[dict]:
    lines = (CORPUS / split / "questions.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_the_test_split_is_exactly_the_frozen_one():
    recorded = {}
    for line in (CORPUS / "test.sha256").read_text("utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    test = CORPUS / "test"
    present = {f"./{p.relative_to(test)}" for p in test.rglob("*") if p.is_file()}
    assert present == set(recorded), "files were added to or removed from the frozen test split"
    for name, digest in recorded.items():
        assert hashlib.sha256((test / name).read_bytes()).hexdigest() == digest, f"{name} changed"


def test_the_splits_share_no_story_article_or_question():
    tune, test = questions("tune"), questions("test")
    assert not {q["id"] for q in tune} & {q["id"] for q in test}
    assert not {q["story"] for q in tune} & {q["story"] for q in test}
    tune_articles = {p.name for p in (CORPUS / "tune" / "articles").glob("*.txt")}
    test_articles = {p.name for p in (CORPUS / "test" / "articles").glob("*.txt")}
    assert not tune_articles & test_articles


@pytest.mark.parametrize("split", ["tune", "test"])
def test_every_gold_label_points_into_its_own_split(split):
    articles = {p.name: p.read_text("utf-8") for p in (CORPUS / split / "articles").glob("*.txt")}
    for q in questions(split):
        assert q["story"] in articles, q["id"]
        for article in q["gold_articles"]:
            assert article in articles, (q["id"], article)
        for outlet in q["gold_outlets"]:
            assert any(f"({outlet})" in articles[a] for a in q["gold_articles"]), (q["id"], outlet)
        if q["kind"] == "unanswerable":
            assert not (q["gold_outlets"] or q["gold_articles"] or q["must_mention"]), q["id"]


def test_the_corpus_has_the_promised_shape():
    both = questions("tune") + questions("test")
    langs, kinds = Counter(q["lang"] for q in both), Counter(q["kind"] for q in both)
    articles = list(CORPUS.glob("*/articles/*.txt"))
    assert len(articles) >= 40 and len(both) >= 200
    assert langs["en"] and langs["it"] and langs["fr"] + langs["de"] + langs["es"] >= 30
    assert {"who", "factoid", "date-number", "conflict", "multi-outlet"} <= set(kinds)
    assert kinds["unanswerable"] / len(both) >= 0.25
