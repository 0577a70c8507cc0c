"""Shared fixtures: real models, the real store (Qdrant Edge), real HTTP through the ASGI app."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings, StoreSettings

REPO = Path(__file__).resolve().parent.parent
DEV_DATA = Path(os.environ.get("FONTI_DEV_DATA", REPO.parent / "shared" / "data" / "dev"))
DEV_ARTICLES = DEV_DATA / "articles"
SAMPLE = REPO / "data" / "sample"


def make_settings(store_path: Path, **overrides: object) -> Settings:
    """Settings for a test: the environment's defaults with a private store folder."""
    return Settings(store=StoreSettings(path=store_path), **overrides)  # type: ignore[arg-type]


def dev_article_bodies() -> list[dict[str, str]]:
    """The dev articles as POST /v1/articles items, ids = file names."""
    if not DEV_ARTICLES.is_dir():
        pytest.skip(f"dev data not found at {DEV_ARTICLES} (set FONTI_DEV_DATA)")
    return [{"id": f.name, "text": f.read_text("utf-8")} for f in sorted(DEV_ARTICLES.glob("*.txt"))]


@pytest.fixture(scope="session")
def dev_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the session with the 15 dev articles ingested through the API."""
    settings = make_settings(tmp_path_factory.mktemp("store") / "qdrant")
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/articles", json={"articles": dev_article_bodies()})
        assert r.status_code == 200, r.text
        assert r.json()["ingested"] == 15
        yield client


MARKER = re.compile(r"\[(\d+)\]")


def check_citation_invariants(body: dict) -> None:
    """Every marker resolves to a citation and every citation is cited; abstentions cite nothing."""
    ids = [c["id"] for c in body["citations"]]
    used = {int(n) for n in MARKER.findall(body["answer"])}
    if body["abstained"]:
        assert ids == [] and used == set()
        return
    assert ids == list(range(1, len(ids) + 1))
    assert used == set(ids), (used, ids, body["answer"])
    for c in body["citations"]:
        assert c["outlet"] and c["article_id"] and c["title"] and c["quote"]
