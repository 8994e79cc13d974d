"""The API's one route table: every route module's routes, and ``GET /health``.

``app.py`` registers it; the OpenAPI document is generated from it. A new route module adds its
``routes`` to ``ROUTES`` below (see ``chalicelib/api/routing.py`` for how to write a route).
"""

from __future__ import annotations

from chalicelib.api import (
    access_routes,
    answers,
    deployment_routes,
    lifecycle_routes,
    onboarding_routes,
    rollout_routes,
    target_routes,
    template_routes,
)
from chalicelib.api.routing import Call, Reply, RouteTable

health_routes = RouteTable()


@health_routes.get("/health", responses={200: answers.Health}, authenticated=False)
def health(call: Call[None, None]) -> Reply:
    """Liveness: answers once the service is up; the only route without authentication."""
    return Reply(200, {"status": "ok"})


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
