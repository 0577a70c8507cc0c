"""API keys through the ASGI app with real components, key files, and the refusal to expose open writes."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import LLMSettings, ServerSettings
from tests.factories import make_settings

KEY = "k-7f3a9c1e5b2d"
OTHER = "k-second-0042"
ARTICLE = {
    "id": "nota-chiave",
    "text": "Chiusa la biblioteca\n\nLa biblioteca civica resterà chiusa per lavori di manutenzione straordinaria fino a lunedì prossimo, ha annunciato il Comune in una nota. (ANSA)\n",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Keys configured (inline and in a file); reads open."""
    folder = tmp_path_factory.mktemp("keys")
    key_file = folder / "keys.txt"
    key_file.write_text(f"# rotated monthly\n{OTHER}\n")
    settings = make_settings(
        folder / "store",
        llm=LLMSettings(warmup=False),
        server=ServerSettings(api_keys=f" {KEY} , ", api_keys_file=key_file),
    )
    with TestClient(create_app(settings)) as c:
        c.key_file = key_file  # type: ignore[attr-defined]
        yield c


@pytest.mark.e2e
def test_writes_need_a_key_when_keys_are_set(keyed: TestClient, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    store = keyed.app.state.store  # type: ignore[attr-defined]
    before = store.count()
    for headers in ({}, bearer("wrong"), {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}):
        r = keyed.post("/v1/articles", json={"articles": [ARTICLE]}, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "unauthorized" in r.json()["error"]
        r = keyed.delete("/v1/articles/x", headers=headers)
        assert r.status_code == 401
    assert store.count() == before
    r = keyed.post("/v1/articles", json={"articles": [ARTICLE]}, headers=bearer(KEY))
    assert r.status_code == 200 and r.json()["ingested"] == 1
    r = keyed.delete("/v1/articles/nota-chiave", headers=bearer(OTHER))  # the key from the file
    assert r.status_code == 200
    # Reads stay open unless FONTI_REQUIRE_KEY_FOR_ASK.
    assert keyed.get("/v1/articles").status_code == 200
    assert keyed.post("/v1/search", json={"query": "biblioteca"}).status_code == 200
    text = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert KEY not in text and OTHER not in text and "wrong" not in text


@pytest.mark.e2e
def test_key_file_changes_apply_without_restart(keyed: TestClient):
    key_file: Path = keyed.key_file  # type: ignore[attr-defined]
    r = keyed.delete("/v1/articles/nothing-here", headers=bearer("k-new-key-99"))
    assert r.status_code == 401
    key_file.write_text("k-new-key-99\n")
    os.utime(key_file, (1, 1))  # a different mtime even within the same clock tick
    assert keyed.delete("/v1/articles/nothing-here", headers=bearer("k-new-key-99")).status_code == 404
    assert keyed.delete("/v1/articles/nothing-here", headers=bearer(OTHER)).status_code == 401  # rotated out
    assert keyed.delete("/v1/articles/nothing-here", headers=bearer(KEY)).status_code == 404  # inline stays
