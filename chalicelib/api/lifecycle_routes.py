"""Stack lifecycle routes beyond create/update/delete: apply a plan, continue a rollback, cancel.

Why separate endpoints rather than flags on PUT: each one acts on a specific stack state (a computed
plan, UPDATE_ROLLBACK_FAILED, an update in progress) and is refused with 409 and the reason when the
deployment is not in it. Each handler: validate, one service call, dump.
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_response
from chalicelib.api.http import ALL_CONTENT_TYPES, Http
from chalicelib.api.schemas import ApplyPlan, ContinueRollback
from chalicelib.composition import Container
from chalicelib.domain.model import Deployment, Outcome


def accepted(deployment: Deployment) -> Response:
    """202 when an operation started; 200 when skip_unchanged found nothing to do (outcome SKIPPED)."""
    return json_response(200 if deployment.outcome is Outcome.SKIPPED else 202, deployment.public())


def lifecycle_blueprint(container: Container) -> Blueprint:
    bp = Blueprint(__name__)
    http = Http(bp, container)
    bearer, body, path_id, run = http.bearer, http.body, http.path_id, http.run
    tenant_and_services, idempotent = http.tenant_and_services, http.idempotent

    def optional_body() -> bool:
        return bool(bp.current_request.raw_body)

    @bp.route("/deployments/{deployment_id}/apply", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def apply_plan(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            request = body(ApplyPlan) if optional_body() else ApplyPlan()
            tenant, services = tenant_and_services(auth)
            return idempotent(
                tenant,
                services,
                {"deployment_id": did, **request.model_dump()},
                lambda: accepted(services.deployments.apply(tenant, did, request.config_hash)),
            )

        return run(handle)

    @bp.route(
        "/deployments/{deployment_id}/continue-rollback", methods=["POST"], content_types=ALL_CONTENT_TYPES
    )
    def continue_rollback(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            request = body(ContinueRollback) if optional_body() else ContinueRollback()
            tenant, services = tenant_and_services(auth)
            skip = tuple(dict.fromkeys(request.resources_to_skip))
            return idempotent(
                tenant,
                services,
                {"deployment_id": did, **request.model_dump()},
                lambda: accepted(services.deployments.continue_rollback(tenant, did, skip)),
            )

        return run(handle)

    @bp.route("/deployments/{deployment_id}/cancel", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def cancel_update(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            tenant, services = tenant_and_services(auth)
            return idempotent(
                tenant,
                services,
                {"deployment_id": did},
                lambda: json_response(202, services.deployments.cancel(tenant, did).public()),
            )

        return run(handle)

    return bp
