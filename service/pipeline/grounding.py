"""Grounding checks between an answer and its passages: attach, verify, drop.

The model's markers are a claim; these functions decide what the service stands
behind. A sentence without a marker gets the passage that clearly supports it, a
number that no cited passage contains is removed with its claim, and a question
whose figures no passage contains is not answered at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from service.pipeline.cite import (
    blank_markers,
    cite_only,
    markers_in,
    number_keys,
    overlap,
    renumber,
    strip_outlets,
    unsupported_numbers,
)
from service.pipeline.retrieve import Passage
from service.text import split_sentences

# A sentence without a marker gets the passage it overlaps most, when at least this
# share of its content words comes from that passage.
ATTACH_OVERLAP = 0.6


def _evidence(p: Passage) -> str:
    return f"{p.title} {p.published or ''} {p.text}"


def _claim(text: str, passages: list[Passage]) -> str:
    """``text`` as a claim whose figures are checked: no markers, no outlet names."""
    return _without_outlets(blank_markers(text), passages)


def _without_outlets(text: str, passages: list[Passage]) -> str:
    """``text`` minus outlet names: the digits of "RTL 102.5" or "Palermo 24h" are not figures."""
    return strip_outlets(text, (p.outlet for p in passages))


def missing_question_numbers(question: str, passages: list[Passage]) -> set[str]:
    """Numbers (years, figures) of the question that no passage contains.

    "The earthquake of March 2025" over passages that only know 2024: the articles do
    not cover what the question presupposes, so there is nothing to answer from.
    """
    evidence = " ".join(_evidence(p) for p in passages)
    asked = _DRAW_STAGE.sub(" ", _without_outlets(question, passages))
    missing = unsupported_numbers(asked, evidence)
    # A score is one figure: "the 2-1 defeat" is not backed by a "2-0" and a "1" elsewhere.
    missing |= {f"{a}-{b}" for a, b in scores_in(asked) - scores_in(evidence, evidence=True)}
    # News pages write "lunedì 20 maggio" without the year: a question's full date whose
    # day and month the passages name is covered even though its year is not written.
    return missing - _years_of_dates_named(question, evidence)


# "round of 16", "last 16": a stage of a draw (the passages say "ottavi"), not a figure.
_DRAW_STAGE = re.compile(r"(?i)\b(?:round of|last)\s+(?:8|16|32|64)\b")
# "2-0", "2–1"; not "4-3-3", "COVID-19", "2022-23" or a range of days ("8-9 giugno").
_SCORE = re.compile(r"(?<![\w\-–])(\d{1,2})\s*[-–]\s*(\d{1,2})(?![\w\-–])(?=\s*(?P<next>[^\W\d_]*))")
# Italian prose also writes a result "per 2 a 1": as evidence, that backs a "2-1".
_SCORE_IN_WORDS = re.compile(
    r"(?i)\b(?:per|vince|vinto|batte|battuto|finisce|finita)\s+(\d{1,2})\s+a\s+(\d{1,2})\b"
)


def scores_in(text: str, evidence: bool = False) -> set[tuple[int, int]]:
    """Match scores in ``text`` as unordered pairs: "0-2" and "2-0" are the same result.

    A pair followed by a month name is a range of days, not a score. As ``evidence``,
    "vince 2 a 1" counts too.
    """
    found = [
        (m.group(1), m.group(2))
        for m in _SCORE.finditer(text)
        if m.group("next").casefold() not in MONTH_NAMES
    ]
    if evidence:
        found += _SCORE_IN_WORDS.findall(text)
    pairs = set()
    for a, b in found:
        low, high = sorted((int(a), int(b)))
        pairs.add((low, high))
    return pairs


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
    tokens = TOKEN.findall(question)
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
TOKEN = re.compile(r"[^\W_]+")


# The month names and short forms that months_in() knows, lower-case.
MONTH_NAMES = frozenset(_MONTHS)


def dates_in(text: str) -> set[tuple[int, int]]:
    """(day, month) pairs ``text`` writes ("20 maggio", "May 20")."""
    return days_and_months(TOKEN.findall(text))


def is_year(token: str) -> bool:
    """A four-digit year of the 1900s or 2000s ("2024")."""
    return len(token) == 4 and token.isdigit() and token[:2] in ("19", "20")


def months_in(text: str) -> set[int]:
    """Months named in ``text`` (Italian or English).

    Short forms ("Mar") and the English names that are also verbs ("May", "March")
    count only next to a number ("May 2023", "20 March"); other names always count.
    """
    tokens = TOKEN.findall(text)
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


def recite_figures(
    text: str, passages: list[Passage], order: list[int], question: str = "", listed: Sequence[int] = ()
) -> str:
    """Point a sentence whose figures its cited passages lack at the passage that holds them.

    The model copies a figure right and numbers its passage wrong ("Secondo Panorama
    [1], … il 22enne …" where Reggio Sera's passage has "22enne" and Panorama's
    "23enne"). When the cited passages miss some of the sentence's figures, and another
    prompt passage holds all of them, was listed by the model on its sources line or
    has its words copied by the sentence (≥ ``ATTACH_OVERLAP``), and is cited by no
    other sentence, the sentence cites it instead of losing the figure (a listed one
    first, then the one it overlaps most). Verification then checks the sentence
    against it like any marker. ``order`` is extended in place; markers are rewritten,
    not renumbered.
    """
    allowed = number_keys(question)
    listed = [n for n in listed if 1 <= n <= len(passages)]
    sentences = split_sentences(text)
    cites = [{order[k - 1] for k in markers_in(s) if 1 <= k <= len(order)} for s in sentences]
    out = []
    for j, sentence in enumerate(sentences):
        cited = cites[j]
        claim = _claim(sentence, passages)
        if not cited or not unsupported_numbers(
            claim, " ".join(_evidence(passages[n - 1]) for n in cited), allowed
        ):
            out.append(sentence)
            continue
        # A holder the answer already cites elsewhere would only repeat that sentence. Any
        # other holder must be one the model listed, or one whose words the sentence copies:
        # a figure that merely recurs in an unrelated passage ("31,2%" of another vote)
        # does not make that passage the source of the claim.
        elsewhere = set().union(*(c for i, c in enumerate(cites) if i != j))
        copied = {
            i: overlap(claim, p.text)
            for i, p in enumerate(passages, 1)
            if i not in cited and i not in elsewhere and not unsupported_numbers(claim, _evidence(p), allowed)
        }
        pool = [i for i, share in copied.items() if i in listed or share >= ATTACH_OVERLAP]
        if not pool:
            out.append(sentence)
            continue
        best = max(pool, key=lambda i: (i in listed, copied[i]))
        cites[j] = {best}
        out.append(cite_only(sentence, best, order))
    return " ".join(out)


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
                claim = _claim(part, passages)
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
