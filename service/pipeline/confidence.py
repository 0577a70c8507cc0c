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

from service.pipeline.cite import blank_markers, renumber, strip_outlets
from service.pipeline.sources import sources_list_end
from service.text import split_sentences

# A figure: digits with inner separators ("3,75", "19:13", "2-0", "14/09"); not the
# digits of a word ("G7", "COVID-19").
_FIGURE = re.compile(r"(?<![\w–-])\d+(?:[.,:/–-]\d+)*(?!\w)")


def _claims_only(text: str, outlets: Sequence[str]) -> str:
    """``text`` with markers, outlet names and sources lists blanked out, positions kept."""
    text = strip_outlets(blank_markers(text), outlets, keep_length=True)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        end = sources_list_end(line)
        lines[i] = " " * end + line[end:]
    return "\n".join(lines)


def guessed_figures(
    pieces: Sequence[tuple[str, float]],
    min_probability: float,
    question: str = "",
    outlets: Sequence[str] = (),
) -> set[str]:
    """Figures of the reply written with a joint probability of their digits under ``min_probability``.

    ``pieces`` is the reply as (text, log-probability) pairs in order; a figure's
    probability is the product over the pieces it overlaps, at its first occurrence
    (a guess repeated later is copied from the reply itself, with certainty). Citation
    markers, the list of a "Sources:" line, outlet names and the question's own
    figures are not claims.
    """
    if min_probability <= 0 or not pieces:
        return set()
    text, starts = "", []
    for piece, _ in pieces:
        starts.append(len(text))
        text += piece
    floor = math.log(min_probability)
    asked = set(_FIGURE.findall(question))
    first: dict[str, float] = {}
    for m in _FIGURE.finditer(_claims_only(text, outlets)):
        if m.group() in first or m.group() in asked:
            continue
        first[m.group()] = sum(
            lp
            for (piece, lp), start in zip(pieces, starts, strict=True)
            if start < m.end() and start + len(piece) > m.start()
        )
    return {figure for figure, logprob in first.items() if logprob < floor}


def drop_guessed_figures(
    text: str, order: list[int], guessed: set[str], outlets: Sequence[str] = ()
) -> tuple[str, list[int]]:
    """Remove the sentences that state a guessed figure; returns the text renumbered, and its order.

    Citation markers and the digits of outlet names ("RTL 102.5") are not figures of a
    sentence.
    """
    if not guessed:
        return text, order
    figures = "|".join(re.escape(g) for g in sorted(guessed, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.,:/–-])(?:{figures})(?!\w|[.,:/–-]\d)")
    kept = [s for s in split_sentences(text) if not pattern.search(_claims_only(s, outlets))]
    return renumber(" ".join(kept), order)
