"""API keys over HTTP: optional Bearer tokens that guard the write endpoints (and, if asked, the read ones).

When any key source is configured (:mod:`service.keys`), ingest and delete need
``Authorization: Bearer <key>``; ``FONTI_REQUIRE_KEY_FOR_ASK`` extends that to ask, chat,
search and the article listing. No key or Authorization header is ever logged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.errors import ApiError
from service.api.schemas import ErrorOut
from service.deps import KeysDep

bearer = HTTPBearer(auto_error=False, description="An API key (FONTI_API_KEYS / FONTI_API_KEYS_FILE).")


async def require_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)], keys: KeysDep
) -> None:
    """401 unless the request carries a valid key. Installed by the app factory only on the
    routes that need one under the current settings, so the OpenAPI schema says which do."""
    if credentials is None:
        raise ApiError(
            401,
            "unauthorized: this endpoint needs an API key; send `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not keys.check(credentials.credentials):
        raise ApiError(
            401,
            "unauthorized: the API key is not valid",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid API key (`WWW-Authenticate: Bearer`)."}
}
