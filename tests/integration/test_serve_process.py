"""`fonti serve` as a real process: JSON logs with request ids, keys sent by the CLI, and a
clean exit on SIGTERM in the middle of an answer (the store can be opened again after)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import REPO, dev_bodies, free_port, wait_until

pytestmark = pytest.mark.e2e

KEY = "serve-test-key-5d1c"
ARTICLES = ["cremlino-smentisce-musk-putin.txt", "musk-putin-wsj.txt"]
SECRET_QUESTION = "Qual è la ricetta segreta zqxw della carbonara di nonna Pina?"
GRACE_S = 3
EXIT_BOUND_S = 60  # grace + stopping the generation at its next token + closing the store


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path, env: dict[str, str], store: Path):
        self.proc, self.url, self.log, self.env, self.store = proc, url, log, env, store

    def records(self) -> list[dict]:
        out = []
        for line in self.log.read_text("utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"unparsed": line})
        return out

    def cli(self, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        env.pop("FONTI_API_KEY", None)
        if key:
            env["FONTI_API_KEY"] = key
        return subprocess.run(
            [sys.executable, "-m", "service.cli", *args], env=env, capture_output=True, text=True, timeout=600
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FONTI_")}
    env.update(
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        FONTI_STORE_PATH=str(folder / "store"),
        FONTI_PORT=str(port),
        FONTI_API_KEYS=KEY,
        FONTI_LOG_FORMAT="json",
        FONTI_LOG_LEVEL="info",
        FONTI_SHUTDOWN_GRACE_S=str(GRACE_S),
    )
    log = folder / "server.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 300, "fonti serve to start")
    srv = Server(proc, url, log, env, folder / "store")
    try:
        yield srv
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_sends_its_key_to_the_service(server: Server, tmp_path: Path):
    folder = tmp_path / "articles"
    folder.mkdir()
    for item in dev_bodies(ARTICLES):
        (folder / item["id"]).write_text(item["text"], "utf-8")
    refused = server.cli("ingest", str(folder), key=None)
    assert refused.returncode == 1 and "401" in refused.stderr, refused.stderr
    done = server.cli("ingest", str(folder))  # finds the service through the store's owner file
    assert done.returncode == 0, done.stderr
    assert "2 ingested" in done.stdout and "through http://127.0.0.1" in done.stdout
    listed = server.cli("list", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["articles"]) == 2


def test_logs_are_json_with_request_ids_and_no_secrets(server: Server):
    r = httpx.get(server.url + "/healthz", headers={"X-Request-ID": "probe-42"})
    assert r.headers["x-request-id"] == "probe-42"
    r = httpx.post(
        server.url + "/v1/search", json={"query": "Peskov"}, headers={"X-Request-ID": "bad id; drop table"}
    )
    generated = r.headers["x-request-id"]
    assert generated != "bad id; drop table" and len(generated) == 32
    r = httpx.post(server.url + "/v1/ask", json={"question": SECRET_QUESTION}, timeout=300)
    assert r.status_code == 200
    httpx.post(server.url + "/v1/articles", json={"articles": []}, headers={"Authorization": f"Bearer {KEY}"})
    time.sleep(0.5)
    records = server.records()
    assert not [r for r in records if "unparsed" in r], [r for r in records if "unparsed" in r][:3]
    access = [r for r in records if r.get("logger") == "fonti.access"]
    probe = [r for r in access if r.get("request_id") == "probe-42"]
    assert probe and probe[0]["method"] == "GET" and probe[0]["path"] == "/healthz"
    assert probe[0]["status"] == 200 and isinstance(probe[0]["latency_ms"], float)
    assert any(r.get("request_id") == generated and r["path"] == "/v1/search" for r in access)
    text = server.log.read_text("utf-8")
    assert SECRET_QUESTION not in text and "zqxw" not in text  # questions only at debug level
    assert KEY not in text


def test_sigterm_during_an_answer_exits_cleanly(server: Server):
    question = "Chi ha smentito i contatti tra Musk e Putin e che cosa ha detto?"
    with httpx.stream(
        "POST", server.url + "/v1/ask", json={"question": question, "stream": True}, timeout=300
    ) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("event: "))
        assert first in ("event: token", "event: citation"), first  # mid-answer
        sent = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        rest: list[str] = []
        try:
            for line in lines:  # the stream ends: finished within the grace period, or cut
                rest.append(line)
        except httpx.HTTPError:
            pass
    code = server.proc.wait(timeout=EXIT_BOUND_S)
    took = time.monotonic() - sent
    assert code == 0, server.log.read_text()[-3000:]
    assert took < EXIT_BOUND_S
    events = [line for line in rest if line.startswith("event: ")]
    # The answer finished within the grace period, or the client was told why it stops.
    assert events and events[-1] in ("event: done", "event: error"), rest[-5:]
    if events[-1] == "event: error":
        data = [line for line in rest if line.startswith("data: ")][-1]
        assert "shutting down" in data and "retry after" in data, data
    print(
        f"\nSIGTERM → exit 0 in {took:.1f} s; the stream ended with {events[-1]!r} ({len(rest)} more lines)"
    )
    messages = [r.get("message", "") for r in server.records()]
    assert any("Shutting down" in m for m in messages)
    assert not (server.store / "fonti-service.json").exists()
    # The store lock was released: a CLI command opens the folder directly now.
    listed = server.cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["articles"]) == 2
