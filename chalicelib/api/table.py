"""The API's one route table: every route module's routes, ``GET /health`` and ``GET /openapi.json``.

``app.py`` registers it; the OpenAPI document is generated from it (``chalicelib/api/openapi.py``). A
new route module adds its ``routes`` to ``ROUTES`` below (see ``chalicelib/api/routing.py`` for how to
write a route).

``GET /openapi.json`` needs the bearer token like every route but health: the document names every
route, error code and limit of the API, which is nobody's business without a token, and the tools that
read it (the CLI, the console, a client generator) have one.
"""

from __future__ import annotations

from chalicelib.api import (
    access_routes,
    deployment_routes,
    lifecycle_routes,
    onboarding_routes,
    rollout_routes,
    target_routes,
    template_routes,
)
from chalicelib.api.openapi import openapi_document
from chalicelib.api.routing import Call, Reply, RouteTable

health_routes = RouteTable()


@health_routes.get("/health", responses={200: "Health"}, authenticated=False)
def health(call: Call[None, None]) -> Reply:
    """Liveness: answers once the service is up; the only route without authentication."""
    return Reply(200, {"status": "ok"})


@health_routes.get("/openapi.json", responses={200: "OpenApiDocument"})
def openapi_json(call: Call[None, None]) -> Reply:
    """This API's OpenAPI 3.1 document, generated from its route table."""
    return Reply(200, openapi_document(ROUTES))


ROUTES = (
    health_routes
    + target_routes.routes
    + deployment_routes.routes
    + lifecycle_routes.routes
    + access_routes.routes
    + rollout_routes.routes
    + template_routes.routes
    + onboarding_routes.routes
)
