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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.backends.embedder import Embedder
from service.pipeline.cite import (
    cite_only,
    figure_keys,
    markers_in,
    number_keys,
    overlap,
    strip_outlets,
    unsupported_numbers,
)
from service.pipeline.retrieve import Passage
from service.pipeline.sanitize import quote_for_answer
from service.text import split_sentences

LEXICAL_WEIGHT = 0.1
REATTRIBUTE_MARGIN = 0.04
ATTACH_MIN = 0.88
SUPPORTED_MIN = 0.80
# A sentence this much less similar to the question than the answer's closest sentence
# is a tangent (chosen on the dev answers: padding sentences sat 0.075-0.15 under the
# best, the second side of a disagreement at most 0.061).
TANGENT_MARGIN = 0.07
# A listed passage corroborates a sentence with a figure when its support is within this of the cited one's…
CORROBORATE_MARGIN = 0.025
# …and a passage the model did not list, when it also holds the claim's own figures.
FIGURE_CORROBORATE_MARGIN = 0.02
# Under SUPPORTED_MIN a sentence still counts as supported when its figures, or this
# share of its content words, are in the cited passages.
VERBATIM_OVERLAP = 0.5
# A sentence the service quotes ("Secondo X [2]: «…»", prompts/also_reported.j2) is one
# outlet's own words: no other outlet is added to it.
_QUOTING = re.compile(r"\[\d+\]\s*:\s*[«“„\"]")
_LEAD = re.compile(r"(?i)^\s*(according to|secondo|stando a|per)\b\s*,?")
_MARKERS = re.compile(r"\s*\[\d+\]")


@dataclass
class SentenceCheck:
    """One answer sentence, the final citation numbers it carries, and whether it is supported."""

    text: str
    citations: list[int]
    unsupported: bool
    support: float

    def passages(self, order: list[int]) -> list[int]:
        """The prompt numbers of the passages the sentence cites (``order`` maps marker k to them)."""
        return [order[k - 1] for k in self.citations if 1 <= k <= len(order)]


def outlets_cited(checks: Sequence[SentenceCheck], passages: list[Passage], order: list[int]) -> set[str]:
    """The outlets (case-folded) of the passages that ``checks`` cite."""
    return {passages[n - 1].outlet.casefold() for c in checks for n in c.passages(order)}


def _evidence(passages: list[Passage], numbers: Sequence[int]) -> str:
    """The title and text of passages ``numbers`` (1-based), what a claim's figures are checked against."""
    return " ".join(f"{passages[n - 1].title} {passages[n - 1].text}" for n in numbers)


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
                if (
                    best not in cited
                    and scores[best - 1] > cited_best + REATTRIBUTE_MARGIN
                    and self._holds_figures(sentence, passages, best)
                ):
                    sentence, cited = cite_only(sentence, best, order), [best]
            elif scores[best - 1] >= ATTACH_MIN:
                sentence, cited = cite_only(sentence, best, order), [best]
            support = max((float(scores[n - 1]) for n in cited), default=0.0)
            out.append(sentence)
            flags.append((support < SUPPORTED_MIN and not self._verbatim(sentence, passages, cited), support))
        used, checks = renumbered(out, flags, order)
        return " ".join(c.text for c in checks), used, checks

    def drop_tangents(
        self,
        question: str,
        checks: list[SentenceCheck],
        passages: list[Passage],
        order: list[int],
        named: Sequence[str] = (),
    ) -> tuple[list[int], list[SentenceCheck]]:
        """Leave out sentences far less related to the question than the answer's closest one.

        A small model pads a one-fact answer with neighbouring facts of the story ("the
        last gold came from volleyball…") under other outlets' names: true, cited, and not
        an answer. A sentence whose similarity to the question is ``TANGENT_MARGIN`` under
        the best sentence's goes; both sides of a disagreement stay (each is about the
        question). When the question names outlets (``named``), each named outlet keeps
        its sentence closest to the question: "RTL 102.5: an embolism" is short and far
        from "which cause do Italianotizie, RTL 102.5 and Notizie.it report?", and it is
        one of the answers asked for. Returns the new order and checks, renumbered.
        """
        claims = [claim_of(c.text, passages) for c in checks]
        scored = [i for i, claim in enumerate(claims) if len(claim.split()) >= 3]
        if len(scored) < 2:
            return order, checks
        qvec = self._embedder.embed_query(question)
        sims = {i: float(self._embedder.embed_query(claims[i]) @ qvec) for i in scored}
        best = max(sims.values())
        keep = {i for i in sims if sims[i] >= best - TANGENT_MARGIN}
        for outlet in {o.casefold() for o in named}:
            own = [i for i in sims if outlet in outlets_cited([checks[i]], passages, order)]
            if own:
                keep.add(max(own, key=lambda i: sims[i]))
        kept = [c for i, c in enumerate(checks) if i not in sims or i in keep]
        return renumbered([c.text for c in kept], [(c.unsupported, c.support) for c in kept], order)

    def corroborate(
        self,
        question: str,
        checks: list[SentenceCheck],
        passages: list[Passage],
        order: list[int],
        listed: list[int],
    ) -> tuple[list[int], list[SentenceCheck]]:
        """Cite, beside each supported sentence's own passage, the listed passages that state it too.

        ``listed`` are the passages the model named as stating the answer (its sources
        line, and the passages of sentences :func:`merge_repeats` dropped). Several
        outlets often report one fact; the model writes one outlet per sentence. Only a
        claim with a figure is corroborated: a passage of another outlet is added when it
        holds every figure the claim repeats from the question and at least half of the
        claim's own (one, when the claim has only the question's), and supports it nearly
        as well as the cited one — within ``CORROBORATE_MARGIN`` when listed,
        ``FIGURE_CORROBORATE_MARGIN`` otherwise — and at least ``SUPPORTED_MIN``. (Half:
        the model joins the asked figure to neighbouring ones of its passage, "3.75% from
        12 June", which another outlet's account of the same fact need not repeat.) A
        claim without a figure is too generic for the embedding to tell which passages
        state it: "the Kremlin denied the contacts" scored a paragraph about the report
        0.011 under the denial itself.
        """
        allowed = number_keys(question)
        order = list(order)
        texts: list[str] = []
        for c in checks:
            cited = c.passages(order)
            claim = claim_of(c.text, passages)
            figures = figure_keys(claim)
            asked = [keys for keys in figures if keys & allowed]
            own = [keys for keys in figures if not keys & allowed]
            if c.unsupported or not cited or not figures or _QUOTING.search(c.text):
                texts.append(c.text)
                continue
            scores = self.scores(c.text, passages)
            best = max(float(scores[n - 1]) for n in cited)
            outlets = {passages[n - 1].outlet.casefold() for n in cited}
            extra = []
            for n, p in enumerate(passages, start=1):
                margin = CORROBORATE_MARGIN if n in listed else FIGURE_CORROBORATE_MARGIN
                if n in cited or p.outlet.casefold() in outlets:
                    continue
                if float(scores[n - 1]) < max(SUPPORTED_MIN, best - margin):
                    continue
                held = number_keys(f"{p.title} {p.text}", evidence=True)
                if not all(keys & held for keys in asked) or 2 * sum(bool(k & held) for k in own) < len(own):
                    continue
                outlets.add(p.outlet.casefold())
                extra.append(n)
            texts.append(_add_markers(c.text, extra, order, passages))
        return renumbered(texts, [(c.unsupported, c.support) for c in checks], order)

    def closest_sentence(self, question: str, candidates: list[Passage]) -> tuple[int, str]:
        """The index among ``candidates`` and the sentence closest to ``question`` (e5), quoted.

        ``(0, "")`` when the candidates hold no text.
        """
        pairs = [(i, t) for i, p in enumerate(candidates) for t in split_sentences(p.text) if t.strip()]
        if not pairs:
            return 0, ""
        sims = self._embedder.embed_passages([t for _, t in pairs]) @ self._embedder.embed_query(question)
        i, sentence = pairs[int(np.argmax(sims))]
        return i, quote_for_answer(sentence)

    @staticmethod
    def _holds_figures(sentence: str, passages: list[Passage], n: int) -> bool:
        """Passage ``n`` holds every figure of the sentence's claim (true for a claim without one).

        A citation moves to the passage whose wording is closest only if that passage
        also states the sentence's figures: GEA's sentence with AgenPress's 2.5 % is
        worded like GEA's passage, and moving it there would put 2.5 % under GEA.
        """
        return not unsupported_numbers(claim_of(sentence, passages), _evidence(passages, [n]))

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
        evidence = _evidence(passages, cited)
        if number_keys(claim) and not unsupported_numbers(claim, evidence):
            return True
        return overlap(claim, evidence) >= VERBATIM_OVERLAP


def merge_repeats(
    checks: list[SentenceCheck], passages: list[Passage], order: list[int]
) -> tuple[list[int], list[SentenceCheck], list[int]]:
    """One sentence per claim: a sentence that repeats an earlier claim goes.

    A small model that lists several passages may write the same sentence once per
    outlet ("According to X [1], the Kremlin denied… According to Y [2], the Kremlin
    denied…"). The reader gets the claim once; the passages the repeats cited are
    returned as candidates for :meth:`SupportChecker.corroborate`, which cites those
    that state the claim as well as the kept sentence's own passage does.
    """
    seen: set[str] = set()
    texts: list[str] = []
    flags: list[tuple[bool, float]] = []
    repeated: list[int] = []
    for c in checks:
        key = " ".join(re.findall(r"\w+", claim_of(c.text, passages).casefold()))
        if key and key in seen:
            repeated += c.passages(order)
            continue
        if key:
            seen.add(key)
        texts.append(c.text)
        flags.append((c.unsupported, c.support))
    used, kept = renumbered(texts, flags, order)
    return used, kept, list(dict.fromkeys(repeated))


# "According to X [1]" / "Secondo X [1]" opening a sentence: corroborating outlets are named
# there too, joined the way the lead's language joins names.
_JOINERS = {
    "according to": " and ",
    "secondo": " e ",
    "stando a": " e ",
    "selon": " et ",
    "según": " y ",
    "laut": " und ",
}
_OPENING = re.compile(rf"(?i)^\s*(?P<lead>{'|'.join(_JOINERS)})\s+[^\[\].!?\n]{{1,60}}?\s*\[\d+\]")


def _add_markers(sentence: str, extra: list[int], order: list[int], passages: Sequence[Passage] = ()) -> str:
    """``sentence`` with markers for the ``extra`` passages after its first marker (``order`` extended).

    When the sentence opens by naming its outlet ("Secondo GEA [1], …") and
    ``passages`` are given, the added outlets are named beside it ("Secondo GEA [1] e
    AgenPress [2], …"): a reader asking which outlets report a fact reads them in the
    answer, not only in the citation list.
    """
    first = re.search(r"\[\d+\]", sentence)
    if first is None or not extra:
        return sentence
    order.extend(n for n in extra if n not in order)
    opening = _OPENING.match(sentence) if passages else None
    if opening is None or opening.end() != first.end():
        added = "".join(f" [{order.index(n) + 1}]" for n in extra)
    else:
        joiner = _JOINERS[opening.group("lead").casefold()]
        names = [f"{quote_for_answer(passages[n - 1].outlet)} [{order.index(n) + 1}]" for n in extra]
        added = (", " + ", ".join(names[:-1]) if len(names) > 1 else "") + joiner + names[-1]
    return sentence[: first.end()] + added + sentence[first.end() :]


def renumbered(
    sentences: list[str], flags: list[tuple[bool, float]], order: list[int]
) -> tuple[list[int], list[SentenceCheck]]:
    """Markers renumbered 1, 2, 3… by first use; the passages they now stand for; the checks.

    ``order`` maps marker k of ``sentences`` to passage ``order[k-1]``.
    """
    used: list[int] = []
    for sentence in sentences:
        for k in markers_in(sentence):
            if 1 <= k <= len(order) and order[k - 1] not in used:
                used.append(order[k - 1])

    def new_marker(m: re.Match[str]) -> str:
        k = int(m.group(1))
        return f"[{used.index(order[k - 1]) + 1}]" if 1 <= k <= len(order) else ""

    checks = []
    for sentence, (unsupported, support) in zip(sentences, flags, strict=True):
        sentence = re.sub(r"\[(\d{1,3})\]", new_marker, sentence)  # the markers markers_in() reads
        checks.append(
            SentenceCheck(sentence, sorted(set(markers_in(sentence))), unsupported, round(support, 4))
        )
    return used, checks
