"""Request handling shared by every route module: auth, parsing, the error mapping, idempotency.

Order inside every request, so that no AWS call is made before the input is valid:
1. the Authorization header's shape (no I/O), 2. path ids, query and body (pydantic, no I/O),
3. the token's tenant (one DynamoDB read), 4. the service call, under the Idempotency-Key if sent.
Each route module builds one ``Http`` for its Blueprint and keeps its handlers to three lines.
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
from chalicelib.composition import Container, Services
from chalicelib.domain.errors import InvalidRequest, NotFound, PayloadTooLarge, Unauthenticated
from chalicelib.domain.model import canonical_json
from chalicelib.domain.templates import MAX_TEMPLATE_BYTES

MAX_BODY_BYTES = 256 * 1024
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7E]{1,128}$")
ID_PATTERNS = {
    "tgt": re.compile(r"^tgt-[0-9a-f]{24}$"),
    "dep": re.compile(r"^dep-[0-9a-f]{24}$"),
    "rol": re.compile(r"^rol-[0-9a-f]{24}$"),
}
ALL_CONTENT_TYPES = ["*/*"]  # content is checked here, so a wrong one gets our error body, not Chalice's

ModelT = TypeVar("ModelT", bound=BaseModel)


class Http:
    def __init__(self, bp: Blueprint, container: Container) -> None:
        self.bp = bp
        self.container = container

    def request_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in (self.bp.current_request.headers or {}).items()}

    def bearer(self) -> str:
        header = self.request_headers().get("authorization")
        if not header:
            raise Unauthenticated("The request has no Authorization header.", code="MISSING_TOKEN")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise Unauthenticated("The Authorization header is not 'Bearer <token>'.", code="INVALID_TOKEN")
        return header

    def body(self, model: type[ModelT]) -> ModelT:
        raw_body = self.bp.current_request.raw_body or b""
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

    def query(self, model: type[ModelT]) -> ModelT:
        return model.model_validate(dict(self.bp.current_request.query_params or {}))

    def path_id(self, kind: str, value: str) -> str:
        if not ID_PATTERNS[kind].match(value):
            raise NotFound(f"{value!r} is not an id this API issued.", code="NOT_FOUND")
        return value

    def run(self, handler: Callable[[], Response]) -> Response:
        try:
            return handler()
        except Exception as error:  # noqa: BLE001 - the one place errors become HTTP answers
            return error_response(error)

    def tenant_and_services(self, authorization: str) -> tuple[str, Services]:
        services = self.container.get()
        return services.auth.tenant_for(authorization), services

    def idempotent(
        self, tenant: str, services: Services, payload: Any, produce: Callable[[], Response]
    ) -> Response:
        key = self.request_headers().get("idempotency-key")
        if key is None:
            return produce()
        if not IDEMPOTENCY_KEY.match(key):
            raise InvalidRequest(
                "Idempotency-Key must be 1 to 128 printable ASCII characters.", code="INVALID_IDEMPOTENCY_KEY"
            )
        request = self.bp.current_request
        scope = f"{tenant}:{request.method}:{request.path}:{key}"
        fingerprint = hashlib.sha256(canonical_json(payload).encode()).hexdigest()

        def as_record() -> dict[str, Any]:
            response = produce()
            return {
                "status": response.status_code,
                "body": json.loads(response.body) if response.body else None,
            }

        record = services.idempotency.run(scope, fingerprint, as_record, self.bp.lambda_context)
        return json_response(record["status"], record["body"])
