"""Reading one HTTP request: the Authorization header's shape, path ids, the JSON body, the query string,
and the ``Idempotency-Key`` guard. Pure parsing (no I/O) except ``idempotent``.

``chalicelib/api/routing.py`` calls these in a fixed order for every route (see its docstring), so
no route function parses anything itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from chalice.app import Request
from pydantic import BaseModel

from chalicelib.domain.errors import InvalidRequest, NotFound, PayloadTooLarge, Unauthenticated
from chalicelib.domain.model import canonical_json
from chalicelib.domain.templates import MAX_TEMPLATE_BYTES
from chalicelib.service.ports import IdempotencyGuard

MAX_BODY_BYTES = 256 * 1024
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7E]{1,128}$")
# A path parameter's name gives the kind of id it holds; an id of another shape is answered 404.
ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "target_id": re.compile(r"^tgt-[0-9a-f]{24}$"),
    "deployment_id": re.compile(r"^dep-[0-9a-f]{24}$"),
    "rollout_id": re.compile(r"^rol-[0-9a-f]{24}$"),
}

ModelT = TypeVar("ModelT", bound=BaseModel)


def request_headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in (request.headers or {}).items()}


def bearer(request: Request) -> str:
    """The Authorization header, if it has the shape of a bearer token (the token is checked later)."""
    header = request_headers(request).get("authorization")
    if not header:
        raise Unauthenticated("The request has no Authorization header.", code="MISSING_TOKEN")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise Unauthenticated("The Authorization header is not 'Bearer <token>'.", code="INVALID_TOKEN")
    return header


def path_ids(params: Mapping[str, str]) -> dict[str, str]:
    for name, value in params.items():
        if not ID_PATTERNS[name].match(value):
            raise NotFound(f"{value!r} is not an id this API issued.", code="NOT_FOUND")
    return dict(params)


def body(request: Request, model: type[ModelT], *, optional: bool = False) -> ModelT:
    """The JSON object in the body, validated by ``model``; an empty body is ``model()`` if optional."""
    raw_body = request.raw_body or b""
    raw = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    if optional and not raw:
        return model()
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


def query(request: Request, model: type[ModelT], ids: Mapping[str, str]) -> ModelT:
    """The query string, validated by ``model``; its validators see the path ids as ``context["ids"]``."""
    return model.model_validate(dict(request.query_params or {}), context={"ids": ids})


def idempotent(
    request: Request,
    path: str,
    tenant: str,
    guard: IdempotencyGuard,
    payload: Any,
    produce: Callable[[], dict[str, Any]],
    lambda_context: Any = None,
) -> dict[str, Any]:
    """``produce()``'s record (``{"status", "body"}``), or, under an ``Idempotency-Key`` seen before on
    the same ``path`` (with its ids) with the same payload, the first request's record."""
    key = request_headers(request).get("idempotency-key")
    if key is None:
        return produce()
    if not IDEMPOTENCY_KEY.match(key):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 128 printable ASCII characters.", code="INVALID_IDEMPOTENCY_KEY"
        )
    scope = f"{tenant}:{request.method}:{path}:{key}"
    fingerprint = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
    return guard.run(scope, fingerprint, produce, lambda_context)
