"""Read article files from disk: folders, globs, and text encodings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ingest.formats import ArticleInput, Format

TEXT_SUFFIXES = (".txt", ".md")


class SourceError(ValueError):
    """A path cannot be read as an article; the message names the file."""


def decode_bytes(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252/Latin-1, which decode any byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def iter_files(paths: list[Path], glob: str = "*") -> Iterator[Path]:
    """Files named directly, and matching files under folders (recursive, sorted)."""
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob(glob)):
                if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES:
                    yield f
        elif path.is_file():
            yield path
        else:
            raise SourceError(f"{path}: no such file or folder")


def read_article(path: Path, root: Path | None = None, fmt: Format = "auto") -> ArticleInput:
    """An :class:`ArticleInput` for ``path``; its id is the path relative to ``root`` (or its name)."""
    try:
        text = decode_bytes(path.read_bytes())
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from exc
    article_id = path.relative_to(root).as_posix() if root and root in path.parents else path.name
    return ArticleInput(text=text, format=fmt, id=article_id)
