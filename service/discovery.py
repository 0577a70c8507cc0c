"""Who owns the store: a running ``fonti serve`` leaves its address in the store folder.

The embedded store (Qdrant Edge) lets one process open its folder. While ``fonti serve`` holds it, the
other commands (ingest, list, delete, ask) must go through its HTTP API; they find it
through the file written here, or on the configured host and port.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from service.settings import Settings

OWNER_FILE = "fonti-service.json"


def _loopback(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host  # an IPv6 address in a URL


def write_owner(settings: Settings, host: str, port: int) -> Path | None:
    """Record this process as the owner of the local store (nothing for a Qdrant server)."""
    if settings.store.url:
        return None
    folder = Path(settings.store.path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / OWNER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": f"http://{_loopback(host)}:{port}", "pid": os.getpid()}))
    tmp.replace(path)
    return path


def remove_owner(path: Path | None) -> None:
    """Forget the owner record written by :func:`write_owner` (if it is still ours)."""
    if path is None:
        return
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def _is_fonti(url: str) -> bool:
    import httpx

    try:
        r = httpx.get(url + "/healthz", timeout=1.0)
        return r.status_code == 200 and r.json().get("service") == "fonti"
    except (httpx.HTTPError, ValueError):
        return False


def find_service(settings: Settings, url: str | None = None) -> str | None:
    """The running service to talk to: ``url``, else the one that owns the local store.

    No guess on a default port: a service there may serve another store.
    """
    if url:
        return url.rstrip("/")
    if settings.store.url:
        return None
    try:
        record = json.loads((Path(settings.store.path) / OWNER_FILE).read_text())
        candidate = str(record["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return candidate if _is_fonti(candidate) else None


def client_headers(settings: Settings) -> dict[str, str]:
    """Headers a CLI command sends to a running service: the key of ``FONTI_API_KEY``, if set."""
    key = settings.server.api_key.get_secret_value().strip() if settings.server.api_key else ""
    return {"Authorization": f"Bearer {key}"} if key else {}
