"""The HTTP routes. Each handler: validate into a model, one service call, dump the result.

Order inside every request, so that no AWS call is made before the input is valid:
1. the Authorization header's shape (no I/O), 2. path ids, query and body (pydantic, no I/O),
3. the token's tenant (one DynamoDB read), 4. the service call, under the Idempotency-Key if sent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from chalice.app import Blueprint, Response
from pydantic import BaseModel

from chalicelib.api.errors import error_response, json_response
from chalicelib.api.schemas import (
    DeploymentCreate,
    DeploymentQuery,
    DeploymentUpdate,
    PageQuery,
    TargetCreate,
)
from chalicelib.composition import Container, Services
from chalicelib.domain.errors import InvalidRequest, NotFound, PayloadTooLarge, Unauthenticated
from chalicelib.domain.model import canonical_json
from chalicelib.domain.templates import MAX_TEMPLATE_BYTES
from chalicelib.service.deployments import DeploymentChange, NewDeployment
from chalicelib.service.targets import NewTarget

MAX_BODY_BYTES = 256 * 1024
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7E]{1,128}$")
ID_PATTERNS = {"tgt": re.compile(r"^tgt-[0-9a-f]{24}$"), "dep": re.compile(r"^dep-[0-9a-f]{24}$")}
ALL_CONTENT_TYPES = ["*/*"]  # content is checked here, so a wrong one gets our error body, not Chalice's

ModelT = TypeVar("ModelT", bound=BaseModel)


def api_blueprint(container: Container) -> Blueprint:
    bp = Blueprint(__name__)

    def request_headers() -> dict[str, str]:
        return {k.lower(): v for k, v in (bp.current_request.headers or {}).items()}

    def bearer() -> str:
        header = request_headers().get("authorization")
        if not header:
            raise Unauthenticated("The request has no Authorization header.", code="MISSING_TOKEN")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise Unauthenticated("The Authorization header is not 'Bearer <token>'.", code="INVALID_TOKEN")
        return header

    def body(model: type[ModelT]) -> ModelT:
        raw_body = bp.current_request.raw_body or b""
        raw = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"The request body is larger than {MAX_BODY_BYTES} bytes.", code="BODY_TOO_LARGE"
            )
        try:
            data = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidRequest(
                f"The request body is not valid JSON: {error}",
                code="MALFORMED_JSON",
                hint="Send a JSON object with Content-Type: application/json.",
            ) from None
        if not isinstance(data, dict):
            raise InvalidRequest(
                "The request body must be a JSON object.",
                code="MALFORMED_JSON",
                hint="Send a JSON object with Content-Type: application/json.",
            )
        if "external_id" in data:
            raise InvalidRequest(
                "external_id cannot be chosen by the caller.",
                code="EXTERNAL_ID_NOT_ALLOWED",
                hint="Leave external_id out: the service generates one per target and returns it.",
                details={"field": "external_id"},
            )
        template = data.get("template_body")
        if isinstance(template, str) and len(template.encode("utf-8")) > MAX_TEMPLATE_BYTES:
            raise PayloadTooLarge(
                f"template_body is {len(template.encode('utf-8'))} bytes; the limit is {MAX_TEMPLATE_BYTES}.",
                code="TEMPLATE_TOO_LARGE",
                details={"field": "template_body", "limit": MAX_TEMPLATE_BYTES},
            )
        return model.model_validate(data)

    def query(model: type[ModelT]) -> ModelT:
        return model.model_validate(dict(bp.current_request.query_params or {}))

    def path_id(kind: str, value: str) -> str:
        if not ID_PATTERNS[kind].match(value):
            raise NotFound(f"{value!r} is not an id this API issued.", code="NOT_FOUND")
        return value

    def run(handler: Callable[[], Response]) -> Response:
        try:
            return handler()
        except Exception as error:  # noqa: BLE001 - the one place errors become HTTP answers
            return error_response(error)

    def tenant_and_services(authorization: str) -> tuple[str, Services]:
        services = container.get()
        return services.auth.tenant_for(authorization), services

    def idempotent(
        tenant: str, services: Services, payload: Any, produce: Callable[[], Response]
    ) -> Response:
        key = request_headers().get("idempotency-key")
        if key is None:
            return produce()
        if not IDEMPOTENCY_KEY.match(key):
            raise InvalidRequest(
                "Idempotency-Key must be 1 to 128 printable ASCII characters.", code="INVALID_IDEMPOTENCY_KEY"
            )
        request = bp.current_request
        scope = f"{tenant}:{request.method}:{request.path}:{key}"
        fingerprint = hashlib.sha256(canonical_json(payload).encode()).hexdigest()

        def as_record() -> dict[str, Any]:
            response = produce()
            return {
                "status": response.status_code,
                "body": json.loads(response.body) if response.body else None,
            }

        record = services.idempotency.run(scope, fingerprint, as_record, bp.lambda_context)
        return json_response(record["status"], record["body"])

    @bp.route("/health", methods=["GET"])
    def health() -> Response:
        return json_response(200, {"status": "ok"})

    @bp.route("/targets", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def create_target() -> Response:
        def handle() -> Response:
            auth = bearer()
            new = body(TargetCreate)
            tenant, services = tenant_and_services(auth)
            target = NewTarget(new.name, new.account_id, new.role_arn, tuple(new.regions))
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
            spec = NewDeployment(
                new.target_id,
                new.region,
                new.stack_name,
                new.template_body,
                dict(new.parameters),
                dict(new.tags),
            )
            return idempotent(
                tenant,
                services,
                new.model_dump(),
                lambda: json_response(202, services.deployments.create(tenant, spec).public()),
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
                lambda: json_response(202, services.deployments.update(tenant, did, spec).public()),
            )

        return run(handle)

    @bp.route("/deployments/{deployment_id}", methods=["DELETE"], content_types=ALL_CONTENT_TYPES)
    def delete_deployment(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            tenant, services = tenant_and_services(auth)
            return idempotent(
                tenant,
                services,
                {"deployment_id": did},
                lambda: json_response(202, services.deployments.delete(tenant, did).public()),
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
