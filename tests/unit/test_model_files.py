"""Assembling the default GGUF from its PyPI part packages, and refusing a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.model_prep import ModelFileError, gguf
from service.model_prep.gguf import (
    DEFAULT_GGUF_SIZE,
    assemble_default_gguf,
    is_prepared,
    part_paths,
    resolve_gguf,
)


def test_parts_are_installed_and_add_up_to_the_official_size():
    parts = part_paths()
    assert len(parts) == 22
    assert [p.name for p in parts] == [f"part{i:02d}.bin" for i in range(1, 23)]
    assert sum(p.stat().st_size for p in parts) == DEFAULT_GGUF_SIZE


def test_wrong_parts_fail_with_a_clear_message_and_leave_nothing(tmp_path: Path):
    fake = []
    for i in range(3):
        f = tmp_path / f"part{i:02d}.bin"
        f.write_bytes(b"not a model %d" % i)
        fake.append(f)
    out = tmp_path / "models"
    with pytest.raises(ModelFileError, match=r"sha256 .* expected cc324af0"):
        assemble_default_gguf(out, parts=fake)
    assert list(out.iterdir()) == []  # no partial file, no file that looks ready
    assert not is_prepared(out)


def test_a_truncated_cached_file_is_not_taken_as_prepared(tmp_path: Path):
    target = gguf.default_gguf_path(tmp_path)
    target.write_bytes(b"x" * 10)
    gguf._verified_marker(target).write_text(gguf.DEFAULT_GGUF_SHA256)
    assert not is_prepared(tmp_path)
    with pytest.raises(ModelFileError, match="prepare-models"):
        resolve_gguf(None, tmp_path)


def test_configured_gguf_path_must_exist(tmp_path: Path):
    with pytest.raises(ModelFileError, match="FONTI_LLM_MODEL_PATH"):
        resolve_gguf(tmp_path / "missing.gguf", tmp_path)
    any_gguf = tmp_path / "other.gguf"
    any_gguf.write_bytes(b"GGUF")
    assert resolve_gguf(any_gguf, tmp_path / "unused") == any_gguf


@pytest.mark.slow
def test_real_parts_assemble_to_the_official_sha256(tmp_path: Path):
    path = assemble_default_gguf(tmp_path)
    assert path.stat().st_size == DEFAULT_GGUF_SIZE
    assert is_prepared(tmp_path)
