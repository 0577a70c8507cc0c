"""API keys through the ASGI app with real components, key files, and the refusal to expose open writes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.keys import KeyConfigError, KeyRing, exposure_problem, is_loopback
from service.settings import LLMSettings, ServerSettings
from tests.conftest import REPO, make_settings

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


def test_reads_can_require_a_key_and_openapi_says_which(tmp_path: Path):
    settings = make_settings(
        tmp_path / "store", server=ServerSettings(api_keys=KEY, require_key_for_ask=True)
    )
    app = create_app(settings)  # the guard answers before any model is needed: no lifespan here
    client = TestClient(app)
    for method, path, body in [
        ("post", "/v1/ask", {"question": "Chi?"}),
        ("post", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Chi?"}]}),
        ("post", "/v1/search", {"query": "x"}),
        ("get", "/v1/articles", None),
        ("get", "/v1/articles/abc", None),
        ("get", "/v1/models", None),
    ]:
        r = getattr(client, method)(path, **({"json": body} if body else {}))
        assert r.status_code == 401, (path, r.text)
    assert client.get("/healthz").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert spec["paths"]["/v1/ask"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    # Without keys nothing declares security.
    open_spec = create_app(make_settings(tmp_path / "s2")).openapi()
    assert "security" not in open_spec["paths"]["/v1/articles"]["post"]


def test_key_ring_checks_every_key_and_refuses_bad_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ring = KeyRing(ServerSettings(api_keys="a-key,b-key,c-key"))
    calls: list[int] = []
    import service.keys as keys

    real = keys.hmac.compare_digest
    monkeypatch.setattr(keys.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert ring.check("a-key") and not ring.check("nope")
    assert len(calls) == 6  # no early exit: every key is compared every time
    with pytest.raises(KeyConfigError, match="FONTI_API_KEYS_FILE"):
        KeyRing(ServerSettings(api_keys_file=tmp_path / "missing.txt"))
    with pytest.raises(KeyConfigError, match="FONTI_REQUIRE_KEY_FOR_ASK"):
        KeyRing(ServerSettings(require_key_for_ask=True))
    assert "a-key" not in repr(ServerSettings(api_keys="a-key"))


def test_exposure_rules():
    assert (
        is_loopback("127.0.0.1")
        and is_loopback("::1")
        and is_loopback("localhost")
        and is_loopback("127.0.0.2")
    )
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("fonti.intranet")
    open_ = ServerSettings()
    assert exposure_problem("127.0.0.1", 8000, open_) is None
    problem = exposure_problem("0.0.0.0", 8000, open_)
    assert problem and "FONTI_ALLOW_OPEN_WRITES" in problem and "FONTI_API_KEYS" in problem
    assert exposure_problem("0.0.0.0", 8000, ServerSettings(api_keys=KEY)) is None
    assert exposure_problem("0.0.0.0", 8000, ServerSettings(allow_open_writes=True)) is None


def test_serve_refuses_a_public_address_with_open_writes(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FONTI_")}
    env.update(PYTHONPATH=str(REPO), FONTI_STORE_PATH=str(tmp_path / "store"))
    r = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "refusing to serve on 0.0.0.0" in r.stderr and "FONTI_ALLOW_OPEN_WRITES=true" in r.stderr
    assert not (tmp_path / "store").exists()  # refused before opening anything
