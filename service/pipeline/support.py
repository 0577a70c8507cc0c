"""Checks each answer sentence against the passages it cites, with lexical and embedding support.

Support of a sentence by a passage = cosine of the sentence (as an e5 query, outlet
names and markers removed) with the passage's stored vector + ``LEXICAL_WEIGHT`` × the
share of the sentence's content words found in the passage. The weights and
thresholds were chosen on the dev set (figures in the README): when another prompt
passage supports a sentence clearly better than the cited one (by ``REATTRIBUTE_MARGIN``),
the citation moves to it (on the dev answers: 5 moves onto a gold outlet, none away
from one); a sentence without a marker gets the best passage when its support reaches
``ATTACH_MIN``; a sentence whose best cited support stays under ``SUPPORTED_MIN`` is
flagged ``unsupported`` unless its figures or most of its words are in the cited
passages (cross-language paraphrase scores low cosines: "45,000 people" vs "45mila").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ingest.chunking import split_sentences
from service.backends.embedder import Embedder
from service.pipeline.cite import markers_in, number_keys, overlap, strip_outlets, unsupported_numbers
from service.pipeline.retrieve import Passage

LEXICAL_WEIGHT = 0.1
REATTRIBUTE_MARGIN = 0.04
ATTACH_MIN = 0.88
SUPPORTED_MIN = 0.80
# Under SUPPORTED_MIN a sentence still counts as supported when its figures, or this
# share of its content words, are in the cited passages.
VERBATIM_OVERLAP = 0.5
_LEAD = re.compile(r"(?i)^\s*(according to|secondo|stando a|per)\b\s*,?")
_MARKERS = re.compile(r"\s*\[\d+\]")


@dataclass
class SentenceCheck:
    """One answer sentence, the final citation numbers it carries, and whether it is supported."""

    text: str
    citations: list[int]
    unsupported: bool
    support: float


def claim_of(sentence: str, passages: list[Passage]) -> str:
    """The sentence as a claim: no markers, no outlet names, no "According to"."""
    text = strip_outlets(_MARKERS.sub(" ", sentence), (p.outlet for p in passages))
    return re.sub(r"\s+", " ", _LEAD.sub(" ", text)).strip(" ,")


class SupportChecker:
    """Scores sentences against passages with the service's embedder."""

    def __init__(self, embedder: Embedder):
        self._embedder = embedder

    def scores(self, sentence: str, passages: list[Passage]) -> np.ndarray:
        """Support of ``sentence`` by each passage (higher is better; ~0.8 weak, ~0.95 verbatim)."""
        claim = claim_of(sentence, passages)
        if not claim:
            return np.zeros(len(passages), dtype=np.float32)
        vectors = self._vectors(passages)
        cos = vectors @ self._embedder.embed_query(claim)
        lex = np.array([overlap(claim, p.text) for p in passages], dtype=np.float32)
        return np.asarray(cos + LEXICAL_WEIGHT * lex, dtype=np.float32)

    def _vectors(self, passages: list[Passage]) -> np.ndarray:
        missing = [p for p in passages if p.vector is None]
        if missing:
            fresh = self._embedder.embed_passages([f"{p.title}\n{p.text}" for p in missing])
            for p, v in zip(missing, fresh, strict=True):
                p.vector = v
        return np.stack([np.asarray(p.vector, dtype=np.float32) for p in passages])

    def verify(
        self, text: str, passages: list[Passage], order: list[int]
    ) -> tuple[str, list[int], list[SentenceCheck]]:
        """Re-attribute, attach or flag each sentence; returns the text, its order and the checks.

        ``order`` maps marker k of ``text`` to passage ``order[k-1]`` (1-based prompt numbers).
        """
        order = list(order)
        out: list[str] = []
        flags: list[tuple[bool, float]] = []
        for sentence in split_sentences(text):
            if len(sentence.split()) < 3 and not markers_in(sentence):
                out.append(sentence)
                flags.append((False, 1.0))
                continue
            scores = self.scores(sentence, passages)
            cited = [order[k - 1] for k in markers_in(sentence) if 1 <= k <= len(order)]
            best = int(np.argmax(scores)) + 1
            if cited:
                cited_best = max(float(scores[n - 1]) for n in cited)
                if best not in cited and scores[best - 1] > cited_best + REATTRIBUTE_MARGIN:
                    sentence, cited = self._recite(sentence, best, order), [best]
            elif scores[best - 1] >= ATTACH_MIN:
                sentence, cited = self._recite(sentence, best, order), [best]
            support = max((float(scores[n - 1]) for n in cited), default=0.0)
            out.append(sentence)
            flags.append((support < SUPPORTED_MIN and not self._verbatim(sentence, passages, cited), support))
        # Dense renumbering by first use, sentence by sentence so checks stay aligned.
        used: list[int] = []
        for sentence in out:
            for k in markers_in(sentence):
                if 1 <= k <= len(order) and order[k - 1] not in used:
                    used.append(order[k - 1])

        def new_marker(m: re.Match[str]) -> str:
            k = int(m.group(1))
            return f"[{used.index(order[k - 1]) + 1}]" if 1 <= k <= len(order) else ""

        checks = []
        for sentence, (unsupported, support) in zip(out, flags, strict=True):
            sentence = re.sub(r"\[(\d+)\]", new_marker, sentence)
            checks.append(
                SentenceCheck(sentence, sorted(set(markers_in(sentence))), unsupported, round(support, 4))
            )
        return " ".join(c.text for c in checks), used, checks

    @staticmethod
    def _verbatim(sentence: str, passages: list[Passage], cited: list[int]) -> bool:
        """The cited passages hold the claim's figures, or most of its words.

        A short English claim scores a low cosine against a long Italian passage even
        when it states the passage's figure ("45,000 people" for "45mila fedeli"); the
        figure itself, checked like the grounding step does, is the stronger evidence.
        """
        if not cited:
            return False
        claim = claim_of(sentence, passages)
        evidence = " ".join(f"{passages[n - 1].title} {passages[n - 1].text}" for n in cited)
        if number_keys(claim) and not unsupported_numbers(claim, evidence):
            return True
        return overlap(claim, evidence) >= VERBATIM_OVERLAP

    @staticmethod
    def _recite(sentence: str, passage: int, order: list[int]) -> str:
        """``sentence`` citing only ``passage`` (its marker placed where the first one was)."""
        if passage not in order:
            order.append(passage)
        marker = f"[{order.index(passage) + 1}]"
        first = re.search(r"\s*\[\d+\]", sentence)
        if first:
            head = sentence[: first.start()] + f" {marker}"
            return head + _MARKERS.sub("", sentence[first.end() :])
        m = re.search(r"[.!?…]+[»\"”’]?$", sentence)
        return sentence[: m.start()] + f" {marker}" + sentence[m.start() :] if m else f"{sentence} {marker}"
