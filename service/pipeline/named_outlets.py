"""Outlets a question names ("according to ANSA…", "compare Open and TPI").

A reader who names outlets asks what those outlets reported: the answer service then
retrieves from their articles only, as if the request had filtered on them. Outlet
names are matched as whole words, accent- and case-insensitively, but the question
must write them as a name: as stored ("fanpage.it", "ANSA"), or with a capital letter
on a word other than the question's first, which is capitalised whatever it is ("Il
giorno dopo…" does not name IL GIORNO; "Open data…" does not name Open).
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable

MIN_NAME_CHARS = 3


def _fold(text: str) -> str:
    """Lower case without accents, one character per character of ``text`` (offsets kept)."""
    return "".join(unicodedata.normalize("NFKD", ch)[0].casefold()[0] for ch in text)


class OutletMatcher:
    """Finds stored outlet names in questions; the patterns are compiled once per name list."""

    def __init__(self, outlets: Iterable[str]):
        names = sorted({o for o in outlets if len(o.strip()) >= MIN_NAME_CHARS}, key=len, reverse=True)
        self._patterns = [
            (name, re.compile(rf"(?<!\w){re.escape(_fold(name.strip()))}(?!\w)")) for name in names
        ]

    def find(self, question: str) -> list[str]:
        """The names the question uses, in order of appearance (longest name wins an overlap)."""
        folded = _fold(question)
        first_word = re.match(r"\W*", question)
        start = first_word.end() if first_word else 0
        spans: list[tuple[int, int, str]] = []
        for name, pattern in self._patterns:
            for m in pattern.finditer(folded):
                if not _written_as_name(question, m.start(), m.end(), name.strip(), start):
                    continue
                if any(a < m.end() and m.start() < b for a, b, _ in spans):
                    continue  # inside a longer name already found ("Corriere" in "Corriere della Sera")
                spans.append((m.start(), m.end(), name))
        return list(dict.fromkeys(name for _, _, name in sorted(spans)))


def named_outlets(question: str, outlets: Iterable[str]) -> list[str]:
    """The ``outlets`` the question names, in order of appearance (longest name wins an overlap)."""
    return OutletMatcher(outlets).find(question)


def _written_as_name(question: str, begin: int, end: int, name: str, start: int) -> bool:
    """The question spells ``name`` as a name: exactly as stored, or with a capital past its first word.

    The question's first word is capitalised whatever it is, so it proves nothing, and
    a one-word title-case name there ("Open", "Leggo") is not taken as a name.
    """
    written = question[begin:end]
    if written == name:
        return not (begin == start and re.fullmatch(r"[A-ZÀ-Ý][a-zà-ÿ]+", name))
    return any(m.start() + begin != start and m.group()[0].isupper() for m in re.finditer(r"\w+", written))


class OutletNames:
    """A matcher for the store's outlet names, rebuilt at most every ``ttl_s`` seconds."""

    def __init__(self, read: Callable[[], list[str]], ttl_s: float = 30.0):
        self._read = read
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._matcher = OutletMatcher([])
        self._at = float("-inf")

    def get(self) -> OutletMatcher:
        """The cached matcher (rebuilt from the store when older than the TTL)."""
        with self._lock:
            if time.monotonic() - self._at > self._ttl_s:
                self._matcher = OutletMatcher(self._read())
                self._at = time.monotonic()
            return self._matcher
