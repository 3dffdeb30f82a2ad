"""/docs: Swagger UI from Veil's own copy, and an OpenAPI document that takes the bearer key."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts

from gateway.auth import bearer, principal, scraper
from gateway.schemas import MEANING

# Swagger UI styles its widgets inline, so style-src alone admits 'unsafe-inline', on /docs only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
VENDOR = "/console/static/vendor/swagger-ui"
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Veil API</title>
<link rel="icon" type="image/png" href="{VENDOR}/favicon-32x32.png">
<link rel="stylesheet" href="{VENDOR}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{VENDOR}/swagger-ui-bundle.js"></script>
<script src="/console/static/docs-init.js"></script>
</body>
</html>
"""
BEARER = {"type": "http", "scheme": "bearer"}
# FastAPI's own 422 body, which Veil never sends: wherever it is named, Veil's error body is.
FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """An operation's id is its handler's name: what a generated client calls it."""
    return route.name


def _takes_key(dependant: Dependant) -> bool:
    """Whether the route reads a bearer key: a principal's, or the metrics token."""
    return dependant.call in (principal, bearer, scraper) or any(
        map(_takes_key, dependant.dependencies)
    )


def _public(app: FastAPI) -> list[tuple[str, str]]:
    """(path, method) of every API route that needs no key."""
    return [
        (context.path_format, method.lower())
        for context in iter_route_contexts(app.routes)
        if isinstance(context.route, APIRoute) and not _takes_key(context.route.dependant)
        for method in context.methods
    ]


def _veil_errors(schema: dict[str, Any]) -> None:
    """Declare Veil's error body where FastAPI declared its own 422 (a route that lists no 422
    of its own but takes parameters)."""
    meaning, generic = MEANING[422]
    invalid = {
        "description": meaning,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorBody"},
                "example": {"error": generic.model_dump()},
            }
        },
    }
    for operation in (op for path in schema["paths"].values() for op in path.values()):
        declared = operation.get("responses", {}).get("422", {})
        media = declared.get("content", {}).get("application/json", {})
        if media.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
            operation["responses"]["422"] = invalid
    for name in FASTAPI_ERRORS:
        schema.get("components", {}).get("schemas", {}).pop(name, None)


def install(app: FastAPI) -> None:
    """Serve GET /docs, and declare the bearer scheme on the app's OpenAPI document."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI's own caches the document in app.openapi_schema; this marks that same dict.
        schema = plain()
        if "security" not in schema:
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
            schema["security"] = [{"bearer": []}]
            for path, method in _public(app):
                operation = schema["paths"].get(path, {}).get(method)
                if operation is not None:
                    operation["security"] = []
            _veil_errors(schema)
        return schema

    async def docs(_: Request) -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
