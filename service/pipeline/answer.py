"""The answer service: retrieve → evidence → decide → answer from the evidence → verify → stream.

1. **Retrieve** the passages (hybrid search; a question that names outlets is answered
   from theirs) and number them, each article's passages in reading order.
2. **Evidence**: one prompt evaluation of the passages; the model's distribution over
   ``NONE`` and the passage numbers is read (:mod:`service.pipeline.evidence`).
3. **Decide** with the calibrated models (:mod:`service.pipeline.calibration`): the
   passages that state the answer, and whether any does. When none does, the answer is
   an abstention and the model writes nothing.
4. **Commit**: after ``Evidence: [2] [4]`` the model writes a short answer, never shown;
   a figure in it that no evidence passage holds means the evidence does not state what
   was asked, and the answer is an abstention (``AnswerService._commit``).
5. **Answer** from that evidence: the reply continues in the same llama.cpp context
   after ``Evidence: [2] [4]`` and the question's language's lead ("According to").
6. **Verify** each sentence as it completes (:mod:`service.pipeline.verify`); only
   sentences that pass are streamed, so nothing a user has read is ever retracted. The
   first sentence also cites the other evidence passages (every outlet that states the
   answer). When no sentence passes, the answer is an abstention.
7. **Translate** a verified sentence written in another language than the question's,
   or one that copies words from a cited passage in another language, once the model has
   stopped (:mod:`service.pipeline.translate`); it and the sentences after it are held
   back until then, so the order is kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from service.backends.llm import ChatMessage, GenerationStats, Generator, closing
from service.pipeline.calibration import Calibrator, Decision, default_calibrator
from service.pipeline.evidence import EvidenceRead, EvidenceReader, order_by_article
from service.pipeline.followup import Turn, standalone_question
from service.pipeline.language import prose_language
from service.pipeline.prompts import ANSWER_HEAD, EVIDENCE_HEAD, SHORT_HEAD, PromptLibrary
from service.pipeline.retrieve import Passage, Retriever
from service.pipeline.sanitize import AnswerGuard, clean_answer_text, quote_for_answer
from service.pipeline.translate import SentenceTranslator, Source
from service.pipeline.verify import (
    Checked,
    SentenceVerifier,
    add_markers,
    best_quote,
    name_outlets,
    renumber,
)
from service.settings import Settings
from service.text import complete_sentences, split_sentences

if TYPE_CHECKING:
    from service.metrics import Metrics

# Sentences an answer may have: the prompt asks for one or two, a conflict takes one per version.
MAX_SENTENCES = 3
# Tokens of the short answer at most: a value the passages do not hold comes within the
# first sentence the model writes.
SHORT_TOKENS = 24
# A named outlet's passage this far under its best one is from another of its stories
# (e5 cosine).
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
    """One verified sentence of the answer with the citation ids it carries."""

    text: str
    citations: list[int]


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
    trace: dict[str, Any] | None = None  # FONTI_ANSWER_TRACE: how the answer was decided

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["trace"] is None:
            del data["trace"]
        return data


@dataclass(frozen=True)
class Event:
    """A streaming event: ``token`` (a verified sentence), ``citation``, or ``done`` (the final answer).

    ``checkpoint`` (no data, never sent to a client) marks a point after a model call that
    showed nothing, where a caller that stops between events (a client gone, a deadline)
    is heard before the next model call.
    """

    kind: str
    data: Any


@dataclass
class Gathered:
    """The passages as numbered in the prompt, the prompt, and what the model's evidence read said."""

    passages: list[Passage]
    messages: list[ChatMessage]
    read: EvidenceRead
    stats: GenerationStats


# The answer's timings that are steps of its own (``/metrics``: fonti_answer_step_seconds).
STEP_TIMINGS = {
    "rewrite_ms": "followup",
    "retrieval_ms": "retrieval",
    "evidence_ms": "evidence",
    "commitment_ms": "short_answer",
    "generation_ms": "answer",
    "translation_ms": "translation",
}

# What each model call of one answer cost: (step, its GenerationStats), in order.
Spent = list[tuple[str, GenerationStats]]


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


class AnswerService:
    """Answers questions from the store with the LLM, citing outlets."""

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        prompts: PromptLibrary,
        settings: Settings,
        metrics: Metrics | None = None,
        calibrator: Calibrator | None = None,
    ):
        self._retriever = retriever
        self._generator = generator
        self._prompts = prompts
        self._settings = settings
        self._metrics = metrics
        self._calibrator = calibrator or default_calibrator()
        self._evidence = EvidenceReader(generator, prompts)

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

    def _abstain(
        self,
        question: str,
        language: str,
        timings: dict[str, float],
        t0: float,
        trace: dict[str, Any] | None = None,
    ) -> Answer:
        timings["total_ms"] = _ms(t0)
        return Answer(self._prompts.abstention(language), language, True, [], timings, question, trace=trace)

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
        t0 = time.perf_counter()
        # Outlet names are not the question's prose ("Wie alt ist ... laut Le Scienze?").
        language = prose_language(question, self._retriever.named_outlets(question))
        asked = question
        timings: dict[str, float] = {}
        spent: Spent = []
        if history:
            stats = GenerationStats()
            question = standalone_question(self._generator, self._prompts, question, history, stats)
            spent.append(("followup", stats))
            timings["rewrite_ms"] = _ms(t0)
        events = self._answer(question, language, top_k, timings, t0, where, spent)
        with closing(events):
            for event in events:
                if event.kind == "done":
                    event.data.question = asked
                    event.data.standalone_question = question if question != asked else None
                    if self._metrics is not None:
                        self._metrics.observe_answer(event.data.abstained)
                        steps = {s: timings[k] / 1000 for k, s in STEP_TIMINGS.items() if k in timings}
                        self._metrics.observe_steps(steps, spent)
                yield event

    def _retrieve(self, question: str, top_k: int | None, where: dict[str, Any] | None) -> list[Passage]:
        rs = self._settings.retrieval
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
        return found

    def gather(
        self,
        question: str,
        language: str,
        top_k: int | None = None,
        where: dict[str, Any] | None = None,
        timings: dict[str, float] | None = None,
    ) -> Gathered | None:
        """Steps 1-2: the numbered passages, the answer prompt and the model's evidence read.

        None when retrieval finds nothing on topic. ``scripts/calibrate.py`` fits the
        calibration on exactly what this returns. ``timings`` receives ``retrieval_ms``.
        """
        t0 = time.perf_counter()
        found = self._retrieve(question, top_k, where)
        if timings is not None:
            timings["retrieval_ms"] = _ms(t0)
        if not found or max(p.dense_score for p in found) < self._settings.retrieval.min_score:
            return None
        passages = order_by_article(self.pack(found))
        messages = self._prompts.answer_messages(question, language, passages)
        stats = GenerationStats()
        read = self._evidence.read(messages, len(passages), stats)
        return Gathered(passages, messages, read, stats)

    def _answer(
        self,
        question: str,
        language: str,
        top_k: int | None,
        timings: dict[str, float],
        t0: float,
        where: dict[str, Any] | None,
        spent: Spent,
    ) -> Iterator[Event]:
        t1 = time.perf_counter()
        gathered = self.gather(question, language, top_k, where, timings)
        timings["evidence_ms"] = round(_ms(t1) - timings["retrieval_ms"], 1)
        if gathered is None:
            yield Event("done", self._abstain(question, language, timings, t0))
            return
        spent.append(("evidence", gathered.stats))
        decision = self._calibrator.decide(gathered.passages, gathered.read)
        trace = self._trace(gathered, decision) if self._settings.answer_trace else None
        if decision.abstain:
            yield Event("done", self._abstain(question, language, timings, t0, trace))
            return
        yield Event("checkpoint", None)
        lead = self._prompts.lead(language)
        verifier = SentenceVerifier(question, gathered.passages, decision.evidence, lead)
        failure = self._commit(gathered, decision, verifier, timings, trace, spent)
        yield Event("checkpoint", None)
        if failure is not None:
            abstention = self._abstain(question, language, timings, t0, trace)
            if trace is not None:  # the answer it stopped, for scripts/ablate.py (timed apart)
                stopped = self._write(
                    question,
                    language,
                    lead,
                    verifier,
                    gathered,
                    decision,
                    dict(timings),
                    t0,
                    trace,
                    [],
                    observe=False,
                )
                for _ in stopped:
                    pass
            yield Event("done", abstention)
            return
        yield from self._write(
            question, language, lead, verifier, gathered, decision, timings, t0, trace, spent
        )

    def _commit(
        self,
        gathered: Gathered,
        decision: Decision,
        verifier: SentenceVerifier,
        timings: dict[str, float],
        trace: dict[str, Any] | None,
        spent: Spent,
    ) -> str | None:
        """Step 4a: the model states the asked value in a short answer; why it fails, or None.

        Written after the evidence line, in the same llama.cpp context, and never shown.
        Where the evidence lacks what the question asks, the answer itself opens on the
        evidence passage and says something else; the short answer, written without that
        opening, names a value, and a figure no evidence passage holds shows the evidence
        does not state it (:meth:`SentenceVerifier.commitment`): the answer abstains.
        """
        t0 = time.perf_counter()
        evidence_line = self._evidence_line(decision)
        if self._generator.prefills:
            prefix, reply = f"{evidence_line}\n{SHORT_HEAD}", gathered.messages
        else:
            prefix = ""
            reply = [
                *gathered.messages,
                {"role": "assistant", "content": evidence_line},
                {"role": "user", "content": SHORT_HEAD},
            ]
        stats = GenerationStats()
        spent.append(("short_answer", stats))
        deltas = self._generator.stream(reply, max_tokens=SHORT_TOKENS, stats=stats, prefix=prefix)
        text, settled, failure, whole = "", False, None, False
        with closing(deltas):
            for delta in deltas:
                text += delta
                whole = "\n" in text.lstrip()
                settled, failure = verifier.commitment(text.strip().split("\n", 1)[0], final=whole)
                if settled or whole:
                    break
        line = text.strip().split("\n", 1)[0]
        if not settled:
            # Cut by the token limit, a figure at the very end may be cut too ("202" of "2023").
            cut = not whole and stats.completion_tokens >= SHORT_TOKENS
            failure = verifier.commitment(re.sub(r"[\d.,:]+$", "", line) if cut else line, final=True)[1]
        timings["commitment_ms"] = _ms(t0)
        if trace is not None:
            trace["short"] = {"text": line, "failure": failure}
        return failure

    @staticmethod
    def _evidence_line(decision: Decision) -> str:
        return f"{EVIDENCE_HEAD} " + " ".join(f"[{n}]" for n in decision.evidence)

    @staticmethod
    def _trace(gathered: Gathered, decision: Decision) -> dict[str, Any]:
        read = gathered.read
        return {
            "passages": [
                {
                    "number": p.number,
                    "outlet": p.outlet,
                    "article_id": p.article_id,
                    "probability": round(pr, 4),
                }
                for p, pr in zip(gathered.passages, decision.passage_probs, strict=True)
            ],
            "p_none": round(read.p_none, 4),
            "first": [round(x, 4) for x in read.first],
            "written": read.written,
            "answerable": round(decision.answerable, 4),
            "evidence": decision.evidence,
            "abstain": decision.abstain,
            "sentences": [],
        }

    def _write(
        self,
        question: str,
        language: str,
        lead: str,
        verifier: SentenceVerifier,
        gathered: Gathered,
        decision: Decision,
        timings: dict[str, float],
        t0: float,
        trace: dict[str, Any] | None,
        spent: Spent,
        observe: bool = True,
    ) -> Iterator[Event]:
        """Generate the answer from the evidence; stream each sentence that passes verification.

        ``spent`` receives the model calls' stats; ``observe=False``: an answer written into
        the trace only (not counted in the metrics).
        """
        passages, messages = gathered.passages, gathered.messages
        by_number = {p.number: p for p in passages}
        outlet_of = {n: p.outlet for n, p in by_number.items()}
        # The answer opens on the likeliest evidence passage ("According to <its outlet> [n],"):
        # the model then writes what that passage states, not what it would have picked.
        opening = self._opening(lead, by_number[decision.evidence[0]])
        evidence_line = self._evidence_line(decision)
        if self._generator.prefills:
            prefix = f"{evidence_line}\n{ANSWER_HEAD} {opening}"
            reply = messages
        else:  # a server backend: the evidence goes back as the assistant's turn
            prefix = ""
            reply = [
                *messages,
                {"role": "assistant", "content": evidence_line},
                {"role": "user", "content": f"{ANSWER_HEAD} ({opening} ...)"},
            ]
        stats = GenerationStats()
        spent.append(("answer", stats))
        deltas = self._generator.stream(
            reply, max_tokens=self._settings.llm.max_tokens, stats=stats, prefix=prefix
        )
        translator = SentenceTranslator(
            self._generator, self._prompts, passages, lead, language, self._settings.llm.max_tokens, question
        )
        guard = AnswerGuard()  # plain text only: no markup, scripts or links
        ids: dict[int, int] = {}  # passage number -> citation id, in order of first use
        sentences: list[Sentence] = []
        # Verified sentences held back from the first one to rewrite (another language, copied
        # words) on: it is rewritten once the model has stopped (one model), and the order is kept.
        held: list[tuple[Checked, dict[str, Any], Source | None]] = []  # with why it is rewritten
        buffer = opening if prefix else ""  # the prefilled opening starts the first sentence
        emitted: set[int] = set()

        def verified(text: str) -> Checked | None:
            checked = verifier.check(text)
            first = not sentences and not held
            record: dict[str, Any] = {
                "text": checked.text,
                "passages": checked.passages,
                "outside": checked.outside,
                # the other outlets that state the answer back the first sentence shown
                "added": [n for n in decision.corroborating if n not in checked.passages] if first else [],
                "failure": checked.failure,
            }
            if trace is not None:
                trace["sentences"].append(record)
            if not checked.ok:
                timings["dropped_sentences"] = timings.get("dropped_sentences", 0.0) + 1
                return None
            source = translator.source(checked.text, checked.passages)
            if source is not None and source.copied:
                record["copied"] = list(source.copied)
            if held or source:
                held.append((checked, record, source))
                return None
            return checked

        def show(checked: Checked) -> Iterator[Event]:
            body = checked.text
            if not sentences:
                body = add_markers(body, [n for n in decision.corroborating if n not in checked.passages])
            shown, cited = renumber(name_outlets(body, outlet_of), ids)
            if not sentences:
                timings["first_sentence_ms"] = _ms(t0)
            sentences.append(Sentence(shown, cited))
            yield Event("token", ("" if len(sentences) == 1 else " ") + shown)
            for n, cid in ids.items():
                if cid in cited and cid not in emitted:
                    emitted.add(cid)
                    yield Event("citation", self._citation(cid, by_number[n], shown))

        def emit(text: str) -> Iterator[Event]:
            checked = verified(text)
            if checked is not None:
                yield from show(checked)

        with closing(deltas):  # leaving early (client gone, deadline) stops the model now
            for delta in deltas:
                done, buffer = complete_sentences(buffer + guard.feed(delta))
                for part in done:
                    yield from emit(part)
                if len(sentences) + len(held) >= MAX_SENTENCES:
                    buffer = ""
                    break  # enough said: closing the stream stops the model
        for part in split_sentences(buffer + guard.flush()):
            if len(sentences) + len(held) < MAX_SENTENCES:
                yield from emit(part)
        for checked, record, source in held:  # the model has stopped: translate what is not in the language
            if source is not None:
                checked = self._translated(checked, source, record, verifier, translator, timings, spent)
            yield from show(checked)
        self._observe(stats, timings, gathered.stats, observe)
        if not sentences:
            yield Event("done", self._abstain(question, language, timings, t0, trace))
            return
        answer = " ".join(s.text for s in sentences)
        number_of = {cid: n for n, cid in ids.items()}
        citations = [self._citation(cid, by_number[number_of[cid]], answer) for cid in sorted(number_of)]
        timings["total_ms"] = _ms(t0)
        yield Event(
            "done", Answer(answer, language, False, citations, timings, question, sentences, trace=trace)
        )

    @staticmethod
    def _translated(
        checked: Checked,
        source: Source,
        record: dict[str, Any],
        verifier: SentenceVerifier,
        translator: SentenceTranslator,
        timings: dict[str, float],
        spent: Spent,
    ) -> Checked:
        """``checked`` (written in ``source``) in the question's language, when the translation holds up."""
        t0 = time.perf_counter()
        stats = GenerationStats()
        spent.append(("translation", stats))
        translation = translator.translate(checked.text, source.language, source.copied, stats)
        again = None if translation.failure else verifier.check(clean_answer_text(translation.text))
        timings["translation_ms"] = timings.get("translation_ms", 0.0) + _ms(t0)
        if again is None or not again.ok:
            record["translation"] = translation.text
            record["translation_failure"] = translation.failure or (again.failure if again else None)
            return checked
        record["translation"], record["translation_failure"] = again.text, None
        return again

    @staticmethod
    def _opening(lead: str, first: Passage) -> str:
        """The prefilled start of the answer: the lead and the likeliest evidence passage's outlet.

        The comma is prefilled too: without it the model names a second outlet in the lead
        of nearly every answer ("... [1] and <outlet> [2], ...") and folds a conflict's two
        versions into one claim (measured on dev questions, docs/citations.md).
        """
        return f"{lead} {quote_for_answer(first.outlet)} [{first.number}],"

    def _observe(
        self, stats: GenerationStats, timings: dict[str, float], read: GenerationStats, observe: bool
    ) -> None:
        if self._metrics is not None and observe:
            self._metrics.observe_generation(
                stats.first_token_s,
                stats.completion_tokens,
                stats.total_s,
                read.prompt_tokens,
                read.cached_tokens,
            )
        timings["generation_ms"] = round(stats.total_s * 1000, 1)
        timings["completion_tokens"] = float(stats.completion_tokens)
        if read.prompt_tokens:
            timings["prompt_tokens"] = float(read.prompt_tokens)
            timings["cached_prompt_tokens"] = float(read.cached_tokens)

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
