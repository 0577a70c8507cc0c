"""API keys without models: key rings, exposure rules, the guard and the OpenAPI security
declaration (the app without its lifespan), and `fonti serve` refusing open writes on a
public address. The key checks through the running app are in tests/integration/test_security.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.keys import KeyConfigError, KeyRing, exposure_problem, is_loopback
from service.settings import ServerSettings
from tests.factories import REPO, make_settings

KEY = "k-7f3a9c1e5b2d"


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
