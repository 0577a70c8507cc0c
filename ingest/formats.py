"""Turn raw article text into an :class:`Article` whose paragraphs each carry one outlet.

Two formats:

* ``aggregator``: Italian news-aggregator pages. A title line; an optional topic block
  (``Approfondimenti:`` / ``Più informazioni:`` + topic); an optional dateline prefix on
  the first paragraph (``Ultim'ora news 25 ottobre ore 20``); separator lines (``Se ne è
  parlato anche su altre testate`` and the like) and bare headings; paragraphs that end
  in ``(Outlet)``. Everything is recognised by its shape, not by closed lists.
* ``plain``: an ordinary article with no outlet markers; the outlet comes as a field.

``auto`` picks ``aggregator`` when the body paragraphs end in outlet markers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from ingest.articles import Article, ArticleFormatError, Paragraph

Format = Literal["auto", "aggregator", "plain"]
FORMATS: tuple[str, ...] = ("auto", "aggregator", "plain")

# "(Outlet)" at the very end of a paragraph. Outlet names are short and hold no
# nested brackets; digits are allowed ("RTL 102.5", "Palermo 24h").
_OUTLET_AT_END = re.compile(r"\s*\(([^()\n]{1,60})\)\s*$")
# A topic label: one or two words and a colon, alone on its line ("Approfondimenti:").
_TOPIC_LABEL = re.compile(r"^([^\W\d_][\w'’ ]{2,30}):\s*(.*)$")
_MONTHS = "gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|dicembre"
# "Ultim'ora news 25 ottobre ore 20", "25 ottobre 2024 ore 20:15", "Aggiornato 3 maggio ore 9.30"
_DATELINE = re.compile(
    rf"^(?P<label>(?:[^\W\d_][\w'’]*\s+){{0,3}}?)(?P<day>\d{{1,2}})\s+(?P<month>{_MONTHS})"
    rf"(?:\s+(?P<year>\d{{4}}))?\s+ore\s+(?P<hour>\d{{1,2}})(?:[:.](?P<minute>\d{{2}}))?\s+",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?…»\"”]$")
_LONG_BLOCK_WORDS = 16


@dataclass(frozen=True)
class ArticleInput:
    """What callers know about an article besides its raw text."""

    text: str
    format: Format = "auto"
    id: str | None = None
    title: str | None = None
    outlet: str | None = None
    url: str | None = None
    published: str | None = None
    topic: str | None = None

    def as_request(self) -> dict[str, str]:
        """The item of a ``POST /v1/articles`` body (unset fields left out)."""
        return {k: v for k, v in vars(self).items() if v is not None}


def clean_text(raw: str) -> str:
    """Normalise Unicode (NFC), line endings and invisible characters."""
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("\ufeff", "").replace("\u00a0", " ")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def _collapse(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def split_outlet(line: str) -> tuple[str, str | None]:
    """Split ``"text (Outlet)"`` into ``("text", "Outlet")``; ``(line, None)`` when no marker."""
    m = _OUTLET_AT_END.search(line)
    if not m:
        return line, None
    outlet = _collapse(m.group(1))
    body = line[: m.start()].rstrip()
    words = outlet.split()
    # A year, a number or a long aside in brackets is not an outlet name.
    if not body or len(words) > 6 or not any(ch.isalpha() for ch in outlet):
        return line, None
    if re.fullmatch(r"(?i)(ndr|n\.d\.r\.|foto|video|\d+.*)", outlet):
        return line, None
    return body, outlet


def _blocks(text: str) -> list[tuple[int, str]]:
    """Non-empty lines with their 1-based line numbers, whitespace collapsed."""
    return [(i, _collapse(line)) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _looks_aggregated(lines: list[tuple[int, str]]) -> bool:
    long_lines = [s for _, s in lines if len(s.split()) >= _LONG_BLOCK_WORDS]
    marked = [s for s in long_lines if split_outlet(s)[1]]
    return bool(marked) and len(marked) * 2 >= len(long_lines)


def detect_format(text: str) -> Literal["aggregator", "plain"]:
    """``aggregator`` when at least half of the long paragraphs end in an outlet marker."""
    return "aggregator" if _looks_aggregated(_blocks(clean_text(text))) else "plain"


def _parse_dateline(first: str) -> tuple[str, str | None, str | None]:
    """Strip a dateline prefix; returns (rest, dateline text, ISO date when the year is known)."""
    m = _DATELINE.match(first)
    if not m:
        return first, None, None
    dateline = first[: m.end()].strip()
    iso = None
    if m.group("year"):
        month = _MONTHS.split("|").index(m.group("month").lower()) + 1
        iso = f"{int(m.group('year')):04d}-{month:02d}-{int(m.group('day')):02d}"
    return first[m.end() :], dateline, iso


def _is_heading(line: str) -> bool:
    """Short line without sentence-final punctuation: a heading or a separator."""
    return len(line.split()) < _LONG_BLOCK_WORDS and not _SENTENCE_END.search(line)


def parse_aggregator(inp: ArticleInput, article_id: str) -> Article:
    """Parse the aggregator format (see module docstring)."""
    lines = _blocks(clean_text(inp.text))
    if not lines:
        raise ArticleFormatError("the article is empty")
    title = inp.title
    topic = inp.topic
    i = 0
    first_line_no, first = lines[0]
    if split_outlet(first)[1] is None and not inp.title:
        title = first
        i = 1
    elif split_outlet(first)[1] is None and _collapse(first) == _collapse(inp.title or ""):
        i = 1
    # Topic block: "Label:" then the topic on the next line, or "Label: topic" on one line.
    if i < len(lines):
        m = _TOPIC_LABEL.match(lines[i][1])
        if m and split_outlet(lines[i][1])[1] is None:
            inline = m.group(2).strip()
            if inline and len(inline.split()) <= 6:
                topic = topic or inline
                i += 1
            elif not inline and i + 1 < len(lines) and _is_heading(lines[i + 1][1]):
                topic = topic or lines[i + 1][1]
                i += 2
    paragraphs: list[Paragraph] = []
    warnings: list[str] = []
    section: str | None = None
    dateline = None
    published = inp.published
    first_body = True
    for line_no, line in lines[i:]:
        body, outlet = split_outlet(line)
        if first_body and outlet:
            body, dateline, iso = _parse_dateline(body)
            published = published or iso
        if outlet is None:
            if _is_heading(line):
                # Separators ("Se ne è parlato anche su altre testate") and headings are
                # never chunks; a heading names the section of the paragraphs after it.
                section = None if _is_separator(line) else line
                continue
            if inp.outlet:
                outlet = inp.outlet
            else:
                warnings.append(f"line {line_no}: paragraph without an (Outlet) marker skipped")
                continue
        first_body = False
        paragraphs.append(Paragraph(text=body.strip(), outlet=outlet, section=section))
    if not paragraphs:
        raise ArticleFormatError(
            "no paragraph ends with an (Outlet) marker; send format 'plain' with an outlet field",
            line=first_line_no,
        )
    if not title:
        raise ArticleFormatError("the article has no title line and no title field", line=first_line_no)
    return Article(
        id=article_id,
        title=title,
        paragraphs=paragraphs,
        topic=topic,
        published=published,
        url=inp.url,
        dateline=dateline,
        warnings=warnings,
    )


_SEPARATOR_HINT = re.compile(
    r"(?i)\b(altr[eiao]|anche|also|other)\b.*\b(testat\w*|fonti|giornali|media|siti|quotidian\w*|"
    r"outlets?|sources|press)\b"
)


def _is_separator(line: str) -> bool:
    return bool(_SEPARATOR_HINT.search(line))


def parse_plain(inp: ArticleInput, article_id: str) -> Article:
    """Parse an ordinary article: paragraphs are blocks separated by blank lines."""
    if not inp.outlet:
        raise ArticleFormatError("a plain article needs an 'outlet' field")
    text = clean_text(inp.text)
    blocks: list[tuple[int, str]] = []
    start, buf = 0, list[str]()
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            if not buf:
                start = n
            buf.append(line.strip())
        elif buf:
            blocks.append((start, _collapse(" ".join(buf))))
            buf = []
    if buf:
        blocks.append((start, _collapse(" ".join(buf))))
    if not blocks:
        raise ArticleFormatError("the article is empty")
    title = inp.title
    if not title and _is_heading(blocks[0][1]):
        title = blocks[0][1]
        blocks = blocks[1:]
    elif title and blocks[0][1].casefold() == _collapse(title).casefold():
        blocks = blocks[1:]  # the body repeats the title as its first line
    if not title:
        raise ArticleFormatError("the article has no title line and no title field", line=blocks[0][0])
    paragraphs = [Paragraph(text=b, outlet=inp.outlet) for _, b in blocks]
    if not paragraphs:
        raise ArticleFormatError("the article has a title but no body text")
    return Article(
        id=article_id,
        title=title,
        paragraphs=paragraphs,
        topic=inp.topic,
        published=inp.published,
        url=inp.url,
    )


def parse_article(inp: ArticleInput, article_id: str) -> Article:
    """Parse ``inp`` in its declared format (``auto`` detects it)."""
    if inp.format not in FORMATS:
        raise ArticleFormatError(f"unknown format {inp.format!r}; expected one of {', '.join(FORMATS)}")
    fmt = detect_format(inp.text) if inp.format == "auto" else inp.format
    if fmt == "aggregator":
        return parse_aggregator(inp, article_id)
    return parse_plain(inp, article_id)
