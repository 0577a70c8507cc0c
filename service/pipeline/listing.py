"""Questions that ask which outlets report a detail, and the passages that state it.

"Quali testate indicano in 41 il numero dei comuni colpiti?", "Which outlets link the
report to the 5 November election?", "Quali testate scrivono che… anche la questione di
Taiwan?": the answer is every outlet whose passage states the asked detail — a figure, a
day and month, a name — that only some of the story's passages carry. A small model
cites one of them and pads the answer with other outlets' sentences about the story;
:func:`passages_stating` finds the passages that hold every such detail, so that the
answer keeps the sentences resting on them and quotes each outlet that states it (see
:mod:`service.pipeline.quotes`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from service.pipeline.cite import figure_keys, number_keys, strip_outlets
from service.pipeline.grounding import MONTH_NAMES, dates_in, is_year
from service.pipeline.retrieve import Passage
from service.pipeline.sanitize import quote_for_answer
from service.text import fold, split_sentences

# "Which outlets…", "Quali testate…"; not "che fonti" ("è vero che fonti ucraine…"), "which
# agency" (a rating agency) or "what sources of energy".
_ASKS_OUTLETS = re.compile(
    r"(?i)\b(?:which|what)\s+(?:(?:news\s+)?(?:outlets?|newspapers?|papers?|websites?|media|publications?)"
    r"|sources?(?!\s+of\b)|news\s+(?:sites?|agenc(?:y|ies)))\b"
    r"|\bqual[ei]\s+(?:testat[ae]|giornal[ei]|quotidian[oi]|font[ei]|media|organi\s+di\s+(?:stampa|informazione)"
    r"|agenzi[ae]\s+di\s+stampa|siti\s+(?:di\s+)?(?:notizie|informazione))\b"
)
_ASKS_ONE = re.compile(
    r"(?i)\b(?:which|what)\s+(?:news\s+)?(?:outlet|newspaper|paper|source|site|website|publication|agency)\b"
    r"|\bquale\s+(?:testata|giornale|quotidiano|fonte|sito|agenzia)\b"
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_NAME = re.compile(r"(?:^|(?<=-))[A-ZÀ-Ý][^\W\d_]{2,}")


def asks_which_outlets(question: str) -> bool:
    """The question asks which outlets (or which outlet) report something."""
    return _ASKS_OUTLETS.search(question) is not None


def _holds_figure(keys: set[str], evidence: str) -> bool:
    return bool(keys & number_keys(evidence, evidence=True))


def _holds_day(day: tuple[int, int], evidence: str) -> bool:
    return day in dates_in(evidence)


def _holds_name(pattern: re.Pattern[str], evidence: str) -> bool:
    return pattern.search(fold(evidence)) is not None


def _details(question: str) -> list[Callable[[str], bool]]:
    """A test per detail of the question: figures (not years), days with months, names.

    Years name the story ("Sanremo 2024"), not the detail; a name is a capitalised word
    past the question's first one ("Taiwan", "Kiriyenko").
    """
    tests: list[Callable[[str], bool]] = []
    for keys in figure_keys(question):
        if not any(is_year(k) for k in keys):
            tests.append(partial(_holds_figure, keys))
    for day in dates_in(question):
        tests.append(partial(_holds_day, day))
    for word in _WORD.findall(question)[1:]:
        for name in _NAME.findall(word):  # "Emilia-Romagna": both parts; "iPhone": none
            if fold(name) not in MONTH_NAMES:
                tests.append(partial(_holds_name, re.compile(rf"(?<!\w){re.escape(fold(name))}(?!\w)")))
    return tests


@dataclass(frozen=True)
class Stating:
    """The passages that hold every telling detail of a which-outlets question, and those details."""

    numbers: frozenset[int] = frozenset()
    details: tuple[Callable[[str], bool], ...] = ()
    one: bool = False  # "which outlet…?": the question asks for one

    def quote(self, text: str) -> str:
        """The first sentence of ``text`` holding every detail (all of ``text`` when none does alone).

        Shown verbatim in the answer: markup and URLs are removed, and a bracketed
        number cannot pass for a citation marker.
        """
        sentences = split_sentences(text)
        quote = next((t for t in sentences if all(d(t) for d in self.details)), text)
        return quote_for_answer(quote)


def passages_stating(question: str, passages: list[Passage]) -> Stating:
    """The passages (1-based prompt numbers) holding every detail that singles out the asked fact.

    A detail counts when at least one and at most half of the passages (title and
    text) hold it: the story's own names are in every title, and a detail no passage
    holds (an English name for an Italian one) says nothing. Empty when the question
    does not ask which outlets, or has no such detail, or no passage holds them all.
    """
    if not passages or not asks_which_outlets(question):
        return Stating()
    evidence = [f"{p.title} {p.text}" for p in passages]
    text = strip_outlets(question, (p.outlet for p in passages))
    telling = []
    for test in _details(text):
        holders = {n for n, e in enumerate(evidence, start=1) if test(e)}
        if 1 <= len(holders) <= max(1, len(passages) // 2):
            telling.append((test, holders))
    if not telling:
        return Stating()
    numbers = frozenset(set.intersection(*(h for _, h in telling)))
    return Stating(numbers, tuple(t for t, _ in telling), _ASKS_ONE.search(question) is not None)
