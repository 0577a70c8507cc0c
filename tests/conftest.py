"""Fixtures shared by every tier, and the CI rule for missing shared data.

The tiers: tests/unit/ (no models, seconds: `make test-fast`), tests/integration/ (real
models, the real store (Qdrant Edge), real HTTP and processes), tests/browser/ (the widget in
headless Chromium). Helpers live in tests/factories.py. Fixtures that build real
components do so lazily, once per session where the tests allow it, so the unit tier
never pays for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

# The store test modules at the top of tests/ import these names from here; new tests import
# them from tests.factories.
from tests.factories import (  # noqa: F401
    DEV_ARTICLES,
    DEV_DATA,
    MARKER,
    MISSING_DATA,
    REPO,
    SAMPLE,
    check_citation_invariants,
    dev_article_bodies,
    in_ci,
    make_settings,
)

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


@pytest.fixture(scope="session")
def dev_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the session with the 15 dev articles ingested through the API."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    bodies = dev_article_bodies()
    settings = make_settings(tmp_path_factory.mktemp("store") / "qdrant")
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/articles", json={"articles": bodies})
        assert r.status_code == 200, r.text
        assert r.json()["ingested"] == 15
        yield client


# Run order: the unit tier first (seconds: a broken build fails fast), then the modules still at
# the top of tests/ (the store's), the integration tier, and the browser tier last:
# Playwright's sync API keeps an event loop running in the main thread while its browser is open,
# and asyncio.run()/anyio.run() refuse to start under it.
ORDER = {"unit": 0, "": 1, "integration": 2, "browser": 3}


def _tier(item: pytest.Item) -> str:
    parts = item.path.relative_to(REPO / "tests").parts
    return parts[0] if len(parts) > 1 and parts[0] in ORDER else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, from its folder (`-m unit`, `-m "not browser"`; the modules still
    at the top of tests/ load the real models: integration), and run the tiers in ORDER."""
    for item in items:
        item.add_marker(_tier(item) or "integration")
    items.sort(key=lambda item: ORDER[_tier(item)])  # stable: each module keeps its own order


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Under CI=true a test skipped because the shared dev data is missing fails instead.

    tests.factories.dev_data() already fails there; this catches the modules that still test
    for the folder themselves and skip (their reason names the dev data's path).
    """
    report: pytest.TestReport = yield
    if report.skipped and in_ci() and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if str(DEV_DATA) in reason or MISSING_DATA in reason:
            report.outcome = "failed"
            report.longrepr = f"CI=true: the shared data is required here, not skipped: {reason}"
    return report
