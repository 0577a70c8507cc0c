"""GET /readyz and the 503s when a part is down: real app, real embedder, real store, real closed ports.

The ready case (model loaded, store up) is in tests/integration/test_llm_server.py, which loads the
model anyway.
"""

from __future__ import annotations

import json
import math
import re
import socket

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.settings import LLMSettings, Settings, StoreSettings
from tests.factories import SAMPLE

pytestmark = pytest.mark.e2e


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_llm(port: int) -> LLMSettings:
    return LLMSettings(
        backend="openai",
        base_url=f"http://127.0.0.1:{port}/v1",
        max_retries=1,
        retry_backoff=0.01,
        connect_timeout=1,
    )


def metric(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                return s.value
    raise KeyError(name)


def test_readyz_names_the_llm_server_that_does_not_answer(tmp_path):
    port = closed_port()
    settings = Settings(store=StoreSettings(path=tmp_path / "q"), llm=unreachable_llm(port))
    with TestClient(create_app(settings)) as client:  # starts although the LLM server is down
        assert client.get("/healthz").status_code == 200  # liveness does not look at the parts
        r = client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["error"].startswith("not ready: llm: ") and f"127.0.0.1:{port}" in body["error"]
        assert "store" not in body["error"]
        assert body["detail"]["store"] == "ok" and "ConnectError" in body["detail"]["llm"]

        # ingesting and searching need no LLM
        article = (SAMPLE / "garante-multa-openai-chatgpt.txt").read_text("utf-8")
        r = client.post("/v1/articles", json={"articles": [{"id": "garante", "text": article}]})
        assert r.status_code == 200 and r.json()["ingested"] == 1
        question = "How large is the fine imposed on OpenAI?"
        assert client.post("/v1/search", json={"query": question}).json()["results"]

        r = client.post("/v1/ask", json={"question": question})
        assert r.status_code == 503
        assert r.json()["error"].startswith("llm: the LLM server failed 2 times")
        with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as s:
            raw = "".join(s.iter_text())
        events = [
            (m.group(1), json.loads(m.group(2))) for m in re.finditer(r"event: (\w+)\ndata: (.*)\n\n", raw)
        ]
        assert events[-1][0] == "error" and f"127.0.0.1:{port}" in events[-1][1]["error"]

        text = client.get("/metrics").text
        assert metric(text, "fonti_llm_retries_total") >= 3  # warm-up, ask, streamed ask: one retry each
        assert metric(text, "fonti_generations_active") == 0


def test_readyz_names_every_part_that_is_down(tmp_path):
    llm_port, store_port = closed_port(), closed_port()
    settings = Settings(
        store=StoreSettings(url=f"http://127.0.0.1:{store_port}", timeout=2),
        llm=unreachable_llm(llm_port),
    )
    with TestClient(create_app(settings)) as client:  # a Qdrant server down at start-up is not fatal
        r = client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert "llm: " in body["error"] and "store: " in body["error"]
        assert f"127.0.0.1:{store_port} is not reachable" in body["detail"]["store"]
        assert f"127.0.0.1:{llm_port}" in body["detail"]["llm"]
        r = client.post("/v1/search", json={"query": "Musk"})
        assert r.status_code == 503 and r.json()["error"].startswith("store: the Qdrant server")
        r = client.get("/metrics")  # a scrape still works, the store size is unknown
        assert r.status_code == 200 and math.isnan(metric(r.text, "fonti_store_points"))
