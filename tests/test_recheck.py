"""The second reading of which-outlet questions: what it reads, when it stops, what it decides.

Pure logic over a scripted generator; the real model's path is in tests/test_api.py
(test_a_which_outlet_question_whose_premise_no_passage_states_is_not_answered, and the
which-outlets questions that are still answered).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from service.pipeline.prompts import PromptLibrary
from service.pipeline.recheck import MAX_TOKENS, SLOT, PremiseCheck
from service.settings import REPO_ROOT


@dataclass
class Passage:
    number: int
    outlet: str
    title: str
    text: str


PASSAGES = [Passage(1, "Il Foglio", "Il ponte chiude", "Il sindaco ha chiuso il ponte fino a marzo.")]


class Scripted:
    """Yields the given deltas; records the call and how far the caller read."""

    def __init__(self, deltas: list[str]):
        self.deltas = deltas
        self.calls: list[dict[str, Any]] = []
        self.read = 0
        self.closed = False

    def stream(self, messages: list[dict[str, str]], **kwargs: Any) -> Iterator[str]:
        self.calls.append({"messages": messages, **kwargs})
        try:
            for d in self.deltas:
                self.read += 1
                yield d
        finally:
            self.closed = True


def check(deltas: list[str]) -> tuple[bool, Scripted]:
    generator = Scripted(deltas)
    direct = PromptLibrary(REPO_ROOT / "prompts", sources_first=False)
    unstated = PremiseCheck(generator, direct).unstated(
        "Quale testata scrive che il ponte crolla?", "it", PASSAGES
    )  # type: ignore[arg-type]
    return unstated, generator


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
        ([], False, 0),
    ],
)
def test_reads_only_as_far_as_the_signal(deltas: list[str], unstated: bool, read: int):
    got, generator = check(deltas)
    assert got is unstated
    assert generator.read == read and generator.closed  # the model is stopped, not left running


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
