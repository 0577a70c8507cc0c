"""docs/configuration.md, generated from the settings tree (the one source of truth).

Every setting's environment name, type, default and description come from
``service/settings.py``; nothing is written by hand. ``python -m service.settings_doc``
rewrites the file, ``--check`` exits 1 when the committed file differs (``make lint``
runs it), so a changed ``Field(description=...)`` cannot reach main without its doc.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from service.settings import REPO_ROOT, Settings

DOC = REPO_ROOT / "docs" / "configuration.md"
COMMAND = "make settings-doc"

HEADER = f"""# Configuration

<!-- Generated from service/settings.py by `{COMMAND}` (python -m service.settings_doc).
     Do not edit: change the Field descriptions instead. `make lint` fails when this file
     differs from what the settings tree generates. -->

Fonti reads one typed settings tree (`service/settings.py`, pydantic-settings) from
`FONTI_*` environment variables; names are case-insensitive. Each group below is one
class of that file with its own prefix, so `FONTI_LLM_MODEL_PATH` is
`Settings().llm.model_path`. Defaults work on a laptop; there is no settings file.
Backends are chosen by a mode setting (`FONTI_LLM_BACKEND`, `FONTI_EMBED_BACKEND`,
`FONTI_QDRANT_URL`) in one factory each (`service/backends/*/__init__.py`).
"""


@dataclass(frozen=True)
class Row:
    """One setting as the doc shows it."""

    env: str
    aliases: tuple[str, ...]
    type: str
    default: str
    description: str


def _groups() -> list[tuple[str, type[BaseSettings]]]:
    """``(field name, class)`` of the root (``""``) and of each nested settings group, in tree order."""
    groups: list[tuple[str, type[BaseSettings]]] = [("", Settings)]
    for name, field in Settings.model_fields.items():
        if _group_class(field) is not None:
            groups.append((name, _group_class(field)))  # type: ignore[arg-type]
    return groups


def _group_class(field: FieldInfo) -> type[BaseSettings] | None:
    ann = field.annotation
    return ann if isinstance(ann, type) and issubclass(ann, BaseSettings) else None


def _env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> tuple[str, ...]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(c) for c in alias.choices)
    if isinstance(alias, str):
        return (alias,)
    return (str(cls.model_config.get("env_prefix", "")) + name.upper(),)


def env_names() -> list[str]:
    """Every primary ``FONTI_*`` name of the tree (aliases not included)."""
    return [row.env for _, _, rows in sections() for row in rows]


def _type_name(ann: Any) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return " \\| ".join(_type_name(a) for a in rest) + (" (optional)" if len(rest) < len(args) else "")
    if origin is dict:
        return "JSON object"
    if origin is list:
        return "list (comma-separated or JSON)"
    if ann is SecretStr:
        return "secret"
    if ann is Path or (isinstance(ann, type) and issubclass(ann, Path)):
        return "path"
    if ann is bool:
        return "bool"
    return getattr(ann, "__name__", str(ann))


def _bounds(field: FieldInfo) -> str:
    marks = []
    for m in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if isinstance(m, getattr(annotated_types, attr.capitalize())):
                marks.append(f"{sign} {getattr(m, attr)}")
    return ", ".join(marks)


@contextmanager
def _neutral_env() -> Iterator[None]:
    """Defaults computed from the environment (the model cache under $XDG_CACHE_HOME) as on a bare
    machine, so the doc is the same wherever it is generated."""
    saved = os.environ.pop("XDG_CACHE_HOME", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["XDG_CACHE_HOME"] = saved


def _show_path(p: Path) -> str:
    if p.is_absolute() and p.is_relative_to(REPO_ROOT):
        return f"`{p.relative_to(REPO_ROOT).as_posix()}/` of the checkout"
    if p.is_absolute() and p.is_relative_to(Path.home()):
        return f"`~/{p.relative_to(Path.home()).as_posix()}`"
    return f"`{p.as_posix()}`"


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        with _neutral_env():
            value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None or value == "" or value == [] or value == ():
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return _show_path(value)
    if isinstance(value, dict):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def sections() -> list[tuple[str, str, list[Row]]]:
    """``(title, intro, rows)`` per settings group, in the order of the tree."""
    out = []
    for group, cls in _groups():
        rows = []
        for name, field in cls.model_fields.items():
            if _group_class(field) is not None:
                continue
            names = _env_names(cls, name, field)
            kind = _type_name(field.annotation)
            bounds = _bounds(field)
            rows.append(
                Row(
                    env=names[0],
                    aliases=names[1:],
                    type=f"{kind}, {bounds}" if bounds else kind,
                    default=_default(field),
                    description=_cell(field.description or ""),
                )
            )
        doc = (cls.__doc__ or "").strip().splitlines()[0].rstrip(".") if cls.__doc__ else cls.__name__
        if group:
            title, intro = f"{doc} (`{group}`)", f"`{cls.__name__}`, read as `Settings().{group}`."
        else:
            title, intro = "General", "Fields of the root, `Settings`."
        out.append((title, intro, rows))
    return out


def render() -> str:
    """The whole of docs/configuration.md."""
    parts = [HEADER]
    for title, intro, rows in sections():
        parts.append(f"\n## {title}\n\n{intro}\n\n")
        parts.append("| variable | type | default | description |\n|---|---|---|---|\n")
        for r in rows:
            env = f"`{r.env}`" + "".join(f"<br>(or `{a}`)" for a in r.aliases)
            parts.append(f"| {env} | {r.type} | {r.default} | {r.description} |\n")
    return "".join(parts)


def check(path: Path = DOC) -> list[str]:
    """The unified diff between ``path`` and what the tree generates (empty: up to date)."""
    current = path.read_text("utf-8") if path.is_file() else ""
    return list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            render().splitlines(keepends=True),
            fromfile=str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path),
            tofile="generated from service/settings.py",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.settings_doc", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is not up to date")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if args.check:
        diff = check(args.out)
        if diff:
            sys.stderr.writelines(diff)
            sys.stderr.write(
                f"\n{args.out} is not what service/settings.py generates: run `{COMMAND}` and commit it.\n"
            )
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
