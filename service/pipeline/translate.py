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

A sentence in the question's language can still carry words it copied from a passage in
another language ("the sindaco of the Comune"). A word is such a copy when the
sentence and a passage it cites both hold it, the question does not, it is not a name
(it starts with a lower-case letter) and py3langid, reading the word on its own, finds
the passage's language likelier than the question's. Such a sentence is rewritten the
same way, asked to translate the other language's words. No word list, no threshold:
the same in every language. The rewrite must keep every capitalised word of the sentence
(its names, as the request asks) and translate at least one of the copied words; one that
drops or changes a name, or leaves every copied word as it was, is not shown.

Outlet names are masked as their markers before translation (the model translates "Le
Scienze" and "Il Post"), and the opening the service prefilled in the question's
language ("Selon ANSA [1],") is kept as it is, so the model sees only the prose to
translate and not a French start that makes it think the sentence is French already.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.backends.llm import SIDE_SLOT, GenerationStats, Generator
from service.pipeline.language import detect_language, prose_language, word_languages
from service.pipeline.prompts import PromptLibrary
from service.pipeline.retrieve import Passage

_MARKER = re.compile(r"\[(\d+)\]")
# Words of at least four letters: shorter ones give py3langid too few letters to read.
_WORD = re.compile(r"[^\W\d_]{4,}")


def _capitalised(text: str) -> set[str]:
    """The words of ``text`` that start with a capital letter, its first word left out."""
    words = re.findall(r"[^\W\d_]+", _MARKER.sub(" ", text))
    return {w for w in words[1:] if w[0].isupper()}


def _markers(text: str) -> list[int]:
    return sorted({int(n) for n in _MARKER.findall(text)})


@dataclass
class Translation:
    """What the model wrote for a sentence (names restored), and why it is not used (None: it is)."""

    text: str
    failure: str | None = None


@dataclass(frozen=True)
class Source:
    """Why a sentence is rewritten: the language to translate from, and the words copied from
    a passage in that language when the sentence's prose is in the question's already."""

    language: str
    copied: tuple[str, ...] = ()


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
        question: str = "",
    ):
        self._generator = generator
        self._prompts = prompts
        self._outlets = {p.number: p.outlet for p in passages}
        self._texts = {p.number: p.text for p in passages}
        self._read: dict[int, tuple[str, set[str]]] = {}  # passage number -> its language, its words
        self._asked = {w.casefold() for w in _WORD.findall(question)}
        self._language = language
        self._max_tokens = max_tokens
        # The prefilled opening after masking: the lead, then markers joined by at most one word.
        self._opening = re.compile(
            rf"^\s*{re.escape(lead)}\s+\[\d+\](?:\s*,?\s*(?:\w+\s+)?\[\d+\])*\s*,\s*", re.IGNORECASE
        )

    def source(self, sentence: str, cited: Sequence[int] = ()) -> Source | None:
        """Why ``sentence`` (citing passages ``cited``) must be rewritten; None: it need not.

        Its prose is in another language than the question's, or it copies words from a
        cited passage in another language.
        """
        found = prose_language(sentence, self._outlets.values())
        if found != self._language:
            return Source(found)
        foreign = [self._passage(n) for n in cited if n in self._texts]
        foreign = [(language, held) for language, held in foreign if language != self._language]
        if not foreign:
            return None
        prose = _MARKER.sub(" ", self._mask(sentence)[0])
        words = [w for w in _WORD.findall(prose) if w[0].islower() and w.casefold() not in self._asked]
        for language, held in foreign:
            copied = [w for w in words if w in held and self._likelier(w, language)]
            if copied:
                return Source(language, tuple(dict.fromkeys(copied)))
        return None

    def _passage(self, number: int) -> tuple[str, set[str]]:
        """The language of passage ``number`` and its words, read once per answer."""
        if number not in self._read:
            text = self._texts[number]
            self._read[number] = (detect_language(text), set(_WORD.findall(text)))
        return self._read[number]

    def _likelier(self, word: str, language: str) -> bool:
        p = word_languages(word)
        return p.get(language, 0.0) > p.get(self._language, 0.0)

    def translate(
        self,
        sentence: str,
        source: str,
        copied: Sequence[str] = (),
        stats: GenerationStats | None = None,
    ) -> Translation:
        """``sentence`` (markers are passage numbers) in the question's language.

        It fails when the model's text is not in the question's language or lost a marker;
        a rewrite of ``copied`` words (the sentence is in the question's language but for
        them) also fails when it changes a capitalised word or translates none of them.
        """
        masked, names = self._mask(sentence)
        m = self._opening.match(masked)
        opening, prose = (masked[: m.end()], masked[m.end() :]) if m else ("", masked)
        if not re.search(r"[^\W\d_]", _MARKER.sub("", prose)):
            return Translation("", "nothing but the opening to translate")
        mixed = bool(copied)  # the sentence is in the question's language but for these words
        messages = self._prompts.translate_messages(prose, source, self._language, mixed)
        reply = "".join(
            self._generator.stream(messages, max_tokens=self._max_tokens, stats=stats, slot=SIDE_SLOT)
        )
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
        if mixed and (lost := _capitalised(sentence) - _capitalised(text)):
            # Only the copied words were to change; a rewrite that drops or rewrites a name
            # ("Mario Rossi" written "the mayor") is not shown.
            return Translation(text, "a name lost: " + ", ".join(sorted(lost)))
        if mixed and set(copied) <= set(_WORD.findall(text)):
            # It translated none of them: whatever else it changed was not asked for.
            return Translation(text, "no copied word translated")
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
