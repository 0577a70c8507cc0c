"""Follow-up questions: rewrite "and what did the Kremlin say?" into a standalone question.

Retrieval sees only the question, so a follow-up must carry what the conversation
established. The LLM rewrites it in its own prompt-cache slot (so the answer prompt's
cached prefix survives); a rewrite that comes back empty, as an answer, or absurdly
long falls back to the previous user question followed by the follow-up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from service.backends.llm import SIDE_SLOT, GenerationStats, Generator
from service.pipeline.prompts import NOT_FOUND, PromptLibrary

# Only the last turns matter for a follow-up, and they bound the rewrite prompt.
MAX_TURNS = 6
MAX_TURN_CHARS = 600


@dataclass(frozen=True)
class Turn:
    """One previous message of the conversation."""

    role: Literal["user", "assistant"]
    content: str


def _fallback(question: str, history: Sequence[Turn]) -> str:
    previous = next((t.content for t in reversed(history) if t.role == "user"), "")
    return f"{previous} {question}".strip()


def recent(history: Sequence[Turn]) -> list[Turn]:
    """The last turns, each cut to a bounded length, citation markers removed."""
    turns = []
    for t in list(history)[-MAX_TURNS:]:
        text = re.sub(r"\s*\[\d+\]", "", t.content).strip()
        turns.append(Turn(t.role, text[:MAX_TURN_CHARS]))
    return turns


def standalone_question(
    generator: Generator,
    prompts: PromptLibrary,
    question: str,
    history: Sequence[Turn],
    stats: GenerationStats | None = None,
) -> str:
    """``question`` rewritten to stand alone given ``history`` (unchanged when there is none).

    ``stats`` receives the rewrite's token counts.
    """
    turns = recent(history)
    if not any(t.role == "user" for t in turns):
        return question
    messages = prompts.condense_messages(question, turns)
    text = "".join(generator.stream(messages, max_tokens=96, stats=stats, slot=SIDE_SLOT))
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(Rewritten|Riscritta|Domanda)\s*:\s*", "", line, flags=re.IGNORECASE).strip(" \"'«»")
    if not line or NOT_FOUND in line or len(line) > 4 * len(question) + 200 or "[" in line:
        return _fallback(question, turns)
    return line
