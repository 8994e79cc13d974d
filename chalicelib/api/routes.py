"""The core HTTP routes: targets and deployments. Each handler: validate, one service call, dump.

Parsing, auth, idempotency and the error mapping live in ``chalicelib/api/http.py``.
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_response
from chalicelib.api.http import ALL_CONTENT_TYPES, Http
from chalicelib.api.lifecycle_routes import accepted
from chalicelib.api.schemas import (
    DeleteQuery,
    DeploymentCreate,
    DeploymentQuery,
    DeploymentUpdate,
    PageQuery,
    TargetCreate,
)
from chalicelib.composition import Container
from chalicelib.domain.model import OperationMode
from chalicelib.service.deployments import DeploymentChange, NewDeployment
from chalicelib.service.notifications import NotificationRequest
from chalicelib.service.targets import NewTarget


def api_blueprint(container: Container) -> Blueprint:
    bp = Blueprint(__name__)
    http = Http(bp, container)
    bearer, body, query, path_id, run = http.bearer, http.body, http.query, http.path_id, http.run
    tenant_and_services, idempotent = http.tenant_and_services, http.idempotent

    @bp.route("/health", methods=["GET"])
    def health() -> Response:
        return json_response(200, {"status": "ok"})

    @bp.route("/targets", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def create_target() -> Response:
        def handle() -> Response:
            auth = bearer()
            new = body(TargetCreate)
            tenant, services = tenant_and_services(auth)
            target = NewTarget(
                new.name, new.account_id, new.role_arn, tuple(new.regions), new.permission_profile
            )
            return idempotent(
                tenant,
                services,
                new.model_dump(),
                lambda: json_response(201, services.targets.register(tenant, target).public()),
            )

        return run(handle)

    @bp.route("/targets", methods=["GET"])
    def list_targets() -> Response:
        def handle() -> Response:
            auth = bearer()
            q = query(PageQuery)
            tenant, services = tenant_and_services(auth)
            return json_response(200, services.targets.list(tenant, q.limit, q.next_token).public())

        return run(handle)

    @bp.route("/targets/{target_id}", methods=["GET"])
    def get_target(target_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            tid = path_id("tgt", target_id)
            tenant, services = tenant_and_services(auth)
            return json_response(200, services.targets.get(tenant, tid).public())

        return run(handle)

    @bp.route("/targets/{target_id}", methods=["DELETE"], content_types=ALL_CONTENT_TYPES)
    def delete_target(target_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            tid = path_id("tgt", target_id)
            tenant, services = tenant_and_services(auth)

            def produce() -> Response:
                services.targets.delete(tenant, tid)
                return Response(body="", status_code=204)

            return idempotent(tenant, services, {"target_id": tid}, produce)

        return run(handle)

    @bp.route("/deployments", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def create_deployment() -> Response:
        def handle() -> Response:
            auth = bearer()
            new = body(DeploymentCreate)
            tenant, services = tenant_and_services(auth)
            notify = new.notifications
            spec = NewDeployment(
                new.target_id,
                new.region,
                new.stack_name,
                new.template_body or "",
                dict(new.parameters),
                dict(new.tags),
                template_url=new.template_url,
                notify=NotificationRequest(notify.sns_topic_arn, notify.webhook_url, notify.webhook_secret)
                if notify
                else None,
                adopt=new.adopt,
            )
            return idempotent(
                tenant,
                services,
                new.model_dump(),
                lambda: accepted(
                    services.deployments.create(
                        tenant, spec, skip_unchanged=new.skip_unchanged, mode=OperationMode(new.mode)
                    )
                ),
            )

        return run(handle)

    @bp.route("/deployments", methods=["GET"])
    def list_deployments() -> Response:
        def handle() -> Response:
            auth = bearer()
            q = query(DeploymentQuery)
            tenant, services = tenant_and_services(auth)
            page = services.deployments.list(
                tenant,
                target_id=q.target_id,
                status=q.status.value if q.status else None,
                limit=q.limit,
                next_token=q.next_token,
            )
            return json_response(200, page.public())

        return run(handle)

    @bp.route("/deployments/{deployment_id}", methods=["GET"])
    def get_deployment(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            tenant, services = tenant_and_services(auth)
            return json_response(200, services.deployments.get(tenant, did).public())

        return run(handle)

    @bp.route("/deployments/{deployment_id}", methods=["PUT"], content_types=ALL_CONTENT_TYPES)
    def update_deployment(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            change = body(DeploymentUpdate)
            tenant, services = tenant_and_services(auth)
            spec = DeploymentChange(
                change.template_body,
                dict(change.parameters) if change.parameters is not None else None,
                dict(change.tags) if change.tags is not None else None,
            )
            return idempotent(
                tenant,
                services,
                change.model_dump(),
                lambda: accepted(
                    services.deployments.update(
                        tenant,
                        did,
                        spec,
                        skip_unchanged=change.skip_unchanged,
                        mode=OperationMode(change.mode),
                    )
                ),
            )

        return run(handle)

    @bp.route("/deployments/{deployment_id}", methods=["DELETE"], content_types=ALL_CONTENT_TYPES)
    def delete_deployment(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            retain = query(DeleteQuery).retained
            tenant, services = tenant_and_services(auth)
            return idempotent(
                tenant,
                services,
                {"deployment_id": did, "retain": list(retain)},
                lambda: json_response(202, services.deployments.delete(tenant, did, retain).public()),
            )

        return run(handle)

    @bp.route("/deployments/{deployment_id}/events", methods=["GET"])
    def deployment_events(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            q = query(PageQuery)
            tenant, services = tenant_and_services(auth)
            return json_response(
                200, services.deployments.events(tenant, did, q.limit, q.next_token).public()
            )

        return run(handle)

    return bp
