"""Readers that turn one source document into :class:`ArticleInput` objects.

* text files (``.txt``/``.md``) with optional YAML front matter (``title``, ``outlet``,
  ``url``, ``published``, ``topic``, ``id``) and a body in the aggregator or plain format;
* JSON Lines feeds: one article object per line (the same fields plus ``text``);
* saved HTML pages: main text and metadata extracted by trafilatura.

Readers never raise for one bad article of a feed: they yield a :class:`ReadError`
naming the line, and go on with the next one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ingest.formats import ArticleInput

# Fields a front matter block or a feed line may set, besides ``text`` and ``format``.
META_FIELDS = ("id", "title", "outlet", "url", "published", "topic")
_TEXT_FORMATS = ("auto", "aggregator", "plain")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ReadError:
    """One article that could not be read; ``line`` is 1-based when known."""

    message: str
    line: int | None = None


def decode_bytes(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252, else Latin-1 (which decodes any byte)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _as_text(value: Any, name: str) -> str | None:
    """A metadata value as a string; YAML turns dates into ``date`` objects and ids into ints."""
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value).strip() or None
    raise ValueError(f"field '{name}' must be a string, not {type(value).__name__}")


def split_front_matter(text: str) -> tuple[dict[str, str], str, int]:
    """``(fields, body, lines before the body)``; no front matter gives ``({}, text, 0)``.

    Raises ``ValueError`` naming the line for invalid YAML or unknown fields.
    """
    import yaml

    text = text.lstrip("\ufeff")
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text, 0
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise ValueError(f"line {line}: invalid YAML front matter ({getattr(exc, 'problem', exc)})") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("line 2: the front matter must be a mapping of fields")
    unknown = sorted(str(k) for k in data if k not in META_FIELDS)
    if unknown:
        raise ValueError(
            f"line 2: unknown front matter field(s) {', '.join(unknown)}; expected {', '.join(META_FIELDS)}"
        )
    fields = {k: v for k, v in ((k, _as_text(data[k], k)) for k in data) if v is not None}
    consumed = m.group(0).count("\n")
    return fields, text[m.end() :], consumed


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_MD_QUOTE = re.compile(r"^>\s?")


def markdown_to_text(md: str) -> str:
    """Markdown as the plain prose the parsers expect: headings, links and emphasis unwrapped.

    Line structure is kept, so paragraph breaks and line numbers stay where they were.
    """
    out = []
    for line in md.split("\n"):
        line = _MD_QUOTE.sub("", line)
        heading = _MD_HEADING.match(line)
        if heading:
            line = heading.group(1)
        line = _MD_LINK.sub(r"\1", line)
        line = _MD_EMPHASIS.sub(r"\2", line)
        out.append(line)
    return "\n".join(out)


def read_text_document(text: str, *, markdown: bool, fmt: str, default_id: str | None) -> ArticleInput:
    """One article from a text file (front matter optional). Raises ``ValueError``."""
    fields, body, consumed = split_front_matter(text)
    if markdown:
        body = markdown_to_text(body)
    # Keep line numbers of the file in parse errors: blank lines stand in for the front matter.
    body = "\n" * consumed + body
    article_id = fields.pop("id", None) or (None if fields.get("url") else default_id)
    return ArticleInput(text=body, format=fmt, id=article_id, **fields)  # type: ignore[arg-type]


def read_jsonl(text: str, fmt: str = "auto") -> Iterator[tuple[int, ArticleInput | ReadError]]:
    """``(line number, article or error)`` for each non-blank line of a JSON Lines feed.

    Unknown keys are ignored (feeds carry authors, tags …); the known ones must be strings.
    """
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, ReadError(f"invalid JSON ({exc.msg} at column {exc.colno})", n)
            continue
        if not isinstance(obj, dict):
            yield n, ReadError("each line must be a JSON object", n)
            continue
        text_value = obj.get("text")
        if not isinstance(text_value, str) or not text_value.strip():
            yield n, ReadError("missing or empty 'text' field", n)
            continue
        line_fmt = obj.get("format", fmt)
        if line_fmt not in _TEXT_FORMATS:
            yield n, ReadError(f"field 'format' must be one of {', '.join(_TEXT_FORMATS)}", n)
            continue
        try:
            fields = {k: _as_text(obj.get(k), k) for k in META_FIELDS}
        except ValueError as exc:
            yield n, ReadError(str(exc), n)
            continue
        yield n, ArticleInput(text=text_value, format=line_fmt, **fields)


def read_html(data: bytes, *, default_id: str | None) -> ArticleInput:
    """Main text and metadata of a saved web page (trafilatura). Raises ``ValueError``.

    The site name becomes the outlet, the canonical url the url (and so the id), the
    page's publication date the published date.
    """
    try:
        import trafilatura
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ValueError("HTML ingestion needs trafilatura: pip install trafilatura") from exc
    doc: Any = trafilatura.bare_extraction(
        data, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True
    )
    if doc is None or not (getattr(doc, "text", None) or "").strip():
        raise ValueError("no main text found in the HTML page")
    title = (doc.title or "").strip() or None
    lines = [ln.strip() for ln in doc.text.split("\n") if ln.strip()]
    if title and lines and lines[0] == title:  # trafilatura keeps the <h1> as the first line
        lines = lines[1:]
    outlet = (doc.sitename or doc.hostname or "").strip() or None
    url = (doc.url or "").strip() or None
    return ArticleInput(
        text="\n\n".join(lines),
        format="auto",
        id=None if url else default_id,
        title=title,
        outlet=outlet,
        url=url,
        published=(doc.date or None),
    )
