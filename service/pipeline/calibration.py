"""One learned decision over all evidence signals: which passages state the answer, and whether any does.

Every signal on its own is weak (a 1.5B model's pick, retrieval ranks and scores); two
small logistic regressions combine them:

* **passage model**: the probability that a passage states the answer, from the model's
  probability of naming it first, its retrieval rank, its fused and dense scores
  relative to the best passage, and whether it belongs to the best-ranked story;
* **question model**: the probability that the passages answer the question at all,
  from the model's probability of ``NONE`` and the best passage probability. (The spread
  of the model's pick, the best dense score and the question's figures that no passage
  holds were measured too and added nothing out of fold: they are not used.)

Both were fitted by ``scripts/calibrate.py`` on the ``tune`` split of the calibration
corpus and the dev set, labels from their gold outlets and articles, and stored with
their two thresholds in ``calibration.json`` beside this module; ``data/calibration/test``
never took part. Nothing here is tuned by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from service.pipeline.evidence import EvidenceRead
from service.pipeline.retrieve import Passage

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")

PASSAGE_FEATURES = ("log_first", "first_share", "rank", "fused_share", "dense_gap", "top_story")
QUESTION_FEATURES = ("logit_none", "best_passage")


def passage_features(passages: Sequence[Passage], read: EvidenceRead) -> list[dict[str, float]]:
    """The passage model's inputs, one dict per passage (in prompt order, passage ``number`` order)."""
    best_first = max(read.first) or 1.0
    best_fused = max(p.score for p in passages) or 1.0
    best_dense = max(p.dense_score for p in passages)
    ranked = sorted(passages, key=lambda p: -p.score)
    top_article = ranked[0].article_id
    rank = {id(p): i for i, p in enumerate(ranked)}
    return [
        {
            "log_first": math.log(read.first[i] + 1e-3),
            "first_share": read.first[i] / best_first,
            "rank": math.log1p(rank[id(p)]),
            "fused_share": p.score / best_fused,
            "dense_gap": p.dense_score - best_dense,
            "top_story": float(p.article_id == top_article),
        }
        for i, p in enumerate(passages)
    ]


def question_features(read: EvidenceRead, passage_probs: Sequence[float]) -> dict[str, float]:
    """The question model's inputs."""
    p = min(max(read.p_none, 1e-4), 1 - 1e-4)
    return {"logit_none": math.log(p / (1 - p)), "best_passage": max(passage_probs, default=0.0)}


@dataclass(frozen=True)
class Logistic:
    """A fitted logistic regression over named, standardised features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probability(self, values: dict[str, float]) -> float:
        z = self.intercept
        for name, mu, sd, w in zip(self.features, self.mean, self.scale, self.coef, strict=True):
            z += w * (values[name] - mu) / (sd or 1.0)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Logistic:
        return cls(
            tuple(d["features"]),
            tuple(float(x) for x in d["mean"]),
            tuple(float(x) for x in d["scale"]),
            tuple(float(x) for x in d["coef"]),
            float(d["intercept"]),
        )


@dataclass(frozen=True)
class Decision:
    """The evidence set (passage numbers, best first), each passage's probability, and the verdict."""

    evidence: list[int]
    passage_probs: list[float]
    answerable: float
    abstain: bool
    corroborating: list[int]  # evidence passages sure enough to be cited beside the model's own


@dataclass(frozen=True)
class Calibrator:
    """The two fitted models and their thresholds (see the module doc)."""

    passage: Logistic
    question: Logistic
    cite_threshold: float
    answer_threshold: float
    max_evidence: int
    add_threshold: float

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibrator:
        data = json.loads(path.read_text("utf-8"))
        return cls(
            Logistic.from_dict(data["passage_model"]),
            Logistic.from_dict(data["question_model"]),
            float(data["cite_threshold"]),
            float(data["answer_threshold"]),
            int(data["max_evidence"]),
            float(data.get("add_threshold", data["cite_threshold"])),
        )

    def decide(self, passages: Sequence[Passage], read: EvidenceRead) -> Decision:
        """Which passages state the answer (at least the likeliest one), and whether to abstain."""
        probs = [self.passage.probability(f) for f in passage_features(passages, read)]
        answerable = self.question.probability(question_features(read, probs))
        ranked = sorted(range(len(passages)), key=lambda i: -probs[i])
        chosen = [i for i in ranked if probs[i] >= self.cite_threshold][: self.max_evidence] or ranked[:1]
        return Decision(
            evidence=[passages[i].number for i in chosen],
            passage_probs=probs,
            answerable=answerable,
            abstain=answerable < self.answer_threshold,
            corroborating=[passages[i].number for i in chosen if probs[i] >= self.add_threshold],
        )


@cache
def default_calibrator() -> Calibrator:
    """The calibration shipped with Fonti (``calibration.json``)."""
    return Calibrator.load()
