"""Answer sentences written in another language than the question's, rewritten in it.

The answer is written from passages that are mostly Italian, and for a question in
another language the small model sometimes copies a passage's words into its sentence
("Selon Il Foglio [1], Alessandro Giuli, 49 anni, è il nuovo ministro della Cultura").
A verified sentence whose prose (markers and outlet names left out) py3langid reads as
another language than the question's is translated by the same model, in a prompt of
its own (the side slot: the answer's cached prompt stays). The translation replaces it
only when it is in the question's language, keeps the sentence's markers, and passes the
same verification as the sentence (the caller checks that); otherwise the verified
sentence is shown as written.

Outlet names are masked as their markers before translation (the model translates "Le
Scienze" and "Il Post"), and the opening the service prefilled in the question's
language ("Selon ANSA [1],") is kept as it is, so the model sees only the prose to
translate and not a French start that makes it think the sentence is French already.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.backends.llm import SIDE_SLOT, Generator
from service.pipeline.language import prose_language
from service.pipeline.prompts import PromptLibrary
from service.pipeline.retrieve import Passage

_MARKER = re.compile(r"\[(\d+)\]")


def _markers(text: str) -> list[int]:
    return sorted({int(n) for n in _MARKER.findall(text)})


@dataclass
class Translation:
    """What the model wrote for a sentence (names restored), and why it is not used (None: it is)."""

    text: str
    failure: str | None = None


class SentenceTranslator:
    """Rewrites one answer's off-language sentences in the question's language."""

    def __init__(
        self,
        generator: Generator,
        prompts: PromptLibrary,
        passages: Sequence[Passage],
        lead: str,
        language: str,
        max_tokens: int,
    ):
        self._generator = generator
        self._prompts = prompts
        self._outlets = {p.number: p.outlet for p in passages}
        self._language = language
        self._max_tokens = max_tokens
        # The prefilled opening after masking: the lead, then markers joined by at most one word.
        self._opening = re.compile(
            rf"^\s*{re.escape(lead)}\s+\[\d+\](?:\s*,?\s*(?:\w+\s+)?\[\d+\])*\s*,\s*", re.IGNORECASE
        )

    def source(self, sentence: str) -> str | None:
        """The language ``sentence`` is written in when it is not the question's, else None."""
        found = prose_language(sentence, self._outlets.values())
        return None if found == self._language else found

    def translate(self, sentence: str, source: str) -> Translation:
        """``sentence`` (markers are passage numbers) in the question's language.

        It fails when the model's text is not in the question's language or lost a marker.
        """
        masked, names = self._mask(sentence)
        m = self._opening.match(masked)
        opening, prose = (masked[: m.end()], masked[m.end() :]) if m else ("", masked)
        if not re.search(r"[^\W\d_]", _MARKER.sub("", prose)):
            return Translation("", "nothing but the opening to translate")
        messages = self._prompts.translate_messages(prose, source, self._language)
        reply = "".join(self._generator.stream(messages, max_tokens=self._max_tokens, slot=SIDE_SLOT))
        # A line that ends with a colon introduces the translation ("Voici la traduction :").
        lines = [ln.strip() for ln in reply.splitlines() if ln.strip()]
        line = next((ln for ln in lines if not ln.endswith(":")), "")
        if len(line) > 1 and line[0] in "\"'«“" and line[-1] in "\"'»”" and prose[0] not in "\"'«“":
            line = line[1:-1].strip()  # the model quoted its whole translation
        if opening and prose[:1].islower() and line[:1].isupper():
            line = line[0].lower() + line[1:]
        text = self._unmask(f"{opening}{line}", names)
        if not line or _markers(line) != _markers(prose):
            return Translation(text, "a marker lost or added")
        found = prose_language(text, self._outlets.values())
        if found != self._language:
            return Translation(text, f"written in {found}")
        return Translation(text)

    def _mask(self, sentence: str) -> tuple[str, dict[int, str]]:
        """``sentence`` with each "<outlet> [n]" written as "[n]", and the names taken out.

        Any stored outlet before any marker: the model may have named another outlet than
        the marker's, and its name is kept as written.
        """
        names: dict[int, str] = {}

        def take(m: re.Match[str]) -> str:
            names.setdefault(int(m.group("n")), m.group("name"))
            return f"[{m.group('n')}]"

        for outlet in sorted({o.strip() for o in self._outlets.values()}, key=len, reverse=True):
            pattern = rf"(?i)(?<!\w)(?P<name>{re.escape(outlet)})\s*\[(?P<n>\d+)\]"
            sentence = re.sub(pattern, take, sentence)
        return sentence, names

    @staticmethod
    def _unmask(text: str, names: dict[int, str]) -> str:
        for n, name in names.items():
            text = re.sub(rf"(?<!{re.escape(name)} )\[{n}\]", f"{name} [{n}]", text, count=1)
        return text
