"""Prompt templates, loaded from the ``prompts/`` folder (Jinja2, no HTML escaping: plain text)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from service.backends.llm import ChatMessage
from service.pipeline.language import language_name
from service.pipeline.sanitize import quote_for_answer, quote_for_prompt, redact_instructions

# What the answer prompts tell the model to write when no passage states the answer.
NOT_FOUND = "NOT_FOUND"


class PromptLibrary:
    """The answer prompt (system + user) and the abstention sentence."""

    def __init__(self, folder: Path, sources_first: bool = True):
        if not folder.is_dir():
            raise RuntimeError(f"prompt folder {folder} does not exist (FONTI_PROMPTS_DIR)")
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(folder)),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
        )
        # Rendered once: the fixed system prompt is the shared prefix llama.cpp caches.
        self.sources_first = sources_first
        self.system = self._env.get_template("answer_system.j2").render(sources_first=sources_first).strip()

    def answer_messages(self, question: str, language: str, passages: Sequence[Any]) -> list[ChatMessage]:
        """System instructions, then the user turn: passages grouped by article, then the question.

        Article text is untrusted: sentences that speak to an AI are cut
        (:func:`redact_instructions`), and every passage, title and outlet goes through
        :func:`quote_for_prompt` (no control tokens, no line of its own, no forged ``[n]``),
        so each passage is one prompt line; the question gets the same quoting.
        """
        groups: dict[str, list[dict[str, Any]]] = {}
        for p in passages:
            groups.setdefault(quote_for_prompt(redact_instructions(p.title)), []).append(
                {
                    "number": p.number,
                    "outlet": quote_for_prompt(p.outlet),
                    "text": quote_for_prompt(redact_instructions(p.text)),
                }
            )
        user = self._env.get_template("answer_user.j2").render(
            groups=[{"title": t, "passages": ps} for t, ps in groups.items()],
            question=quote_for_prompt(question),
            language=language,
            language_name=language_name(language),
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user.strip()}]

    def condense_messages(self, question: str, history: Sequence[Any]) -> list[ChatMessage]:
        """The follow-up rewriting prompt: fixed instructions, then the conversation and question."""
        system = self._env.get_template("condense_system.j2").render().strip()
        turns = [{"role": t.role, "content": quote_for_prompt(t.content)} for t in history]
        user = self._env.get_template("condense_user.j2").render(
            history=turns, question=quote_for_prompt(question)
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user.strip()}]

    def also_reported(self, language: str, outlet: str, marker: str, quote: str) -> str:
        """A sentence quoting ``outlet``'s passage verbatim, cited with ``marker``, in ``language``.

        The outlet name is article data too: it is shown as plain text and cannot carry
        a citation marker (see :func:`quote_for_answer`).
        """
        return (
            self._env.get_template("also_reported.j2")
            .render(language=language, outlet=quote_for_answer(outlet), marker=marker, quote=quote)
            .strip()
        )

    def abstention(self, language: str) -> str:
        """The short sentence that says the articles do not answer, in ``language``."""
        return self._env.get_template("abstain.j2").render(language=language).strip()
