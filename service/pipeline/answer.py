"""The answer service: retrieve → pack → prompt → generate (stream) → cite → answer.

Abstention is decided from evidence, not only from the model's words: the service
abstains when retrieval finds nothing on topic, when the model says the passages do
not answer, and when no sentence of the answer can be tied to a passage.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ingest.chunking import split_sentences
from service.backends.llm import GenerationStats, Generator
from service.pipeline.cite import (
    MarkerRewriter,
    best_quote,
    fix_attributions,
    markers_in,
    number_keys,
    overlap,
    renumber,
    tidy_spacing,
    unsupported_numbers,
)
from service.pipeline.language import detect_language
from service.pipeline.prompts import PromptLibrary
from service.pipeline.retrieve import Passage, Retriever
from service.settings import Settings

NOT_FOUND = "NOT_FOUND"
# A sentence without a marker gets the passage it overlaps most, when at least this
# share of its content words comes from that passage.
ATTACH_OVERLAP = 0.6


@dataclass
class Citation:
    id: int
    outlet: str
    article_id: str
    title: str
    url: str | None
    quote: str
    score: float
    article_ids: list[str] = field(default_factory=list)


@dataclass
class Answer:
    answer: str
    language: str
    abstained: bool
    citations: list[Citation]
    timings: dict[str, float]
    question: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """A streaming event: ``token`` (text delta), ``citation``, or ``done`` (the final answer)."""

    kind: str
    data: Any


def order_by_article(passages: list[Passage]) -> list[Passage]:
    """Group passages of the same article together (articles in rank order), number them 1..n."""
    groups: dict[str, list[Passage]] = {}
    for p in passages:
        groups.setdefault(p.title, []).append(p)
    ordered = [p for ps in groups.values() for p in ps]
    for i, p in enumerate(ordered, start=1):
        p.number = i
    return ordered


def _evidence(p: Passage) -> str:
    return f"{p.title} {p.published or ''} {p.text}"


def _without_outlets(text: str, passages: list[Passage]) -> str:
    """``text`` minus outlet names: the digits of "RTL 102.5" or "Palermo 24h" are not figures."""
    for outlet in sorted({p.outlet for p in passages}, key=len, reverse=True):
        text = text.replace(outlet, " ")
    return text


def missing_question_numbers(question: str, passages: list[Passage]) -> set[str]:
    """Numbers (years, figures) of the question that no passage contains.

    "The earthquake of March 2025" over passages that only know 2024: the articles do
    not cover what the question presupposes, so there is nothing to answer from.
    """
    return unsupported_numbers(_without_outlets(question, passages), " ".join(_evidence(p) for p in passages))


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
                clauses = re.split(r"(?<=\D),\s+", sentence)
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


def attach_missing_citations(text: str, passages: list[Passage], order: list[int]) -> str:
    """Give each sentence without a marker the passage that clearly supports it.

    A sentence that names an outlet gets that outlet's passage (the one it overlaps
    most); otherwise the passage it overlaps most, if the overlap is large. ``order``
    (original passage numbers in citation order) is extended in place.
    """
    out = []
    for sentence in split_sentences(text):
        if markers_in(sentence) or len(sentence.split()) < 3:
            out.append(sentence)
            continue
        named = [i for i, p in enumerate(passages, 1) if _outlet_mentioned(sentence, p.outlet)]
        pool = named or list(range(1, len(passages) + 1))
        best = max(pool, key=lambda i: overlap(sentence, passages[i - 1].text))
        if not named and overlap(sentence, passages[best - 1].text) < ATTACH_OVERLAP:
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


class AnswerService:
    """Answers questions from the store with the LLM, citing outlets."""

    def __init__(
        self, retriever: Retriever, generator: Generator, prompts: PromptLibrary, settings: Settings
    ):
        self._retriever = retriever
        self._generator = generator
        self._prompts = prompts
        self._settings = settings

    def pack(self, passages: list[Passage]) -> list[Passage]:
        """Keep passages in rank order while they fit the passage token budget (at least one)."""
        budget = self._settings.retrieval.passage_token_budget
        kept: list[Passage] = []
        used = 0
        for p in passages:
            cost = self._generator.count_tokens(f"[{len(kept) + 1}] {p.outlet}: {p.text}\n") + 2
            if kept and used + cost > budget:
                break
            kept.append(p)
            used += cost
        return kept

    def _abstain(self, question: str, language: str, timings: dict[str, float]) -> Answer:
        return Answer(self._prompts.abstention(language), language, True, [], timings, question)

    def stream(self, question: str, top_k: int | None = None) -> Iterator[Event]:
        """Yield ``token`` and ``citation`` events, then one ``done`` event with the :class:`Answer`."""
        t0 = time.perf_counter()
        language = detect_language(question)
        rs = self._settings.retrieval
        found = self._retriever.search(question, top_k or rs.top_k, rs.candidates)
        timings = {"retrieval_ms": round((time.perf_counter() - t0) * 1000, 1)}
        if not found or max(p.dense_score for p in found) < rs.min_score:
            timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            yield Event("done", self._abstain(question, language, timings))
            return
        passages = order_by_article(self.pack(found))
        if missing_question_numbers(question, passages):
            timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            yield Event("done", self._abstain(question, language, timings))
            return
        messages = self._prompts.answer_messages(question, language, passages)
        stats = GenerationStats()
        rewriter = MarkerRewriter(valid=len(passages))
        raw, shown = "", ""
        held = True  # hold output back until it cannot be the NOT_FOUND signal
        emitted_citations: set[int] = set()
        for delta in self._generator.stream(messages, max_tokens=self._settings.llm.max_tokens, stats=stats):
            raw += delta
            if held:
                head = raw.lstrip()
                if NOT_FOUND.startswith(head[: len(NOT_FOUND)]) and len(head) <= len(NOT_FOUND):
                    continue
                if head.startswith(NOT_FOUND):
                    break  # the model says the passages do not answer: stop generating
                held = False
                delta = head
            text = rewriter.feed(delta)
            if text:
                shown += text
                yield Event("token", text)
            for n in rewriter.order:
                if n not in emitted_citations:
                    emitted_citations.add(n)
                    yield Event("citation", self._citation(rewriter.order.index(n) + 1, passages[n - 1], raw))
        if held and not raw.lstrip().startswith(NOT_FOUND):
            text = rewriter.feed(raw.lstrip())  # a reply shorter than the signal
            shown += text
            yield Event("token", text)
        tail = rewriter.flush()
        if tail:
            shown += tail
            yield Event("token", tail)
        timings["first_token_ms"] = round((stats.first_token_s or 0.0) * 1000, 1)
        timings["generation_ms"] = round(stats.total_s * 1000, 1)
        timings["completion_tokens"] = float(stats.completion_tokens)
        if raw.lstrip().startswith(NOT_FOUND) or (NOT_FOUND in raw and not rewriter.order):
            timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            yield Event("done", self._abstain(question, language, timings))
            return
        order = list(rewriter.order)
        final = attach_missing_citations(shown.replace(NOT_FOUND, ""), passages, order)
        final, order = drop_unsupported_numbers(final, passages, order, question)
        final = tidy_spacing(final)
        final = fix_attributions(final, {i: passages[n - 1].outlet for i, n in enumerate(order, start=1)})
        timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        if not order:
            # Nothing in the answer can be tied to a passage: say so rather than print it uncited.
            yield Event("done", self._abstain(question, language, timings))
            return
        citations = [self._citation(i, passages[n - 1], final) for i, n in enumerate(order, start=1)]
        yield Event("done", Answer(final, language, False, citations, timings, question))

    def _citation(self, number: int, p: Passage, answer_text: str) -> Citation:
        claim = " ".join(s for s in split_sentences(answer_text) if f"[{number}]" in s) or answer_text
        return Citation(
            id=number,
            outlet=p.outlet,
            article_id=p.article_id,
            title=p.title,
            url=p.url,
            quote=best_quote(p.text, claim),
            score=round(p.dense_score, 4),
            article_ids=list(p.article_ids),
        )

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """Non-streaming form of :meth:`stream`."""
        for event in self.stream(question, top_k):
            if event.kind == "done":
                return event.data
        raise RuntimeError("answer stream ended without a result")
