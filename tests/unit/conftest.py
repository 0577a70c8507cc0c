"""The unit tier loads no model: building the LLM or the embedder here is an error.

``TestClient(app)`` outside a ``with`` block (no lifespan) and scripted transports are
fine; a test that needs the real components belongs in tests/integration/.
"""

from __future__ import annotations

from typing import NoReturn

import pytest


@pytest.fixture(autouse=True)
def _no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.backends.embedder as embedder
    import service.backends.llm as llm

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("a unit test built a model: move it to tests/integration/")

    monkeypatch.setattr(embedder, "build_embedder", refuse)
    monkeypatch.setattr(llm, "build_generator", refuse)
