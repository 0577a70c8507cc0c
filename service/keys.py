"""API keys: which keys are accepted, and whether serving on an address needs them.

Keys come from ``FONTI_API_KEYS`` (comma-separated) and/or ``FONTI_API_KEYS_FILE`` (one
per line, ``#`` comments; re-read when the file changes, so keys rotate without a
restart). Only SHA-256 digests of the keys are kept, compared with
:func:`hmac.compare_digest` against every key (no early exit), and no key is ever
logged. The HTTP side (the Bearer dependency) is :mod:`service.api.security`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading

from service.settings import ServerSettings


class KeyConfigError(Exception):
    """The key configuration cannot be used (unreadable file, contradictory settings)."""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _parse(text: str, sep: str) -> list[str]:
    keys = []
    for raw in text.split(sep):
        key = raw.strip()
        if key and not key.startswith("#"):
            keys.append(key)
    return keys


class KeyRing:
    """The accepted keys (as digests); ``configured`` when any key source is set."""

    def __init__(self, settings: ServerSettings):
        inline = settings.api_keys.get_secret_value() if settings.api_keys else ""
        self._inline = [_digest(k) for k in _parse(inline, ",")]
        self._file = settings.api_keys_file
        self._file_stamp: tuple[float, int] | None = None
        self._file_keys: list[bytes] = []
        self._lock = threading.Lock()
        self.configured = bool(self._inline) or self._file is not None
        if self._file is not None:
            self._reload(strict=True)
        if settings.require_key_for_ask and not self.configured:
            raise KeyConfigError(
                "FONTI_REQUIRE_KEY_FOR_ASK=true needs keys: set FONTI_API_KEYS or FONTI_API_KEYS_FILE"
            )

    def _reload(self, strict: bool = False) -> None:
        assert self._file is not None
        try:
            st = self._file.stat()
            stamp = (st.st_mtime, st.st_size)
            if stamp == self._file_stamp:
                return
            keys = _parse(self._file.read_text("utf-8"), "\n")
        except (OSError, UnicodeDecodeError) as exc:
            if strict:
                raise KeyConfigError(
                    f"FONTI_API_KEYS_FILE {self._file}: cannot read it ({exc.__class__.__name__})"
                ) from exc
            return  # keep the keys last read; a file being replaced must not open the door
        with self._lock:
            self._file_keys = [_digest(k) for k in keys]
            self._file_stamp = stamp

    def check(self, key: str) -> bool:
        """Whether ``key`` is one of the accepted keys (constant time in the key's content)."""
        if self._file is not None:
            self._reload()
        candidate = _digest(key)
        ok = False
        for known in self._inline + self._file_keys:
            ok |= hmac.compare_digest(candidate, known)
        return ok


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it is reachable


def exposure_problem(host: str, port: int, settings: ServerSettings) -> str | None:
    """Why serving on ``host`` would leave the corpus writable by anyone, or None when it is fine."""
    keyed = bool(settings.api_keys and settings.api_keys.get_secret_value().strip()) or bool(
        settings.api_keys_file
    )
    if is_loopback(host) or keyed or settings.allow_open_writes:
        return None
    return (
        f"refusing to serve on {host}:{port} with the write endpoints (ingest, delete) open to anyone "
        "who can reach it: set FONTI_API_KEYS or FONTI_API_KEYS_FILE, bind a loopback address "
        "(FONTI_HOST=127.0.0.1), or set FONTI_ALLOW_OPEN_WRITES=true"
    )
