"""Figures the model guessed: digits it wrote with low probability.

A small model copying a figure from a passage writes it with near certainty. When the
passages do not state what the question asks, it still fills the slot with a figure
of the story — "Leo XIV's first apostolic trip is on 14 September 1955", his birth
date — and hesitates between the story's figures while writing it. Grounding cannot
see this (the figure is in the cited passage); the model's own token probabilities
can. On the dev questions, in two prompt variants (the default, and eight passages in
rank order), every figure of a right answer was written with a joint probability of
its digits of 0.50 or more; the guessed date had 0.24–0.26. The default floor, 0.35,
sits between them on a log scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ingest.chunking import split_sentences
from service.pipeline.cite import renumber, strip_outlets

_FIGURE = re.compile(r"\d+(?:[.,:]\d+)*")


def guessed_figures(pieces: Sequence[tuple[str, float]], min_probability: float) -> set[str]:
    """Figures of the reply written with a joint probability of their digits under ``min_probability``.

    ``pieces`` is the reply as (text, log-probability) pairs in order; a figure's
    probability is the product over the pieces it overlaps. Digits inside brackets
    (citation markers) and on a "Sources:" line are not claims. A figure the model also
    wrote with confidence elsewhere in the reply is not a guess.
    """
    if min_probability <= 0 or not pieces:
        return set()
    text, starts = "", []
    for piece, _ in pieces:
        starts.append(len(text))
        text += piece
    floor = math.log(min_probability)
    guessed: set[str] = set()
    sure: set[str] = set()
    for m in _FIGURE.finditer(text):
        if text.rfind("[", 0, m.start()) > text.rfind("]", 0, m.start()):
            continue  # inside a marker
        line = text[text.rfind("\n", 0, m.start()) + 1 :]
        if line.lstrip().startswith("Sources:"):
            continue
        logprob = sum(
            lp
            for (piece, lp), start in zip(pieces, starts, strict=True)
            if start < m.end() and start + len(piece) > m.start()
        )
        (guessed if logprob < floor else sure).add(m.group())
    return guessed - sure


def drop_guessed_figures(
    text: str, order: list[int], guessed: set[str], outlets: Sequence[str] = ()
) -> tuple[str, list[int]]:
    """Remove the sentences that state a guessed figure; returns the text renumbered, and its order.

    Digits inside outlet names ("RTL 102.5") are not figures of the sentence.
    """
    if not guessed:
        return text, order
    figures = "|".join(re.escape(g) for g in sorted(guessed, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\d.,:])(?:{figures})(?![\d]|[.,:]\d)")
    kept = [s for s in split_sentences(text) if not pattern.search(strip_outlets(s, outlets))]
    return renumber(" ".join(kept), order)
