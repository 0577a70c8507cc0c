"""The Qdrant Edge store without models: synthetic vectors, the real engine, seconds.

What the store does for the services (search with filters, article states, paging,
delete), its folder (one owner, metadata checks, generations), and the index build off
the request path: from a copy in a child process, with writes during the build kept.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from service.backends.store import StoreError, StorePoint, build_store
from service.backends.store.edge import INDEX_AFTER, EdgeStore
from service.backends.store.edge_folder import CURRENT_FILE, LOCK_FILE, META_FILE
from service.backends.store.lexical import passage_vector, query_vector
from service.settings import StoreSettings

DIM = 16
OUTLETS = ["ANSA", "AGI", "Il Post", "RaiNews"]
WORDS = "governo comune regione sindaco ponte porto museo tribunale sciopero energia calcio".split()


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def point(article: int, position: int, rng: np.random.Generator, digest: str = "h1") -> StorePoint:
    words = [WORDS[(article * 3 + position + k) % len(WORDS)] for k in range(6)]
    text = f"Notizia {article}: " + " ".join(words)
    payload = {
        "article_id": f"a{article:04d}",
        "position": position,
        "outlet": OUTLETS[(article + position) % len(OUTLETS)],
        "topic": "Cronaca" if article % 2 else "Politica",
        "published": f"2024-05-{1 + article % 28:02d}",
        "title": f"Titolo {article}",
        "text": text,
        "article_hash": digest,
    }
    pid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{article}/{position}/{digest}"))
    return StorePoint(pid, payload, unit(rng.standard_normal(DIM)), passage_vector(text, "it"))


def points(articles: range, per_article: int = 3, seed: int = 0) -> list[StorePoint]:
    rng = np.random.default_rng(seed)
    return [point(a, p, rng) for a in articles for p in range(per_article)]


@pytest.fixture
def settings(tmp_path: Path) -> StoreSettings:
    return StoreSettings(path=tmp_path / "store")


@pytest.fixture
def store(settings: StoreSettings):
    s = EdgeStore(settings, DIM, "test/embedder")
    yield s
    s.close()


def test_factory_opens_edge_in_the_store_folder(settings):
    s = build_store(settings, DIM, "test/embedder")
    try:
        assert isinstance(s, EdgeStore)
        root = settings.path / "edge" / "fonti_chunks"
        assert s.where == str(root)
        meta = json.loads((root / META_FILE).read_text())
        assert meta["dense_size"] == DIM and meta["embedder"] == "test/embedder"
        assert (root / (root / CURRENT_FILE).read_text().strip() / "edge_config.json").is_file()
    finally:
        s.close()


def test_search_filters_states_paging_and_delete(store):
    pts = points(range(20))
    store.upsert(pts)
    assert store.count() == 60
    # the point itself comes first, with its dense vector
    target = pts[7]
    hits = store.hybrid_search(target.dense, query_vector(target.payload["text"]), 5)
    assert hits[0].id == target.id and np.allclose(hits[0].dense, target.dense, atol=1e-6)
    assert hits[0].payload == target.payload
    # filters: outlets, exclusions, topics, article ids, published range
    hits = store.hybrid_search(target.dense, query_vector("ponte"), 50, {"outlet": ["ANSA", "AGI"]})
    assert hits and {h.payload["outlet"] for h in hits} <= {"ANSA", "AGI"}
    hits = store.hybrid_search(
        target.dense, query_vector("ponte"), 50, {"!outlet": "ANSA", "topic": "Cronaca"}
    )
    assert hits and all(h.payload["outlet"] != "ANSA" and h.payload["topic"] == "Cronaca" for h in hits)
    hits = store.hybrid_search(target.dense, query_vector("ponte"), 50, {"article_id": ["a0003"]})
    assert {h.payload["article_id"] for h in hits} == {"a0003"} and len(hits) == 3
    hits = store.hybrid_search(
        target.dense, query_vector("ponte"), 100, {"published>=": "2024-05-05", "published<": "2024-05-08"}
    )
    assert sorted({h.payload["published"] for h in hits}) == ["2024-05-05", "2024-05-06", "2024-05-07"]
    # no lexical terms: the dense list alone
    assert store.hybrid_search(target.dense, query_vector(""), 1)[0].id == target.id
    # article states in one batch, counts
    states = store.article_states(["a0001", "a0002", "missing"])
    assert states == {"a0001": {"h1": 3}, "a0002": {"h1": 3}}
    assert store.article_counts("a0001", "h1") == (3, 3)
    assert store.article_counts("a0001", "other") == (3, 0)
    assert sorted(p.payload["position"] for p in store.article_points(["a0004"])) == [0, 1, 2]
    # listing: first chunks, page by page, every article once
    seen, offset = [], None
    while True:
        heads, offset = store.article_heads(7, offset)
        assert all(h.payload["position"] == 0 for h in heads)
        seen += [h.payload["article_id"] for h in heads]
        if offset is None:
            break
    assert sorted(seen) == [f"a{i:04d}" for i in range(20)]
    assert store.outlets(10)[:4] and set(store.outlets(10)) == set(OUTLETS)
    # a changed article: the old chunks go, the new stay
    rng = np.random.default_rng(9)
    store.upsert([point(5, p, rng, digest="h2") for p in range(2)])
    store.delete_article("a0005", keep_hash="h2")
    assert store.article_states(["a0005"]) == {"a0005": {"h2": 2}}
    store.delete_article("a0005")
    assert store.article_states(["a0005"]) == {} and store.count() == 57


def test_same_ids_overwrite(store):
    pts = points(range(3))
    store.upsert(pts)
    store.upsert(pts)
    assert store.count() == 9
    assert {p.id for p in store.iter_points()} == {p.id for p in pts}


def test_reopened_store_keeps_points_and_refuses_another_embedder(settings):
    s = EdgeStore(settings, DIM, "test/embedder")
    s.upsert(points(range(4)))
    s.close()
    s = EdgeStore(settings, DIM, "test/embedder")
    try:
        assert s.count() == 12 and not s.created
    finally:
        s.close()
    with pytest.raises(StoreError, match=r"built with the embedder 'test/embedder'.*nothing was changed"):
        EdgeStore(settings, DIM, "other/embedder")
    with pytest.raises(StoreError, match=r"different schema .*dense size 16"):
        EdgeStore(settings, 32, "test/embedder")


def test_second_owner_gets_an_error_naming_the_first(settings):
    owner = EdgeStore(settings, DIM, "test/embedder")
    try:
        with pytest.raises(StoreError, match=r"in use by another process \(pid \d+: .* since "):
            EdgeStore(settings, DIM, "test/embedder")
        code = (
            "import sys; from service.backends.store import build_store, StoreError\n"
            "from service.settings import StoreSettings\n"
            f"try: build_store(StoreSettings(path={str(settings.path)!r}), {DIM}, 'test/embedder')\n"
            "except StoreError as e: print(e); sys.exit(3)\n"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert r.returncode == 3, r.stderr
        assert f"pid {__import__('os').getpid()}" in r.stdout and "fonti ingest --url" in r.stdout
    finally:
        owner.close()
    EdgeStore(settings, DIM, "test/embedder").close()  # free again
    assert (settings.path / "edge" / "fonti_chunks" / LOCK_FILE).exists()


def test_build_index_in_a_child_process_keeps_writes_made_meanwhile(settings):
    s = EdgeStore(settings, DIM, "test/embedder")
    try:
        s.upsert(points(range(INDEX_AFTER // 3 + 400)))  # above Qdrant's own indexing threshold
        before = s.pending()
        assert before > 0
        root = settings.path / "edge" / "fonti_chunks"
        first = (root / CURRENT_FILE).read_text().strip()
        s._live.start_build(foreground=False)
        # while the child optimises the copy: writes, deletes and searches on the live shard
        extra = points(range(90_000, 90_010), seed=5)
        s.upsert(extra)
        s.delete_article("a0001")
        probe = extra[4]
        assert s.hybrid_search(probe.dense, query_vector(probe.payload["text"]), 3)[0].id == probe.id
        elapsed: list[float] = []
        s._live.wait_build(elapsed.append)
        assert (root / CURRENT_FILE).read_text().strip() != first
        assert [p.name for p in root.glob("gen-*")] == [(root / CURRENT_FILE).read_text().strip()]
        total = (INDEX_AFTER // 3 + 400) * 3 + 30 - 3
        assert s.count() == total
        assert s.article_states(["a0001"]) == {}
        assert s.hybrid_search(probe.dense, query_vector(probe.payload["text"]), 3)[0].id == probe.id
        assert s.pending() < before
    finally:
        s.close()
    s = EdgeStore(settings, DIM, "test/embedder")
    try:
        assert s.count() == total and s.article_states(["a0001"]) == {}
    finally:
        s.close()


def test_searches_stay_answered_while_the_index_builds(settings):
    s = EdgeStore(settings, DIM, "test/embedder")
    try:
        batch = points(range(INDEX_AFTER // 3 + 400))
        s.upsert(batch)
        probe = batch[21]
        s._live.start_build(foreground=False)
        answered = 0
        while s._live.building:
            assert s.hybrid_search(probe.dense, query_vector(probe.payload["text"]), 3)[0].id == probe.id
            answered += 1
            time.sleep(0.01)
        assert answered > 10  # the GIL was not held by the build
    finally:
        s.close()


def test_build_index_waits_and_reports_progress(settings):
    s = EdgeStore(settings, DIM, "test/embedder")
    try:
        assert s.build_index() is False  # nothing waits
        s.upsert(points(range(INDEX_AFTER // 3 + 400)))
        ticks: list[float] = []
        assert s.build_index(ticks.append) is True
        assert not s._live.building and s.pending() == 0
        assert ticks == sorted(ticks)
    finally:
        s.close()


def test_closing_during_a_build_keeps_the_live_generation(settings):
    s = EdgeStore(settings, DIM, "test/embedder")
    s.upsert(points(range(INDEX_AFTER // 3 + 400)))
    root = settings.path / "edge" / "fonti_chunks"
    live = (root / CURRENT_FILE).read_text().strip()
    s._live.start_build(foreground=False)
    s.close()
    assert (root / CURRENT_FILE).read_text().strip() == live
    assert [p.name for p in root.glob("gen-*")] == [live]
    s = EdgeStore(settings, DIM, "test/embedder")
    try:
        assert s.count() == (INDEX_AFTER // 3 + 400) * 3
    finally:
        s.close()


def test_leftover_generation_is_removed_at_open(settings):
    EdgeStore(settings, DIM, "test/embedder").close()
    root = settings.path / "edge" / "fonti_chunks"
    (root / "gen-000009").mkdir()
    s = EdgeStore(settings, DIM, "test/embedder")
    try:
        assert not (root / "gen-000009").exists()
    finally:
        s.close()


def test_background_index_starts_by_itself_after_enough_writes(settings):
    s = EdgeStore(settings, DIM, "test/embedder", background_index=True)
    try:
        batch = points(range(INDEX_AFTER // 3 + 400))
        for i in range(0, len(batch), 500):
            s.upsert(batch[i : i + 500])
        assert s._live.building
        done = threading.Event()
        threading.Thread(target=lambda: (s._live.wait_build(), done.set()), daemon=True).start()
        assert done.wait(120)
        assert s.count() == len(batch)
    finally:
        s.close()


def test_ties_are_ranked_the_same_every_time(tmp_path):
    """Aggregator pages repeat paragraphs word for word: equal lexical scores must not make the
    ranking change from one search to the next (Edge's own sparse search orders ties at random)."""
    rng = np.random.default_rng(3)
    base = points(range(40), seed=3)
    # 60 copies of one paragraph under other articles: tied lexical scores, distinct dense vectors
    copies = [
        StorePoint(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"copy/{i}")),
            {**base[0].payload, "article_id": f"copy{i:03d}"},
            unit(rng.standard_normal(DIM)),
            base[0].sparse,
        )
        for i in range(60)
    ]
    query = unit(rng.standard_normal(DIM))
    rankings = []
    for attempt in range(2):
        s = EdgeStore(StoreSettings(path=tmp_path / f"s{attempt}"), DIM, "test/embedder")
        try:
            s.upsert(base + copies)
            for _ in range(5):
                hits = s.hybrid_search(query, query_vector(base[0].payload["text"]), 24)
                rankings.append([(h.id, round(h.score, 9)) for h in hits])
        finally:
            s.close()
    assert all(r == rankings[0] for r in rankings)
    assert len(rankings[0]) == 24
