"""Integration fixtures: real services built once per session where the tests allow it.

An app whose settings a module changes (limits, keys, queue depth, CORS) is the module's
own; one that only needs the dev articles behind the default settings is this session's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.factories import DEV_ARTICLES, dev_data


@pytest.fixture(scope="package")
def dev_service() -> Iterator[str]:
    """Base URL of a real uvicorn (default settings, the 15 dev articles), the one `fonti eval
    --articles` starts: for HTTP clients that need a URL (the openai client, `fonti eval --url`).
    Package scope: it stops, and frees its models, after the last integration test."""
    from service.evaluation.runner import local_service

    with local_service(dev_data(DEV_ARTICLES)) as url:
        yield url
