"""A second reading for questions that ask which outlet reported something.

"Which outlet reports that Peskov confirmed the Taiwan talks?", "Quale giornale ha
intervistato Musk…?": the question carries a claim as its premise, and any passage
of the story names an outlet, so an answer can always be made. With the default
prompt, which first lists the passages that state the answer, the small model lists
the closest passage of the story even when none states the premise. The direct
prompt (no sources line: the prompt of ``FONTI_ANSWER_SOURCES_FIRST=false``) is a
second, independent reading: when it opens with NOT_FOUND, the passages do not state
what the question takes for granted, and the service abstains. Only its first tokens
are read, in a prompt-cache slot of its own, so the check costs about one prompt
evaluation and only on these questions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from service.backends.llm import Generator, closing
from service.pipeline.listing import asks_which_outlets
from service.pipeline.prompts import NOT_FOUND, PromptLibrary
from service.pipeline.retrieve import Passage

log = logging.getLogger(__name__)

SLOT = "recheck"
# NOT_FOUND is two or three tokens; a leading space or newline one more.
MAX_TOKENS = 6


class PremiseCheck:
    """Reads a which-outlet question again with the direct prompt; NOT_FOUND means abstain."""

    def __init__(self, generator: Generator, prompts: PromptLibrary):
        if prompts.sources_first:
            raise ValueError("the second reading needs the direct prompt (sources_first=False)")
        self._generator = generator
        self._prompts = prompts

    @staticmethod
    def applies(question: str) -> bool:
        """Whether ``question`` asks which outlet(s) reported something."""
        return asks_which_outlets(question)

    def unstated(self, question: str, language: str, passages: Sequence[Passage]) -> bool:
        """True when the direct prompt's reply opens with NOT_FOUND (stops reading as soon as it knows).

        The check only ever withholds an answer: when the second reading fails (its llama.cpp
        context cannot be made, a server error), it is logged and the question is answered
        as without it; the answer's own generation reports a model that is really down.
        """
        messages = self._prompts.answer_messages(question, language, passages)
        head = ""
        deltas = self._generator.stream(messages, max_tokens=MAX_TOKENS, slot=SLOT)
        try:
            with closing(deltas):  # stops the model as soon as the opening is known
                for delta in deltas:
                    head = (head + delta).lstrip()
                    if head.startswith(NOT_FOUND):
                        return True
                    if not NOT_FOUND.startswith(head):
                        return False
        except Exception:
            log.warning(
                "the second reading of a which-outlet question failed; answering without it", exc_info=True
            )
        return False
