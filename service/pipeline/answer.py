"""The answer service: retrieve → pack → prompt → generate (stream) → cite → ground → answer.

Abstention is decided from evidence, not only from the model's words: the service
abstains when retrieval finds nothing on topic, when the question's figures are in
no passage, when a second reading of a which-outlet question finds its premise
unstated, when the model says the passages do not answer, and when nothing of the
answer survives grounding (every claim needs a passage that states it, and a figure
the model wrote unsure of itself is a guess, not a reading).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, Any

from service.backends.llm import GenerationStats, Generator, closing
from service.pipeline.answer_type import misses_asked_kind
from service.pipeline.cite import (
    MarkerRewriter,
    best_quote,
    fix_attributions,
    tidy_spacing,
)
from service.pipeline.confidence import drop_guessed_figures, guessed_figures
from service.pipeline.followup import Turn, standalone_question
from service.pipeline.grounding import (
    attach_missing_citations,
    drop_unsupported_numbers,
    missing_question_months,
    missing_question_numbers,
    recite_figures,
)
from service.pipeline.language import detect_language
from service.pipeline.listing import passages_stating
from service.pipeline.prompts import NOT_FOUND, PromptLibrary
from service.pipeline.quotes import answer_stating, cite_stating, keep_stating, quote_named, quote_sources
from service.pipeline.recheck import PremiseCheck
from service.pipeline.retrieve import Passage, Retriever
from service.pipeline.sanitize import AnswerGuard
from service.pipeline.sources import SOURCES_PREFILL, SourcesHead
from service.pipeline.support import SupportChecker, merge_repeats
from service.settings import Settings
from service.text import split_sentences

if TYPE_CHECKING:
    from service.metrics import Metrics

# A named outlet's passage this far under its best one is from another of its stories
# (e5 cosine; on the dev questions that name outlets, the on-topic ones sat within 0.02).
NAMED_OUTLET_MARGIN = 0.05


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
class Sentence:
    """One sentence of the answer with the citation ids it carries (``unsupported``: none backs it)."""

    text: str
    citations: list[int]
    unsupported: bool


@dataclass
class Answer:
    answer: str
    language: str
    abstained: bool
    citations: list[Citation]
    timings: dict[str, float]
    question: str = ""
    sentences: list[Sentence] = field(default_factory=list)
    standalone_question: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """A streaming event: ``token`` (text delta), ``citation``, or ``done`` (the final answer).

    ``checkpoint`` (no data, never sent to a client) marks a point after a model call that
    showed nothing, where a caller that stops between events (a client gone, a deadline)
    is heard before the next model call.
    """

    kind: str
    data: Any


def order_by_article(passages: list[Passage], within: str = "reading") -> list[Passage]:
    """Group passages by article (articles in rank order); number them 1..n.

    ``within`` = "reading": each article's passages in reading order, so the model reads
    each story as its outlets told it, lede first; "rank": best-scoring first.
    """
    groups: dict[str, list[Passage]] = {}
    for p in passages:
        groups.setdefault(p.title, []).append(p)
    if within == "reading":
        ordered = [p for ps in groups.values() for p in sorted(ps, key=lambda p: p.position)]
    else:
        ordered = [p for ps in groups.values() for p in ps]
    for i, p in enumerate(ordered, start=1):
        p.number = i
    return ordered


class AnswerService:
    """Answers questions from the store with the LLM, citing outlets."""

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        prompts: PromptLibrary,
        settings: Settings,
        metrics: Metrics | None = None,
        recheck: PremiseCheck | None = None,
    ):
        self._retriever = retriever
        self._checker = SupportChecker(retriever.embedder)
        self._generator = generator
        self._prompts = prompts
        self._settings = settings
        self._metrics = metrics
        self._recheck = recheck

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

    def _abstain(self, question: str, language: str, timings: dict[str, float], t0: float) -> Answer:
        timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return Answer(self._prompts.abstention(language), language, True, [], timings, question)

    def stream(
        self,
        question: str,
        top_k: int | None = None,
        history: Sequence[Turn] | None = None,
        where: dict[str, Any] | None = None,
    ) -> Iterator[Event]:
        """Yield ``token`` and ``citation`` events, then one ``done`` event with the :class:`Answer`.

        With ``history`` (previous turns), the question is first rewritten to stand alone;
        retrieval and the prompt use the rewrite, the answer keeps the user's language.
        """
        events = self._stream(question, top_k, history, where)
        with closing(events):
            for event in events:
                if event.kind == "done" and self._metrics is not None:
                    self._metrics.observe_answer(event.data.abstained)
                yield event

    def _stream(
        self,
        question: str,
        top_k: int | None,
        history: Sequence[Turn] | None,
        where: dict[str, Any] | None,
    ) -> Iterator[Event]:
        t0 = time.perf_counter()
        language = detect_language(question)
        asked = question
        timings: dict[str, float] = {}
        if history:
            question = standalone_question(self._generator, self._prompts, question, history)
            timings["rewrite_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        for event in self._answer(question, language, top_k, timings, t0, where):
            if event.kind == "done":
                event.data.question = asked
                event.data.standalone_question = question if question != asked else None
            yield event

    def _answer(
        self,
        question: str,
        language: str,
        top_k: int | None,
        timings: dict[str, float],
        t0: float,
        where: dict[str, Any] | None,
    ) -> Iterator[Event]:
        rs = self._settings.retrieval
        t1 = time.perf_counter()
        named: list[str] = []
        if rs.named_outlets and not (where and "outlet" in where):
            named = self._retriever.named_outlets(question)
            if named:  # "according to ANSA…": answer from what the named outlets reported
                where = {**(where or {}), "outlet": named}
        found = self._retriever.search(
            question, top_k or rs.top_k, rs.candidates, where=where, focus=rs.article_focus
        )
        if named and found:
            # The filter fills the list with the named outlets' other stories: leave those out.
            best = max(p.dense_score for p in found)
            found = [p for p in found if p.dense_score >= best - NAMED_OUTLET_MARGIN]
        timings["retrieval_ms"] = round((time.perf_counter() - t1) * 1000, 1)
        if not found or max(p.dense_score for p in found) < rs.min_score:
            yield Event("done", self._abstain(question, language, timings, t0))
            return
        passages = order_by_article(self.pack(found), rs.prompt_order)
        story = {p.article_id for p in found[: max(1, rs.article_focus)]}
        if missing_question_numbers(question, passages) or missing_question_months(
            question, [p for p in passages if p.article_id in story]
        ):
            yield Event("done", self._abstain(question, language, timings, t0))
            return
        if self._recheck is not None and self._recheck.applies(question):
            # "Which outlet reports that X?": a second reading first, so that a withheld
            # answer is never streamed (see service/pipeline/recheck.py).
            t2 = time.perf_counter()
            unstated = self._recheck.unstated(question, language, passages)
            timings["recheck_ms"] = round((time.perf_counter() - t2) * 1000, 1)
            if unstated:
                yield Event("done", self._abstain(question, language, timings, t0))
                return
            yield Event("checkpoint", None)
        messages = self._prompts.answer_messages(question, language, passages)
        stats = GenerationStats()
        rewriter = MarkerRewriter(valid=len(passages))
        guard = AnswerGuard()  # plain text only: no markup, scripts or links, streamed tokens included
        raw, shown = "", ""
        held = True  # hold output back until it cannot be the NOT_FOUND signal
        emitted_citations: set[int] = set()
        sources_first = self._prompts.sources_first
        prefill = SOURCES_PREFILL if sources_first and getattr(self._generator, "prefills", False) else ""
        sources = SourcesHead(prefill)  # the model's "Sources: [n]…" line: parsed, never shown
        floor = self._settings.answer_min_figure_confidence
        deltas = self._generator.stream(
            messages,
            max_tokens=self._settings.llm.max_tokens,
            stats=stats,
            prefix=prefill,
            logprobs=floor > 0,  # for guessed_figures()
        )
        with closing(deltas):  # leaving early (NOT_FOUND, client gone) stops the model now
            for piece in chain(deltas, [None]):  # None: the reply ended, flush the sources head
                delta = sources.feed(piece) if piece is not None else sources.flush()
                if not delta:
                    continue
                raw += delta
                if held:
                    head = raw.lstrip()
                    if NOT_FOUND.startswith(head[: len(NOT_FOUND)]) and len(head) <= len(NOT_FOUND):
                        continue
                    if head.startswith(NOT_FOUND):
                        break  # the model says the passages do not answer: stop generating
                    held = False
                    delta = head
                text = guard.feed(rewriter.feed(delta))
                if text:
                    shown += text
                    yield Event("token", text)
                for n in rewriter.order:
                    if n not in emitted_citations:
                        emitted_citations.add(n)
                        yield Event(
                            "citation", self._citation(rewriter.order.index(n) + 1, passages[n - 1], raw)
                        )
        if held and not raw.lstrip().startswith(NOT_FOUND):
            text = guard.feed(rewriter.feed(raw.lstrip()))  # a reply shorter than the signal
            shown += text
            yield Event("token", text)
        tail = guard.feed(rewriter.flush()) + guard.flush()
        if tail:
            shown += tail
            yield Event("token", tail)
        if self._metrics is not None:
            self._metrics.observe_generation(
                stats.first_token_s,
                stats.completion_tokens,
                stats.total_s,
                stats.prompt_tokens,
                stats.cached_tokens,
            )
        timings["first_token_ms"] = round((stats.first_token_s or 0.0) * 1000, 1)
        timings["generation_ms"] = round(stats.total_s * 1000, 1)
        timings["completion_tokens"] = float(stats.completion_tokens)
        if stats.prompt_tokens:
            timings["prompt_tokens"] = float(stats.prompt_tokens)
            timings["cached_prompt_tokens"] = float(stats.cached_tokens)
        if raw.lstrip().startswith(NOT_FOUND) or (NOT_FOUND in raw and not rewriter.order):
            yield Event("done", self._abstain(question, language, timings, t0))
            return
        order = list(rewriter.order)
        final = attach_missing_citations(shown.replace(NOT_FOUND, ""), passages, order, sources.numbers)
        final = recite_figures(final, passages, order, question, sources.numbers)
        final, order = drop_unsupported_numbers(final, passages, order, question)
        names = [p.outlet for p in passages]
        reply = [(prefill, 0.0), *stats.token_logprobs] if stats.token_logprobs else []
        guessed = guessed_figures(reply, floor, question, names)
        final, order = drop_guessed_figures(final, order, guessed, names)
        final, order, checks = self._checker.verify(tidy_spacing(final), passages, order)
        say = partial(self._prompts.also_reported, language)
        order, checks = quote_sources(
            self._checker, question, checks, passages, order, sources.numbers, list(rewriter.order), say
        )
        order, checks, repeated = merge_repeats(checks, passages, order)
        stating = passages_stating(question, passages)  # "which outlets report 41…?": those holding 41
        order, checks = keep_stating(checks, order, stating)
        order, checks = answer_stating(self._checker, question, checks, passages, order, stating, say)
        order, checks = self._checker.drop_tangents(question, checks, passages, order, named)
        listed = list(dict.fromkeys([n for n in sources.numbers if 1 <= n <= len(passages)] + repeated))
        order, checks = self._checker.corroborate(question, checks, passages, order, listed)
        order, checks = cite_stating(self._checker, checks, passages, order, stating, say)
        order, checks = quote_named(self._checker, question, checks, passages, order, named, say)
        outlets = {i: passages[n - 1].outlet for i, n in enumerate(order, start=1)}
        sentences = [Sentence(fix_attributions(c.text, outlets), c.citations, c.unsupported) for c in checks]
        final = " ".join(s.text for s in sentences)
        timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        backed = [s.text for s in sentences if s.citations and not s.unsupported]
        if not order or not backed or misses_asked_kind(question, backed, names):
            # Nothing in the answer is backed by a passage, or nothing gives the kind of
            # value asked for (a time, a date, an amount, a rank): say so rather than print it.
            yield Event("done", self._abstain(question, language, timings, t0))
            return
        citations = [self._citation(i, passages[n - 1], final) for i, n in enumerate(order, start=1)]
        yield Event("done", Answer(final, language, False, citations, timings, question, sentences))

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

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        history: Sequence[Turn] | None = None,
        where: dict[str, Any] | None = None,
    ) -> Answer:
        """Non-streaming form of :meth:`stream`."""
        for event in self.stream(question, top_k, history, where):
            if event.kind == "done":
                return event.data
        raise RuntimeError("answer stream ended without a result")
