"""Evidence first: the model reads the passages once and commits to the ones that state the answer.

The answer prompt opens the reply with ``Evidence:``; the model then names passage
numbers (a llama.cpp grammar allows only numbers that exist) or ``NONE``. One prompt
evaluation of the passages gives the model's whole distribution at that point: the
probability of ``NONE`` against naming a passage, and, over the passages, the
probability that each one is named first. Those numbers, not the greedy pick, are the
model's evidence signal: :mod:`service.pipeline.calibration` combines them with the
retrieval scores into the evidence set and the decision to abstain, and the answer is
then written from that evidence in the same llama.cpp context (its KV cache holds the
passages, so nothing is evaluated twice).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.backends.llm import ChatMessage, GenerationStats, Generator, TokenStep, closing
from service.pipeline.prompts import EVIDENCE_HEAD, NO_EVIDENCE, PromptLibrary
from service.pipeline.retrieve import Passage

# Likeliest pieces read at each step: passage numbers and NONE are always among them.
TOP_LOGPROBS = 40
# Without a prefilled "Evidence:" (a server backend), the reply's first tokens lead up to it.
_UNPREFILLED_TOKENS = 24
_IDS = re.compile(r"\[\s*(\d{1,2})\s*\]")


@dataclass
class EvidenceRead:
    """What the model's first look at the passages says.

    ``p_none``: its probability of answering NONE against naming a passage;
    ``first[i]``: the probability that passage ``i + 1`` is the first one it names;
    ``written``: the passage numbers of its greedy evidence line (grammar-constrained);
    ``measured``: whether the probabilities come from the model's distribution (False when
    the backend returned no log-probabilities: then they are read off ``written``).
    """

    p_none: float
    first: list[float]
    written: list[int] = field(default_factory=list)
    measured: bool = True


def order_by_article(passages: list[Passage]) -> list[Passage]:
    """Group passages by article (articles in rank order), each in reading order; number them 1..n."""
    groups: dict[str, list[Passage]] = {}
    for p in passages:
        groups.setdefault(p.article_id, []).append(p)
    ordered = [p for ps in groups.values() for p in sorted(ps, key=lambda p: p.position)]
    for i, p in enumerate(ordered, start=1):
        p.number = i
    return ordered


def _softmax(logprobs: Sequence[float]) -> list[float]:
    top = max(logprobs)
    if top == float("-inf"):
        return [1.0 / len(logprobs)] * len(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def read_distribution(steps: Sequence[TokenStep], count: int) -> tuple[float, list[float]] | None:
    """``(p_none, first)`` from the steps right after ``Evidence:``; None when they are not there.

    The first step chooses between `` NONE`` and `` [``; the next (when it exists and
    followed a `` [``) chooses the passage number. Probabilities are renormalised over
    what the grammar allows.
    """
    if not steps:
        return None
    head = steps[0]
    none_lp = max(head.logprob(" " + NO_EVIDENCE), head.logprob(NO_EVIDENCE))
    open_lp = max(head.logprob(" ["), head.logprob("["))
    if none_lp == open_lp == float("-inf"):
        return None
    p_none = _softmax([none_lp, open_lp])[0]
    if len(steps) < 2 or not head.piece.strip().startswith("["):
        return p_none, [1.0 / count] * count
    nums = steps[1]
    return p_none, _softmax([nums.logprob(str(n)) for n in range(1, count + 1)])


def written_ids(text: str, count: int) -> list[int]:
    """Passage numbers named on an evidence line, once each, those that exist only."""
    seen: list[int] = []
    for m in _IDS.finditer(text.split("\n", 1)[0]):
        n = int(m.group(1))
        if 1 <= n <= count and n not in seen:
            seen.append(n)
    return seen


class EvidenceReader:
    """Runs the evidence step of the answer prompt and reads the model's distribution."""

    def __init__(self, generator: Generator, prompts: PromptLibrary):
        self._generator = generator
        self._prompts = prompts

    def read(self, messages: Sequence[ChatMessage], count: int, stats: GenerationStats) -> EvidenceRead:
        """The model's evidence over ``count`` passages (``messages``: the answer prompt)."""
        prefilled = self._generator.prefills
        grammar = None
        if self._generator.constrains:
            grammar = self._prompts.evidence_grammar(count, head=not prefilled)
        deltas = self._generator.stream(
            messages,
            max_tokens=2 if prefilled else _UNPREFILLED_TOKENS,
            stats=stats,
            prefix=EVIDENCE_HEAD if prefilled else "",
            grammar=grammar,
            top_logprobs=TOP_LOGPROBS,
            slot="answer",
        )
        text = ""
        with closing(deltas):
            for delta in deltas:
                text += delta
                if "\n" in text.split(EVIDENCE_HEAD, 1)[-1]:
                    break  # the evidence line is complete
        steps = stats.steps
        if not prefilled:  # find the steps after the model's own "Evidence:"
            steps = _after_head(steps)
            text = text.split(EVIDENCE_HEAD, 1)[-1] if EVIDENCE_HEAD in text else ""
        written = written_ids(text, count)
        read = read_distribution(steps, count)
        if read is not None:
            return EvidenceRead(read[0], read[1], written, measured=True)
        # No log-probabilities: what the model wrote is all there is.
        none = 1.0 if not written else 0.0
        first = [1.0 if written and n == written[0] else 0.0 for n in range(1, count + 1)]
        return EvidenceRead(none, first, written, measured=False)


def _after_head(steps: Sequence[TokenStep]) -> list[TokenStep]:
    """The steps after the pieces that spell ``Evidence:`` (none when it was never written)."""
    text = ""
    for i, step in enumerate(steps):
        text += step.piece
        if text.rstrip().endswith(EVIDENCE_HEAD):
            return list(steps[i + 1 :])
    return []
