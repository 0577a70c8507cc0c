"""Grounding checks between an answer and its passages: attach, verify, drop.

The model's markers are a claim; these functions decide what the service stands
behind. A sentence without a marker gets the passage that clearly supports it, a
number that no cited passage contains is removed with its claim, and a question
whose figures no passage contains is not answered at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ingest.chunking import split_sentences
from service.pipeline.cite import (
    markers_in,
    number_keys,
    overlap,
    renumber,
    strip_outlets,
    unsupported_numbers,
)
from service.pipeline.retrieve import Passage

# A sentence without a marker gets the passage it overlaps most, when at least this
# share of its content words comes from that passage.
ATTACH_OVERLAP = 0.6


def _evidence(p: Passage) -> str:
    return f"{p.title} {p.published or ''} {p.text}"


def _without_outlets(text: str, passages: list[Passage]) -> str:
    """``text`` minus outlet names: the digits of "RTL 102.5" or "Palermo 24h" are not figures."""
    return strip_outlets(text, (p.outlet for p in passages))


def missing_question_numbers(question: str, passages: list[Passage]) -> set[str]:
    """Numbers (years, figures) of the question that no passage contains.

    "The earthquake of March 2025" over passages that only know 2024: the articles do
    not cover what the question presupposes, so there is nothing to answer from.
    """
    evidence = " ".join(_evidence(p) for p in passages)
    missing = unsupported_numbers(_without_outlets(question, passages), evidence)
    # News pages write "lunedì 20 maggio" without the year: a question's full date whose
    # day and month the passages name is covered even though its year is not written.
    return missing - _years_of_dates_named(question, evidence)


def days_and_months(tokens: list[str]) -> set[tuple[int, int]]:
    """(day, month) pairs written as "20 maggio" or "May 20"."""
    pairs = set()
    for i, w in enumerate(tokens):
        month = _MONTHS.get(w.casefold())
        if month is None:
            continue
        for t in tokens[max(0, i - 1) : i] + tokens[i + 1 : i + 2]:
            if t.isdigit() and 1 <= int(t) <= 31:
                pairs.add((int(t), month))
    return pairs


def _years_of_dates_named(question: str, evidence: str) -> set[str]:
    """Years of the question's full dates ("20 maggio 2024") whose day and month ``evidence`` names."""
    tokens = _TOKEN.findall(question)
    named = dates_in(evidence)
    years = set()
    for i, t in enumerate(tokens):
        if is_year(t) and days_and_months(tokens[max(0, i - 3) : i]) & named:
            years.add(t)
    return years


_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            "gennaio january jan",
            "febbraio february feb",
            "marzo march mar",
            "aprile april apr",
            "maggio may",
            "giugno june jun",
            "luglio july jul",
            "agosto august aug",
            "settembre september sept sep",
            "ottobre october oct",
            "novembre november nov",
            "dicembre december dec",
        ),
        start=1,
    )
    for name in names.split()
}
_TOKEN = re.compile(r"[^\W_]+")


# The month names and short forms that months_in() knows, lower-case.
MONTH_NAMES = frozenset(_MONTHS)


def dates_in(text: str) -> set[tuple[int, int]]:
    """(day, month) pairs ``text`` writes ("20 maggio", "May 20")."""
    return days_and_months(_TOKEN.findall(text))


def is_year(token: str) -> bool:
    """A four-digit year of the 1900s or 2000s ("2024")."""
    return len(token) == 4 and token.isdigit() and token[:2] in ("19", "20")


def months_in(text: str) -> set[int]:
    """Months named in ``text`` (Italian or English).

    Short forms ("Mar") and the English names that are also verbs ("May", "March")
    count only next to a number ("May 2023", "20 March"); other names always count.
    """
    tokens = _TOKEN.findall(text)
    found = set()
    for i, w in enumerate(tokens):
        key = w.casefold()
        if key not in _MONTHS:
            continue
        near_number = any(t.isdigit() for t in tokens[max(0, i - 1) : i + 2])
        # "march" and "may" are also verbs: like the short forms, they need a number beside them.
        if (len(key) > 4 and key != "march") or key in ("june", "july") or near_number:
            found.add(_MONTHS[key])
    return found


def missing_question_months(question: str, story: list[Passage]) -> set[int]:
    """Months the question presupposes ("in March 2025") that the main story never names.

    ``story`` holds the passages of the articles that retrieval ranked first. Aggregator
    pages often omit the year ("20 maggio"), so the month is what must match; figures
    are checked by :func:`missing_question_numbers` over all passages.
    """
    wanted = months_in(question)
    if not wanted or not story:
        return set()
    return wanted - months_in(" ".join(_evidence(p) for p in story))


def drop_unsupported_numbers(
    text: str, passages: list[Passage], order: list[int], question: str = ""
) -> tuple[str, list[int]]:
    """Remove claims with numbers that their cited passages do not contain.

    A figure or date the model cannot point to is the commonest invention of a small
    model; the service removes it rather than publish it under an outlet's name. An
    unsupported aside between commas ("Comperatore, 50 anni, ex pompiere") is cut
    from its sentence; a sentence whose main clause carries the number is dropped.
    The evidence of a sentence is the text, title and date of the passages it cites;
    numbers the question itself contains, and digits inside outlet names ("RTL
    102.5"), are not claims. Returns the kept text, renumbered, and its order.
    """
    allowed = number_keys(question)
    kept = []
    for sentence in split_sentences(text):
        cited = [order[k - 1] for k in markers_in(sentence) if 1 <= k <= len(order)]
        if cited:
            evidence = " ".join(_evidence(passages[n - 1]) for n in cited)

            def unsupported(part: str, evidence: str = evidence) -> bool:
                claim = _without_outlets(re.sub(r"\[\d+\]", " ", part), passages)
                return bool(unsupported_numbers(claim, evidence, allowed))

            if unsupported(sentence):
                clauses = re.split(r",\s+", sentence)  # "June 13, 2018, at…": a date is an aside too
                last = len(clauses) - 1  # only asides between commas can go; the ends carry the claim
                trimmed = [
                    c for i, c in enumerate(clauses) if i in (0, last) or markers_in(c) or not unsupported(c)
                ]
                sentence = ", ".join(trimmed)
                if len(trimmed) == len(clauses) or unsupported(sentence):
                    continue
        kept.append(sentence)
    return renumber(" ".join(kept), order)


def _outlet_mentioned(sentence: str, outlet: str) -> bool:
    return bool(outlet) and re.search(rf"(?i)(?<!\w){re.escape(outlet)}(?!\w)", sentence) is not None


def attach_missing_citations(
    text: str, passages: list[Passage], order: list[int], listed: Sequence[int] = ()
) -> str:
    """Give each sentence without a marker the passage that clearly supports it.

    A sentence that names an outlet gets that outlet's passage (the one it overlaps
    most); otherwise, when the model named passages on its sources line (``listed``),
    the listed one it overlaps most — the model's own citation, checked by
    verification like a marker (an English sentence shares few words with an Italian
    passage, so overlap alone would leave it uncited); otherwise the passage it
    overlaps most, if the overlap is large. ``order`` (original passage numbers in
    citation order) is extended in place.
    """
    out = []
    listed = [n for n in listed if 1 <= n <= len(passages)]
    for sentence in split_sentences(text):
        if markers_in(sentence) or len(sentence.split()) < 3:
            out.append(sentence)
            continue
        named = [i for i, p in enumerate(passages, 1) if _outlet_mentioned(sentence, p.outlet)]
        pool = named or listed or list(range(1, len(passages) + 1))
        best = max(pool, key=lambda i: overlap(sentence, passages[i - 1].text))
        if not named and not listed and overlap(sentence, passages[best - 1].text) < ATTACH_OVERLAP:
            out.append(sentence)
            continue
        if best not in order:
            order.append(best)
        marker = f"[{order.index(best) + 1}]"
        m = re.search(r"[.!?…]+[»\"”’]?$", sentence)
        out.append(
            sentence[: m.start()] + f" {marker}" + sentence[m.start() :] if m else f"{sentence} {marker}"
        )
    return " ".join(out)
