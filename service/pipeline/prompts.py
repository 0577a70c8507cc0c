"""Prompt templates, loaded from the ``prompts/`` folder (Jinja2, no HTML escaping: plain text)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from service.backends.llm import ChatMessage
from service.pipeline.language import language_name
from service.pipeline.sanitize import quote_for_prompt, redact_instructions

# What the follow-up rewriting must never return (the answer prompt's abstention word).
NOT_FOUND = "NOT_FOUND"
# The answer prompt's two parts: the evidence line, then the answer written from it.
EVIDENCE_HEAD = "Evidence:"
ANSWER_HEAD = "Answer:"
# Between them, unseen by the user: the value the model commits to (see AnswerService._commit).
SHORT_HEAD = "Short answer:"
NO_EVIDENCE = "NONE"


class PromptLibrary:
    """The answer prompt (system + user), its evidence grammar, and the fixed sentences of answers."""

    def __init__(self, folder: Path):
        if not folder.is_dir():
            raise RuntimeError(f"prompt folder {folder} does not exist (FONTI_PROMPTS_DIR)")
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(folder)),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
        )
        # Rendered once: the fixed system prompt is the shared prefix llama.cpp caches.
        self.system = self._env.get_template("answer_system.j2").render().strip()

    def answer_messages(self, question: str, language: str, passages: Sequence[Any]) -> list[ChatMessage]:
        """System instructions, then the user turn: the numbered passages, then the question.

        Article text is untrusted: sentences that speak to an AI are cut
        (:func:`redact_instructions`), and every passage and outlet goes through
        :func:`quote_for_prompt` (no control tokens, no line of its own, no forged ``[n]``),
        so each passage is one prompt line; the question gets the same quoting.
        """
        user = self._env.get_template("answer_user.j2").render(
            passages=[
                {
                    "number": p.number,
                    "outlet": quote_for_prompt(p.outlet),
                    "text": quote_for_prompt(redact_instructions(p.text)),
                }
                for p in passages
            ],
            question=quote_for_prompt(question),
            language_name=language_name(language),
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user.strip()}]

    def evidence_grammar(self, count: int, head: bool = False) -> str:
        """GBNF for the evidence line: NONE, or numbers of the ``count`` passages.

        ``head``: the reply starts with ``Evidence:`` itself (a backend that cannot prefill).
        """
        return self._env.get_template("evidence.gbnf.j2").render(count=count, head=head).strip() + "\n"

    def lead(self, language: str) -> str:
        """How an answer sentence opens on its outlet in ``language`` ("According to", "Secondo", ...)."""
        return self._env.get_template("answer_lead.j2").render(language=language).strip()

    def translate_messages(
        self, text: str, source: str, target: str, mixed: bool = False
    ) -> list[ChatMessage]:
        """The request to write ``text`` (in language ``source``) in language ``target``; codes.

        ``mixed``: the text is in ``target`` already but carries words of ``source``.
        """
        user = self._env.get_template("translate_user.j2").render(
            text=quote_for_prompt(text, markers=True),
            source=language_name(source),
            target=language_name(target),
            mixed=mixed,
        )
        return [{"role": "user", "content": user.strip()}]

    def condense_messages(self, question: str, history: Sequence[Any]) -> list[ChatMessage]:
        """The follow-up rewriting prompt: fixed instructions, then the conversation and question."""
        system = self._env.get_template("condense_system.j2").render().strip()
        turns = [{"role": t.role, "content": quote_for_prompt(t.content)} for t in history]
        user = self._env.get_template("condense_user.j2").render(
            history=turns, question=quote_for_prompt(question)
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user.strip()}]

    def abstention(self, language: str) -> str:
        """The short sentence that says the articles do not answer, in ``language``."""
        return self._env.get_template("abstain.j2").render(language=language).strip()
