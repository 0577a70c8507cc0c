"""``fonti ingest/list/delete`` as a user runs them: real processes, real store, real embedder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ingest.chunking import chunk_article
from ingest.files import iter_sources
from ingest.formats import parse_article
from ingest.pipeline import article_id_for
from service.discovery import OWNER_FILE
from tests.factories import SAMPLE, open_store

FONTI = str(Path(sys.executable).with_name("fonti"))
OUTLETS = ["ANSA", "AGI", "Il Post", "Adnkronos", "Il Tempo", "RaiNews"]
WORDS = "comune regione ministero sindaco cantiere bilancio scuola ospedale treno ponte porto museo".split()


def env(store: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "FONTI_STORE_PATH": str(store), "FONTI_PORT": "1", **extra}


def run(
    args: list[str], store: Path, stdin: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FONTI, *args], capture_output=True, text=True, env=env(store, **extra), input=stdin, timeout=600
    )


def write_corpus(folder: Path, n: int) -> None:
    """``n`` aggregator pages with 3-5 distinct paragraphs each."""
    folder.mkdir(parents=True)
    for i in range(n):
        paras = []
        for j in range(3 + i % 3):
            w = [WORDS[(i * 7 + j * 3 + k) % len(WORDS)] for k in range(6)]
            paras.append(
                f"Notizia {i} paragrafo {j}: il {w[0]} e il {w[1]} discutono del {w[2]} con {i * 13 + j} "
                f"persone presenti, mentre il {w[3]} attende il {w[4]} e il {w[5]}. ({OUTLETS[(i + j) % 6]})"
            )
        (folder / f"n{i:03d}.txt").write_text(
            f"Titolo della notizia {i}\n\n" + "\n\n".join(paras) + "\n", "utf-8"
        )


def expected_chunks(folder: Path) -> dict[str, int]:
    out = {}
    for _, inp in iter_sources([str(folder)]):
        article = parse_article(inp, article_id_for(inp))  # type: ignore[arg-type]
        out[article.id] = len(chunk_article(article))
    return out


def stored_states(store: Path) -> tuple[dict[str, dict[str, int]], int, int]:
    """(chunk counts by hash per article, first-chunk count, total points)."""
    s = open_store(store)
    try:
        points = list(s.iter_points())
        states: dict[str, dict[str, int]] = {}
        for p in points:
            by_hash = states.setdefault(p.payload["article_id"], {})
            by_hash[p.payload["article_hash"]] = by_hash.get(p.payload["article_hash"], 0) + 1
        return states, sum(p.payload["position"] == 0 for p in points), len(points)
    finally:
        s.close()


def test_stdin_feed_progress_and_summary(tmp_path: Path):
    feed = "\n".join(
        [
            json.dumps(
                {
                    "id": "s1",
                    "title": "Uno",
                    "outlet": "AGI",
                    "text": "La giunta approva il piano neve per l'inverno.",
                }
            ),
            "not json",
            json.dumps(
                {
                    "id": "s2",
                    "title": "Due",
                    "outlet": "ANSA",
                    "text": "Il porto riapre dopo la mareggiata di ieri sera.",
                }
            ),
        ]
    )
    r = run(["ingest", "-", "--progress"], tmp_path / "store", stdin=feed)
    assert r.returncode == 1
    assert "<stdin>:2: invalid JSON" in r.stderr
    assert "article/s" in r.stderr or "chunks/s" in r.stderr  # the tqdm bar
    assert (
        r.stdout.strip()
        .splitlines()[-1]
        .startswith("2 ingested, 0 replaced, 0 skipped, 1 failed; 2 chunks in ")
    )
    r = run(["list", "--json"], tmp_path / "store")
    assert sorted(a["id"] for a in json.loads(r.stdout)["articles"]) == ["s1", "s2"]
    r = run(["delete", "s1", "missing"], tmp_path / "store")
    assert r.returncode == 1 and "deleted s1 (1 chunks)" in r.stdout and "missing: not stored" in r.stderr
    r = run(["list"], tmp_path / "store")
    assert r.stdout.startswith("s2\t1 chunks\tANSA\tDue")


def test_sigkill_halfway_then_rerun_leaves_every_article_exactly_once(tmp_path: Path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 60)
    want = expected_chunks(corpus)
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [FONTI, "ingest", str(corpus), "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env(store, FONTI_EMBED_BATCH_SIZE="4"),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first group of articles is stored: now we are mid-run
    assert first.startswith("ingested"), first
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    states, _, _ = stored_states(store)
    complete = [a for a, by_hash in states.items() if by_hash == {next(iter(by_hash)): want[a]}]
    assert 0 < len(complete) < len(want), "the kill did not land halfway; the test proves nothing"

    r = run(["ingest", str(corpus)], store)
    assert r.returncode == 0, r.stderr
    states, heads, total = stored_states(store)
    assert set(states) == set(want)
    for article_id, by_hash in states.items():
        assert len(by_hash) == 1 and next(iter(by_hash.values())) == want[article_id], article_id
    assert heads == len(want) and total == sum(want.values())
    r = run(["ingest", str(corpus)], store)
    assert f"0 ingested, 0 replaced, {len(want)} skipped" in r.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.e2e
def test_commands_go_through_the_service_that_owns_the_store(tmp_path: Path):
    store = tmp_path / "store"
    port = _free_port()
    server = subprocess.Popen(
        [FONTI, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env(store, FONTI_LLM_WARMUP="false"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "fonti serve did not start"
            time.sleep(0.5)
        assert json.loads((store / OWNER_FILE).read_text())["url"] == url
        # No --url: the commands find the owner of the store and use its API.
        r = run(["ingest", str(SAMPLE)], store)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().endswith(f"(through {url})") and r.stdout.startswith("3 ingested")
        r = run(["list"], store)
        assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 3
        r = run(["delete", "musk-putin-wsj.txt"], store)
        assert r.returncode == 0 and "deleted musk-putin-wsj.txt (7 chunks)" in r.stdout
        assert len(httpx.get(url + "/v1/articles").json()["articles"]) == 2
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert not (store / OWNER_FILE).exists()
    # With the service gone the command opens the store itself.
    r = run(["ingest", str(SAMPLE)], store)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("1 ingested, 0 replaced, 2 skipped") and "through" not in r.stdout
