"""GET /healthz (liveness), GET /readyz (readiness), GET /metrics (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from service.api.schemas import ErrorOut
from service.backends.store import VectorStore
from service.deps import GeneratorDep, MetricsDep, StoreDep
from service.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving HTTP (it does not look at the model or the store)."""
    return {"status": "ok", "service": "fonti"}


def _check_store(store: VectorStore) -> str | None:
    try:
        store.count()
    except Exception as exc:  # any failure means "not ready"; the message says which
        return f"{type(exc).__name__}: {exc}"
    return None


@router.get("/readyz", responses={503: {"model": ErrorOut}})
def readyz(generator: GeneratorDep, store: StoreDep) -> Any:
    """Ready to answer: the model is loaded (or the LLM server answers) and the store is reachable.

    503 names the failing part(s) in ``error`` and gives each check's result in ``detail``.
    """
    checks = {
        "llm": generator.check_ready(),
        "store": _check_store(store),
    }
    failing = [name for name, problem in checks.items() if problem]
    detail = {name: problem or "ok" for name, problem in checks.items()}
    if failing:
        reasons = "; ".join(f"{name}: {checks[name]}" for name in failing)
        return JSONResponse({"error": f"not ready: {reasons}", "detail": detail}, status_code=503)
    return {"status": "ready", "checks": detail}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text format: requests, latency, time to first token, tokens/s, queue, store size."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
