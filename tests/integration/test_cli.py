"""The ``fonti`` console script as a user runs it: real processes, real store, real models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import SAMPLE, open_store

FONTI = str(Path(sys.executable).with_name("fonti"))


def run(args: list[str], store: Path, prefix: list[str] | None = None, timeout: int = 600):
    env = {**os.environ, "FONTI_STORE_PATH": str(store), "FONTI_PORT": "1"}  # port 1: no service found
    return subprocess.run(
        [*(prefix or []), FONTI, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def stored(store: Path) -> dict[str, str]:
    s = open_store(store)
    try:
        return {p.id: p.payload["article_id"] for p in s.iter_points()}
    finally:
        s.close()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("cli") / "store"
    r = run(["ingest", str(SAMPLE)], store)
    assert r.returncode == 0, r.stderr
    assert "3 ingested, 0 replaced, 0 skipped, 0 failed; 19 chunks" in r.stdout
    return store


def test_ingest_twice_is_idempotent(sample_store: Path):
    before = stored(sample_store)
    r = run(["ingest", str(SAMPLE)], sample_store)
    assert r.returncode == 0, r.stderr
    assert "0 ingested, 0 replaced, 3 skipped, 0 failed; 0 chunks" in r.stdout
    assert stored(sample_store) == before


def test_bad_file_is_named_with_its_line_and_the_rest_is_stored(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE / "garante-multa-openai-chatgpt.txt", folder / "good.txt")
    (folder / "bad.txt").write_text("\n\n   \nApprofondimenti:\n", encoding="utf-8")
    store = tmp_path / "store"
    r = run(["ingest", str(folder)], store)
    assert r.returncode == 1
    assert f"{folder / 'bad.txt'}:" in r.stderr
    assert "1 ingested" in r.stdout
    assert set(stored(store).values()) == {"good.txt"}


def test_plain_file_needs_an_outlet_and_takes_it_from_the_flag(tmp_path: Path):
    f = tmp_path / "nota.txt"
    f.write_text("Un titolo semplice\n\nIl testo del pezzo, senza testata alla fine.\n", encoding="utf-8")
    store = tmp_path / "store"
    r = run(["ingest", str(f)], store)
    assert r.returncode == 1 and "outlet" in r.stderr and str(f) in r.stderr
    r = run(["ingest", "--outlet", "Il Post", str(f)], store)
    assert r.returncode == 0, r.stderr
    assert list(stored(store).values()) == ["nota.txt"]


def test_missing_path_is_named(tmp_path: Path):
    r = run(["ingest", str(tmp_path / "nowhere")], tmp_path / "store")
    assert r.returncode == 2
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in r.stderr


def test_locked_store_says_how_to_proceed(tmp_path: Path):
    owner = open_store(tmp_path / "store")
    try:
        r = run(["ingest", str(SAMPLE)], tmp_path / "store")
    finally:
        owner.close()
    assert r.returncode == 2
    assert "in use by another process" in r.stderr and "--url" in r.stderr


def _no_network_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot drop the network here (unshare -n needs privileges)")
    return [unshare, "-n"]


@pytest.mark.e2e
def test_ask_answers_offline_with_citations(sample_store: Path, capsys: pytest.CaptureFixture[str]):
    """The whole path (models, store, answer) with no network interface at all."""
    prefix = _no_network_prefix()
    r = run(["ask", "--json", "Chi ha smentito i contatti?"], sample_store, prefix=prefix)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    body = json.loads(r.stdout)
    assert body["language"] == "it" and not body["abstained"]
    assert "Peskov" in body["answer"]
    assert body["citations"] and all(f"[{c['id']}]" in body["answer"] for c in body["citations"])
    # Without --json the same answer prints as text with one line per citation (the printing
    # is checked on this real answer in process: a second model load would only repeat the path).
    from service.cli import _print_answer

    _print_answer(body)
    text = capsys.readouterr().out
    assert text.startswith(body["answer"])
    for c in body["citations"]:
        assert f"  [{c['id']}] {c['outlet']} — {c['title']}" in text and f"«{c['quote']}»" in text
