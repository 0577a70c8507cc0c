"""Verification of each answer sentence against the evidence, before anyone reads it.

The answer is written from the evidence passages the calibrated decision chose
(:mod:`service.pipeline.calibration`). A sentence is shown only when it holds up
against them:

* its citation markers name passages that exist (a marker outside the evidence is kept
  and traced: the model read that passage); an evidence outlet it names without a marker
  is cited; a sentence with no citation cites what the sentence before it cited, or the
  best evidence passage;
* the outlet it names before a marker ("According to <outlet> [n]") is the outlet of
  passage ``n`` (the marker is what the service resolves, so the name follows it);
* every figure it gives is held by a passage it cites or asked in the question; a figure
  held by an evidence passage it does not cite makes it cite that passage too (citations
  follow the evidence); a figure no evidence passage holds was not read, it was written,
  and the sentence fails;

These are the same checks whatever the language: figures are digit groups, outlet names
are compared as accent-folded letters, the lead ("According to", "Secondo", ...) comes
from the answer template of the question's language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from service.pipeline.retrieve import Passage
from service.pipeline.sanitize import quote_for_answer
from service.text import fold, split_sentences, tokens

# A figure: digit groups joined by . , : (a space may follow a separator before three digits:
# "6, 200" is how a tokenizer sometimes writes "6,200").
_FIGURE = re.compile(r"\d+(?:[.,:](?:\d+|\s\d{3}(?!\d)))*")


def _figure_keys(raw: str) -> set[str]:
    digits = re.sub(r"\D", "", raw)
    keys = {digits.lstrip("0") or "0"}
    whole = re.match(r"(\d+)[.,:]00$", raw)  # "15:00" is also "15", "3.00" also "3"
    if whole:
        keys.add(whole.group(1).lstrip("0") or "0")
    return keys


def _figure_matches(text: str) -> Iterator[re.Match[str]]:
    """The figures of ``text`` worth comparing, in order: digit groups of two digits or more.

    Single digits are left out (news prose often spells them out).
    """
    return (m for m in _FIGURE.finditer(text) if len(re.sub(r"\D", "", m.group())) >= 2)


def figures(text: str) -> set[str]:
    """The keys of the figures of ``text`` (:func:`_figure_matches`), separators removed.

    "5.000", "5,000" and "5000" are one figure whatever the locale.
    """
    return set().union(*(_figure_keys(m.group()) for m in _figure_matches(text)))


def _figure_list(text: str) -> list[set[str]]:
    """Each figure of ``text`` (two digits or more) with its keys, in order."""
    return [_figure_keys(m.group()) for m in _figure_matches(text)]


# Characters after a figure before it is judged: "24" may still become "24 Ore" (an outlet).
_SETTLED = 12
_MARKER = re.compile(r"\s*\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")


@dataclass
class Checked:
    """One sentence after verification: its text (markers are passage numbers), and why it failed."""

    text: str
    passages: list[int] = field(default_factory=list)
    failure: str | None = None
    outside: list[int] = field(default_factory=list)  # cited passages the evidence did not hold

    @property
    def ok(self) -> bool:
        return self.failure is None


class SentenceVerifier:
    """Checks answer sentences one at a time (see the module doc); keeps the last citations."""

    def __init__(self, question: str, passages: Sequence[Passage], evidence: Sequence[int], lead: str):
        self._by_number = {p.number: p for p in passages}
        self._evidence = [n for n in evidence if n in self._by_number]
        self._question_figures = figures(question)
        self._outlets = [p.outlet for p in passages]
        self._attribution = re.compile(
            rf"(?P<lead>\b{re.escape(lead)}\s+)(?P<name>(?:[^\[\].,;:!?\n]|\.(?=\S)){{1,60}}?)\s*\[(?P<n>\d+)\]",
            re.IGNORECASE,
        )
        self._last: list[int] = []

    def _strip_outlets(self, text: str) -> str:
        for outlet in sorted(set(self._outlets), key=len, reverse=True):
            text = re.sub(rf"(?i)(?<!\w){re.escape(outlet)}(?!\w)", " ", text)
        return text

    def _held(self, number: int) -> set[str]:
        p = self._by_number[number]
        return figures(f"{p.title} {p.text}")

    def check(self, sentence: str) -> Checked:
        """Verify one sentence (model numbering of markers); see the module doc."""
        cited: list[int] = []

        def keep(m: re.Match[str]) -> str:
            kept = []
            for raw in re.split(r"\s*[,;]\s*", m.group(1)):
                n = int(raw)
                if n in self._by_number and n not in kept:
                    kept.append(n)
                    if n not in cited:
                        cited.append(n)
            return "".join(f" [{n}]" for n in kept)

        text = _MARKER.sub(keep, sentence).strip()
        # An evidence outlet the sentence names without its marker is cited too.
        named = [n for n in self._evidence if n not in cited and _names(text, self._by_number[n].outlet)]
        if not cited and not named:
            named = list(self._last) or self._evidence[:1]
        text = self._attribution.sub(self._fix_name, text)
        claim = _MARKER.sub(" ", self._strip_outlets(text))
        # A figure an uncited evidence passage holds makes that passage cited: citations follow
        # the evidence. A figure no evidence passage, cited one or question holds was not read.
        held = set().union(*(self._held(n) for n in cited + named)) | self._question_figures
        for keys in _figure_list(claim):
            if keys & held:
                continue
            holder = next((n for n in self._evidence if keys & self._held(n)), None)
            if holder is None:
                return Checked(text, cited + named, f"figures no cited passage holds: {sorted(keys)}")
            named.append(holder)
            held |= self._held(holder)
        text = _append_markers(text, named)
        cited += named
        outside = [n for n in cited if n not in self._evidence]
        self._last = cited
        return Checked(text, cited, None, outside)

    def commitment(self, text: str, final: bool = False) -> tuple[bool, str | None]:
        """Whether the short answer ``text`` is settled, and why it fails (None: it holds).

        The short answer is the value the model commits to before it writes the answer.
        It is judged on its first figure (outlet names and markers left out), once a few
        characters follow it or the text is whole (``final``): it must be held by an
        evidence passage or asked in the question. A value the evidence does not hold
        means the evidence does not state what the question asks. Text without a figure
        holds (nothing to compare).
        """
        claim = _MARKER.sub(" ", self._strip_outlets(text))
        for m in _figure_matches(claim):
            if not final and len(claim) - m.end() < _SETTLED:
                return False, None  # the figure, or an outlet name it starts, may go on
            keys = _figure_keys(m.group())
            held = set().union(*(self._held(n) for n in self._evidence)) | self._question_figures
            return True, None if keys & held else f"short answer: no evidence passage holds {sorted(keys)}"
        return final, None

    def _fix_name(self, m: re.Match[str]) -> str:
        passage = self._by_number.get(int(m.group("n")))
        if passage is None or fold(m.group("name")).strip() == fold(passage.outlet).strip():
            return m.group(0)
        return f"{m.group('lead')}{quote_for_answer(passage.outlet)} [{m.group('n')}]"


# A run of markers that ends a sentence or a clause (before ".", ";", ":", "!", "?", "…", a
# closing quote or bracket, or the end): markers inside a sentence stand after a name or a
# phrase, where an outlet's name would read as part of it.
_MARKER_RUN = re.compile(r"(?:\s*\[\d{1,3}\])+(?=[\"»”’)\]]*\s*(?:[.;:!?…]|$))")


def name_outlets(text: str, outlet_of: Mapping[int, str]) -> str:
    """``text`` as shown: the outlets it cites at the end of a sentence or clause named.

    ``outlet_of`` maps the passage numbers of the prompt to their outlets. A reader sees
    which outlets a sentence cites without opening its citations: the markers of a run that
    ends a sentence or clause, whose outlets the sentence does not name ("… said so [2]
    [3].") are written after those names, in parentheses ("… said so (Euronews [2], Il Post
    [3])."). Markers whose outlet the sentence names, and markers inside a sentence (after a
    name, where an outlet's name would read as part of it), stay as they are. Names and
    markers only: the same in every language.
    """
    prose = _MARKER.sub(" ", text)

    def named(n: int) -> bool:
        return n not in outlet_of or _names(prose, outlet_of[n])

    def repl(m: re.Match[str]) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", m.group())]
        lead = 0
        while lead < len(numbers) and named(numbers[lead]):
            lead += 1
        if lead == len(numbers):
            return m.group()
        parts: list[tuple[str | None, list[int]]] = []
        for n in numbers[lead:]:
            name = None if named(n) else outlet_of[n]
            if parts and name is not None and parts[-1][0] == name:
                parts[-1][1].append(n)
            else:
                parts.append((name, [n]))
        listed = ", ".join(
            (f"{quote_for_answer(name)} " if name else "") + " ".join(f"[{n}]" for n in ns)
            for name, ns in parts
        )
        kept = "".join(f" [{n}]" for n in numbers[:lead])
        return f"{kept} ({listed})"

    return _MARKER_RUN.sub(repl, text)


def _names(text: str, outlet: str) -> bool:
    return re.search(rf"(?i)(?<!\w){re.escape(outlet)}(?!\w)", text) is not None


def _append_markers(text: str, numbers: Sequence[int]) -> str:
    """``text`` with markers for ``numbers`` before its final punctuation."""
    if not numbers:
        return text
    markers = "".join(f" [{n}]" for n in numbers)
    m = re.search(r"[.!?…]+[»\"”’]?$", text)
    return text[: m.start()] + markers + text[m.start() :] if m else text + markers


def add_markers(text: str, numbers: Sequence[int]) -> str:
    """``text`` citing ``numbers`` too (other outlets stating the same fact), before its final punctuation."""
    return _append_markers(text, numbers) if numbers else text


def renumber(text: str, ids: dict[int, int]) -> tuple[str, list[int]]:
    """``text`` with passage-number markers turned into citation ids, assigned by first use.

    ``ids`` (passage number -> citation id) is extended in place for passages cited for the
    first time; returns the text and the citation ids it carries, in order.
    """
    cited: list[int] = []

    def repl(m: re.Match[str]) -> str:
        out = []
        for raw in re.split(r"\s*[,;]\s*", m.group(1)):
            n = int(raw)
            cid = ids.setdefault(n, len(ids) + 1)
            if cid not in cited:
                cited.append(cid)
                out.append(f" [{cid}]")
        return "".join(out)

    return tidy(_MARKER.sub(repl, text)), cited


def tidy(text: str) -> str:
    """Spacing the model and the markers leave: "word [1] ." -> "word [1].", no double spaces."""
    text = re.sub(r"\s+(?=[.,;:!?])", "", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _overlap(a: str, b: str) -> float:
    ta = set(tokens(a))
    return len(ta & set(tokens(b))) / len(ta) if ta else 0.0


def best_quote(passage: str, claim: str) -> str:
    """The sentence(s) of ``passage`` closest to ``claim`` to show as the quote (whole passage when short)."""
    sentences = split_sentences(passage)
    if len(sentences) <= 2 or len(passage) <= 320:
        return passage
    scored = sorted(range(len(sentences)), key=lambda i: _overlap(claim, sentences[i]), reverse=True)
    return " ".join(sentences[i] for i in sorted(scored[:2]))
