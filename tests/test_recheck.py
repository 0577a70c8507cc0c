"""The second reading of which-outlet questions: what it reads, when it stops, what it decides.

Pure logic over a scripted generator; the real model's path is in tests/test_api.py
(test_a_which_outlet_question_whose_premise_no_passage_states_is_not_answered, and the
which-outlets questions that are still answered).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.pipeline.prompts import PromptLibrary
from service.pipeline.recheck import MAX_TOKENS, SLOT, PremiseCheck
from service.pipeline.retrieve import Passage
from service.settings import REPO_ROOT

PASSAGES = [
    Passage(
        chunk_id="c1",
        article_id="ponte.txt",
        outlet="Il Foglio",
        title="Il ponte chiude",
        text="Il sindaco ha chiuso il ponte fino a marzo.",
        url=None,
        published=None,
        score=1.0,
        dense_score=0.9,
        number=1,
    )
]


class Scripted:
    """Yields the given deltas (an exception is raised); records the call and how far it was read.

    The stream object is kept here, so ``closed`` is set only by an explicit close, not
    when the caller drops it.
    """

    def __init__(self, deltas: list[str | Exception]):
        self.deltas = deltas
        self.calls: list[dict[str, Any]] = []
        self.read = 0
        self.closed = False
        self.streams: list[Iterator[str]] = []

    def _deltas(self) -> Iterator[str]:
        try:
            for d in self.deltas:
                self.read += 1
                if isinstance(d, Exception):
                    raise d
                yield d
        finally:
            self.closed = True

    def stream(self, messages: list[dict[str, str]], **kwargs: Any) -> Iterator[str]:
        self.calls.append({"messages": messages, **kwargs})
        self.streams.append(self._deltas())
        return self.streams[-1]


def check(deltas: list[str | Exception]) -> tuple[bool, Scripted]:
    generator = Scripted(deltas)
    direct = PromptLibrary(REPO_ROOT / "prompts", sources_first=False)
    question = "Quale testata scrive che il ponte crolla?"
    return PremiseCheck(generator, direct).unstated(question, "it", PASSAGES), generator  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("deltas", "unstated", "read"),
    [
        (["NOT", "_FOUND"], True, 2),
        (["\n", "NOT_FOUND", " more"], True, 2),
        # an answer: decided at its first token, the rest is never generated
        (["Secondo", " Il Foglio [1]", ", il ponte"], False, 1),
        # starts like the signal, then is not it
        (["NOT", " really"], False, 2),
        # "N" could be NOT_FOUND: read on
        (["N", "OT_FOUND"], True, 2),
        (["", " ", "NOT_FOUND"], True, 3),
        # only the opening counts: a reply that gives up later is the answer's business
        (["Answer", ": NOT_FOUND"], False, 1),
        # cut off by the token limit before the signal was complete
        (["NOT", "_FO"], False, 2),
        ([], False, 0),
    ],
)
def test_reads_only_as_far_as_the_signal(deltas: list[str | Exception], unstated: bool, read: int):
    got, generator = check(deltas)
    assert got is unstated
    assert generator.read == read and generator.closed  # the model is stopped, not left running


def test_a_failed_second_reading_answers_as_without_it(caplog: pytest.LogCaptureFixture):
    got, generator = check(["NOT", RuntimeError("failed to create llama_context")])
    assert got is False and generator.closed
    assert "second reading" in caplog.text and "failed to create llama_context" in caplog.text


def test_uses_the_direct_prompt_in_its_own_slot():
    _, generator = check(["NOT_FOUND"])
    (call,) = generator.calls
    assert call["slot"] == SLOT != "answer" and call["max_tokens"] == MAX_TOKENS
    system = call["messages"][0]["content"]
    assert "Sources:" not in system and "NOT_FOUND" in system  # no sources line: the direct prompt
    assert "Il sindaco ha chiuso il ponte" in call["messages"][1]["content"]


def test_the_sources_first_prompt_is_refused():
    with pytest.raises(ValueError, match="direct prompt"):
        PremiseCheck(Scripted([]), PromptLibrary(REPO_ROOT / "prompts", sources_first=True))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("question", "applies"),
    [
        ("Quale giornale ha intervistato il sindaco?", True),
        ("Which outlets report the closure?", True),
        ("Quali testate scrivono che il ponte chiude?", True),
        ("Chi ha chiuso il ponte?", False),
        ("What sources of energy does the town use?", False),
    ],
)
def test_applies_to_which_outlet_questions_only(question: str, applies: bool):
    assert PremiseCheck.applies(question) is applies
