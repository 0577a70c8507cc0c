"""Find article files and read them, whatever their format, into ``(label, input or error)`` items.

File formats are detected from the suffix (``.txt``/``.md``: text with optional YAML front
matter; ``.jsonl``/``.ndjson``: JSON Lines feed; ``.html``/``.htm``: saved web page) or
forced with ``fmt``. ``-`` reads a JSON Lines feed from standard input.

Ids of files without an ``id`` or ``url`` of their own are their path relative to the
folder named on the command line (the file name for a file named directly), so editing a
file and loading the same folder again replaces the article instead of adding a copy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ingest.formats import ArticleInput
from ingest.readers import ReadError, decode_bytes, read_html, read_jsonl, read_text_document

FileFormat = Literal["auto", "aggregator", "plain", "markdown", "jsonl", "html"]
FILE_FORMATS: tuple[str, ...] = ("auto", "aggregator", "plain", "markdown", "jsonl", "html")
SUFFIXES: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".html": "html",
    ".htm": "html",
}
STDIN = "-"

Item = tuple[str, ArticleInput | ReadError]


class SourceError(ValueError):
    """A path given by the user does not exist; the message names it."""


def iter_files(paths: list[Path], glob: str = "*") -> Iterator[tuple[Path, Path | None]]:
    """``(file, root)`` for files named directly (root ``None``) and known files under folders."""
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob(glob)):
                if f.is_file() and f.suffix.lower() in SUFFIXES and not f.name.startswith("."):
                    yield f, path
        elif path.is_file():
            yield path, None
        else:
            raise SourceError(f"{path}: no such file or folder")


def _kind(path: Path, fmt: str) -> str:
    if fmt in ("jsonl", "html", "markdown"):
        return fmt
    return SUFFIXES.get(path.suffix.lower(), "text")


def read_bytes(data: bytes, name: str, fmt: str = "auto", default_id: str | None = None) -> Iterator[Item]:
    """Items of one document given as bytes (a file, an upload); labels are ``name[:line]``."""
    kind = _kind(Path(name), fmt)
    text_fmt = fmt if fmt in ("aggregator", "plain") else "auto"
    try:
        if kind == "html":
            yield name, read_html(data, default_id=default_id)
        elif kind == "jsonl":
            for line, item in read_jsonl(decode_bytes(data), text_fmt):
                yield f"{name}:{line}", item
        else:
            yield (
                name,
                read_text_document(
                    decode_bytes(data), markdown=kind == "markdown", fmt=text_fmt, default_id=default_id
                ),
            )
    except ValueError as exc:
        yield name, ReadError(str(exc))


def read_file(path: Path, root: Path | None = None, fmt: str = "auto") -> Iterator[Item]:
    """Items of one file; its default id is its path relative to ``root`` (or its name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield str(path), ReadError(f"cannot read ({exc.strerror})")
        return
    default_id = path.relative_to(root).as_posix() if root is not None else path.name
    yield from read_bytes(data, str(path), fmt, default_id)


def read_stdin(fmt: str = "auto") -> Iterator[Item]:
    """A JSON Lines feed on standard input."""
    data = sys.stdin.buffer.read()
    for line, item in read_jsonl(decode_bytes(data), fmt if fmt in ("aggregator", "plain") else "auto"):
        yield f"<stdin>:{line}", item


def iter_sources(paths: list[str], glob: str = "*", fmt: str = "auto") -> Iterator[Item]:
    """Items of every path: files, folders (recursive, ``glob``) and ``-`` for stdin.

    Raises :class:`SourceError` for a path that does not exist, before reading anything.
    """
    missing = [p for p in paths if p != STDIN and not Path(p).exists()]
    if missing:
        raise SourceError(f"{missing[0]}: no such file or folder")
    for raw in paths:
        if raw == STDIN:
            yield from read_stdin(fmt)
            continue
        for f, root in iter_files([Path(raw)], glob):
            yield from read_file(f, root, fmt)


def read_article(path: Path, root: Path | None = None, fmt: str = "auto") -> ArticleInput:
    """The one article of a text or HTML file (raises ``ValueError`` when it cannot be read)."""
    items = list(read_file(path, root, fmt))
    if len(items) != 1:
        raise ValueError(f"{path}: holds {len(items)} articles, expected one")
    _, item = items[0]
    if isinstance(item, ReadError):
        raise ValueError(f"{path}: {item.message}")
    return item
