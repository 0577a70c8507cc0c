"""The model's leading "Sources: [2] [4]" line: parsed, kept out of the answer text.

The answer prompt asks the model to name, before answering, every passage that states
the answer. Choosing the evidence first makes a small model answer from the passage
that states the fact rather than from the first passage of the story, and the list is
a second opinion the service checks: a listed passage becomes a citation only when it
supports a sentence of the answer (:meth:`SupportChecker.corroborate`). The line is
never shown; the llama.cpp backend prefills ``SOURCES_PREFILL`` so it is always there.
"""

from __future__ import annotations

import re

SOURCES_LEAD = "Sources:"
SOURCES_PREFILL = "Sources:"
# A head longer than this is not a sources line (the model went on without a line break).
_MAX_HEAD = 160
_WORD = re.compile(r"[^\W\d_]")
_LIST = re.compile(r"^Sources:\s*((?:\[?\s*\d+\s*\]?[\s,;]*)*)")


class SourcesHead:
    """Feed the model's text; get back the answer text without its sources lines.

    ``numbers`` holds the passage numbers the lines name (in order, without repeats)
    once a line has ended; a reply that does not start with the lead passes through.
    The small model sometimes answers in blocks, each after a sources line of its own
    ("…2.5% in 2024.\n\nSources: [2]\nAccording to GEA…"): a later line that starts
    with the lead is taken out too, and its numbers added.
    """

    def __init__(self, prefilled: str = ""):
        self._buffer = prefilled
        self.done = False
        self.numbers: list[int] = []
        self._pending = ""  # text after the head not yet passed on (a line start)
        self._line_start = False

    def feed(self, delta: str) -> str:
        """Answer text available after ``delta`` ("" while the head is still open)."""
        if self.done:
            return self._body(delta)
        self._buffer += delta
        head = self._buffer.lstrip()
        if len(head) < len(SOURCES_LEAD):
            if SOURCES_LEAD.startswith(head):
                return ""
            return self._finish(self._buffer)
        if not head.startswith(SOURCES_LEAD):
            return self._finish(self._buffer)
        taken = self._take(head)
        if taken is not None:
            return self._finish(*taken)
        if len(head) > _MAX_HEAD:
            return self._finish(self._buffer)
        return ""

    def _take(self, line: str) -> tuple[str, bool] | None:
        """Parse the sources line ``line`` starts with; the text after it, and whether that
        text starts a line. None while the line may still go on."""
        head, newline, rest = line.partition("\n")
        m = _LIST.match(head)
        after = head[m.end() :] if m else ""
        # "Sources: [1] According to…" with no line break: the list ends at the first word
        # (not at a lone "[" — the next number may still be on its way — nor at "none").
        if m and _WORD.search(after) and not _is_none(after):
            self._parse(head[: m.end()])
            return after + newline + rest, False
        if newline:
            self._parse(head)
            return rest, True
        return None

    def _take_last(self, line: str) -> str:
        """The reply ended inside the sources line ``line``: parse it; the words after its list."""
        self._parse(line)
        m = _LIST.match(line)
        after = line[m.end() :] if m else ""
        return "" if _is_none(after) else after

    def _body(self, delta: str) -> str:
        """Pass text on line by line, holding a line start back while it may be a sources line."""
        self._pending += delta
        out: list[str] = []
        while self._pending:
            if self._line_start:
                line = self._pending.lstrip(" ")
                if len(line) < len(SOURCES_LEAD) and SOURCES_LEAD.startswith(line):
                    break  # wait: "Sou" may become "Sources:"
                if line.startswith(SOURCES_LEAD):
                    taken = self._take(line)
                    if taken is not None:
                        self._pending, self._line_start = taken
                        continue
                    if len(line) <= _MAX_HEAD:
                        break  # the list may go on
                self._line_start = False
            cut = self._pending.find("\n")
            if cut < 0:
                out.append(self._pending)
                self._pending = ""
                break
            out.append(self._pending[: cut + 1])
            self._pending, self._line_start = self._pending[cut + 1 :], True
        return "".join(out)

    def flush(self) -> str:
        """At the end of the reply: what is left (a bare sources line leaves nothing)."""
        if self.done:
            rest, self._pending = self._pending, ""
            line = rest.lstrip(" ")
            if self._line_start and line.startswith(SOURCES_LEAD):
                return self._take_last(line)
            return rest
        head = self._buffer.lstrip()
        if head.startswith(SOURCES_LEAD):
            return self._finish(self._take_last(head))
        return self._finish(self._buffer)

    def _parse(self, line: str) -> None:
        for n in (int(x) for x in re.findall(r"\d+", line[len(SOURCES_LEAD) :])):
            if n not in self.numbers:
                self.numbers.append(n)

    def _finish(self, rest: str, line_start: bool = False) -> str:
        self.done = True
        self._line_start = line_start
        return self._body(rest.lstrip("\n"))


def _is_none(text: str) -> bool:
    """``text`` is (the start of) the word "none": the model lists no passage."""
    word = text.strip().casefold()
    return bool(word) and (word.startswith("none") or "none".startswith(word))


def sources_list_end(line: str) -> int:
    """Where the passage list of a sources line ends in ``line`` (0: ``line`` is not a sources line).

    "Sources: [1] [3] According to…" ends its list before "According"; the model may
    go on answering on the same line.
    """
    m = _LIST.match(line.lstrip())
    return len(line) - len(line.lstrip()) + m.end() if m else 0
