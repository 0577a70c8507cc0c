"""Citation markers: parse them while streaming, drop the invalid, renumber the rest.

The model cites passages as ``[3]``, ``[1][4]`` or ``[1, 4]``. The service, not the
model, decides what a marker means: a number that names no passage is dropped, the
kept ones are renumbered 1, 2, 3… in order of first use, and each number resolves to
exactly one passage. Streaming text is held back only while it could still be a
marker (``"[1"``), so every emitted token is final.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.pipeline.sanitize import quote_for_answer
from service.text import split_sentences, tokens

_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
# Longest text that may still turn into a marker: "[12, 3, 45" and the like.
_MAX_PENDING = 24
_PARTIAL = re.compile(r"\[\s*(\d{1,3}(\s*[,;]\s*\d{0,3})*)?\s*$")


@dataclass
class MarkerRewriter:
    """Incrementally rewrites model markers to the service's dense numbering.

    ``valid`` is the number of passages shown to the model (markers 1..valid are real).
    ``order`` lists the original passage numbers in order of first use; the new number
    of passage ``p`` is ``order.index(p) + 1``.
    """

    valid: int
    order: list[int] = field(default_factory=list)
    _pending: str = ""

    def _renumber(self, match: re.Match[str]) -> str:
        out = []
        for raw in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(raw)
            if not 1 <= n <= self.valid:
                continue  # a marker that points to no passage is dropped
            if n not in self.order:
                self.order.append(n)
            new = self.order.index(n) + 1
            if f"[{new}]" not in out:
                out.append(f"[{new}]")
        return "".join(out)

    def feed(self, delta: str) -> str:
        """Add model text; return the text that is now final."""
        text = self._pending + delta
        self._pending = ""
        start = text.rfind("[")
        if start != -1 and _PARTIAL.fullmatch(text[start:]) and len(text) - start <= _MAX_PENDING:
            self._pending = text[start:]
            text = text[:start]
        return _MARKER.sub(self._renumber, text)

    def flush(self) -> str:
        """End of stream: whatever is held back is plain text (or a complete marker)."""
        text, self._pending = self._pending, ""
        return _MARKER.sub(self._renumber, text)


def rewrite_markers(text: str, valid: int) -> tuple[str, list[int]]:
    """Non-streaming form: (rewritten text, original passage numbers in new order)."""
    rw = MarkerRewriter(valid)
    out = rw.feed(text) + rw.flush()
    return out, rw.order


def markers_in(text: str) -> list[int]:
    """Marker numbers in ``text``, in order of appearance (repeats kept)."""
    nums: list[int] = []
    for m in _MARKER.finditer(text):
        nums.extend(int(x) for x in re.split(r"\s*[,;]\s*", m.group(1)))
    return nums


def tidy_spacing(text: str) -> str:
    """Fix the spacing the model leaves around markers: "word [1] ." -> "word [1]."."""
    text = re.sub(r"\s+(?=[.,;:!?])", "", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def overlap(a: str, b: str) -> float:
    """Share of the content words of ``a`` that also occur in ``b`` (accent/case-folded)."""
    ta = set(tokens(a))
    if not ta:
        return 0.0
    return len(ta & set(tokens(b))) / len(ta)


def best_quote(passage: str, claim: str) -> str:
    """The sentence(s) of ``passage`` that best support ``claim`` (whole passage when short)."""
    sentences = split_sentences(passage)
    if len(sentences) <= 2 or len(passage) <= 320:
        return passage
    scored = sorted(range(len(sentences)), key=lambda i: overlap(claim, sentences[i]), reverse=True)
    keep = sorted(scored[:2])
    return " ".join(sentences[i] for i in keep)


# "According to <name> [n]" / "Secondo <name> [n]": the name the model wrote for passage n.
_ATTRIBUTION = re.compile(
    r"(?P<lead>\b(?:[Aa]ccording to|[Ss]econdo|[Ss]elon|[Ss]egún|[Ll]aut)\s+)"
    # a dot only inside a name ("Fanpage.it", "RTL 102.5"), never a sentence's end
    r"(?P<name>(?:[^\[\].,;:!?\n]|\.(?=\S)){1,60}?)\s*(?P<marker>\[(?P<n>\d+)\])"
)


def strip_outlets(text: str, outlets: Iterable[str], keep_length: bool = False) -> str:
    """``text`` without the outlet names, matched without case ("il Sole 24 ORE" for "Il Sole 24 ORE").

    The digits of "RTL 102.5" or "Il Sole 24 ORE" are not figures of a claim, and an
    outlet name is not what a sentence claims. ``keep_length``: each name becomes as
    many spaces, so positions in ``text`` still hold.
    """
    for outlet in sorted({o for o in outlets if o}, key=len, reverse=True):
        pattern = rf"(?i)(?<!\w){re.escape(outlet)}(?!\w)"
        text = re.sub(pattern, (lambda m: " " * len(m.group())) if keep_length else " ", text)
    return text


def blank_markers(text: str) -> str:
    """``text`` with each citation marker ("[2]", "[1, 3]") turned into as many spaces."""
    return _MARKER.sub(lambda m: " " * len(m.group()), text)


def cite_only(sentence: str, passage: int, order: list[int]) -> str:
    """``sentence`` citing only ``passage``: its marker where the first one was, the others gone.

    ``order`` (marker k cites passage ``order[k-1]``) is extended in place when the
    passage is new; a sentence without a marker gets one before its final punctuation.
    """
    if passage not in order:
        order.append(passage)
    marker = f"[{order.index(passage) + 1}]"
    first = re.search(rf"\s*{_MARKER.pattern}", sentence)
    if first:
        head = sentence[: first.start()] + f" {marker}"
        return head + re.sub(rf"\s*{_MARKER.pattern}", "", sentence[first.end() :])
    m = re.search(r"[.!?…]+[»\"”’]?$", sentence)
    return sentence[: m.start()] + f" {marker}" + sentence[m.start() :] if m else f"{sentence} {marker}"


def fix_attributions(text: str, outlets: dict[int, str]) -> str:
    """Make the outlet named before a marker the outlet of the cited passage.

    Small models copy outlet names from the prompt's examples or from a neighbouring
    passage; the marker is what the service resolves, so the name follows the marker.
    ``outlets`` maps final marker numbers to outlet names.
    """

    def repl(m: re.Match[str]) -> str:
        outlet = outlets.get(int(m.group("n")))
        if not outlet or _fold(m.group("name")) == _fold(outlet):
            return m.group(0)
        return f"{m.group('lead')}{quote_for_answer(outlet)} {m.group('marker')}"

    return _ATTRIBUTION.sub(repl, text)


def _fold(text: str) -> str:
    """Compare outlet names without case, spacing or a leading article ("il Giornale")."""
    words = text.casefold().split()
    return " ".join(words[1:] if len(words) > 1 and words[0] in ("il", "la", "lo", "the") else words)


# Numbers as written in news prose: "4.4", "3,75", "20:10", "5.000", "2024", "45 mila", "5mila".
_NUMBER = re.compile(
    r"(?P<num>\d+(?:[.,:]\d+)*)\s*(?P<scale>mila|mille|thousand|milion[ie]|millions?|miliard[io]|billions?)?",
    re.IGNORECASE,
)


def _scale(word: str) -> int:
    w = word.casefold()
    if w.startswith("miliard") or w.startswith("billion"):
        return 10**9
    if w.startswith("milion") or w.startswith("million"):
        return 10**6
    return 10**3


def number_keys(text: str, evidence: bool = False) -> set[str]:
    """Comparable keys of the numbers in ``text`` that are worth checking.

    The key is the separator-free digit string, so "5.000" and "5,000" agree whatever
    the locale; a decimal ("4,4", "2.5": one or two digits after the last "." or ",")
    is keyed as a decimal, so "4,4" and "4.4" agree but "2,5" is not "25" ("2.5 %"
    is not backed by "25 punti base"); with two decimals it also keeps the digit
    string ("alle 9.30" is "9:30"). A number with a scale word also gets its expanded value,
    so "45 mila" matches "45,000" and "15 milioni" matches "15 million". One-digit
    numbers are skipped (passages often spell them out: "nove", "two"). As
    ``evidence`` (what a claim is checked against), a scaled number has only its
    expanded value: "13 mila evacuati" does not back "13 dead", while a claim's "15
    million" still matches a passage's "15 mln".
    """
    keys = set()
    for m in _NUMBER.finditer(text):
        raw = m.group("num")
        digits = re.sub(r"\D", "", raw)
        if len(digits) < 2 and not m.group("scale"):
            continue
        decimal = re.fullmatch(r"(\d+)[.,](\d{1,2})", raw)  # "2,5", "1,5 miliardi"
        if not (evidence and m.group("scale")):
            if decimal:
                keys.add(f"{int(decimal.group(1))}.{decimal.group(2)}".rstrip("0").rstrip("."))
            if not decimal or len(decimal.group(2)) == 2:
                keys.add(digits.lstrip("0") or "0")
        if m.group("scale"):
            value = float(f"{decimal.group(1)}.{decimal.group(2)}") if decimal else float(digits)
            keys.add(str(round(value * _scale(m.group("scale")))))
    return keys


def figure_keys(text: str) -> list[set[str]]:
    """The keys of each figure of ``text`` worth checking (see :func:`number_keys`), in order."""
    return [keys for m in _NUMBER.finditer(text) if (keys := number_keys(m.group(0)))]


def unsupported_numbers(sentence: str, evidence: str, allowed: Iterable[str] = ()) -> set[str]:
    """Numbers of ``sentence`` found neither in ``evidence`` nor in ``allowed`` keys.

    A number is supported when any of its keys is (a bare "45,000" against "45 mila").
    """
    known = number_keys(evidence, evidence=True) | set(allowed)
    missing = set()
    for m in _NUMBER.finditer(sentence):
        keys = number_keys(m.group(0))
        if keys and not keys & known:
            missing.add(m.group(0).strip())
    return missing


def renumber(text: str, order: list[int]) -> tuple[str, list[int]]:
    """Renumber the markers left in ``text`` 1, 2, 3… by first use.

    ``order`` maps the current marker k to passage ``order[k-1]``; the result's list
    does the same for the new numbers.
    """
    out, used = rewrite_markers(text, valid=len(order))
    return out, [order[k - 1] for k in used]
