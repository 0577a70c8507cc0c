"""The OpenAPI schema states the limits this app enforces (they are settings, not constants).

Request models are static classes; the limits come from ``ServerSettings`` per app. This
patches the generated schema once, so clients (and schemathesis) see the real bounds:
question and query length, ``top_k`` maxima, articles per request and article size.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.settings import ServerSettings

NOT_BLANK = r"\S"  # the routes refuse blank text after stripping


def _props(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema.get("components", {}).get("schemas", {}).get(name, {}).get("properties", {})


def _tighten(prop: dict[str, Any] | None, **bounds: Any) -> None:
    if prop is None:
        return
    # Optional fields are "anyOf: [{type: integer, ...}, {type: null}]": bound the non-null branch.
    targets = [p for p in prop.get("anyOf", []) if p.get("type") not in (None, "null")] or [prop]
    for target in targets:
        target.update(bounds)


def install_schema_limits(app: FastAPI, server: ServerSettings) -> None:
    """Make ``app.openapi()`` include ``server``'s limits."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        ask, search = _props(schema, "AskIn"), _props(schema, "SearchIn")
        _tighten(ask.get("question"), maxLength=server.max_question_chars, pattern=NOT_BLANK)
        _tighten(ask.get("top_k"), maximum=server.max_ask_top_k)
        _tighten(search.get("query"), maxLength=server.max_question_chars, pattern=NOT_BLANK)
        _tighten(search.get("top_k"), maximum=server.max_search_top_k)
        body = (
            schema.get("paths", {})
            .get("/v1/articles", {})
            .get("post", {})
            .get("requestBody", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema", {})
        )
        articles = body.get("properties", {}).get("articles")
        if articles is not None:
            articles["maxItems"] = server.max_articles_per_request
            _tighten(
                articles.get("items", {}).get("properties", {}).get("text"),
                maxLength=server.max_article_chars,
            )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
