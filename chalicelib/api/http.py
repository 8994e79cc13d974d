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
from chalicelib.domain.text import first_surrogate, shown
from chalicelib.service.ports import IdempotencyGuard

MAX_BODY_BYTES = 256 * 1024
# No request body of this API nests deeper than 4 levels; a template is a string, parsed on its own.
MAX_BODY_DEPTH = 32
# Matched whole (fullmatch): ``$`` would let a trailing newline through.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7E]{1,128}")
# The body's fingerprint is stored with the key's first answer (DynamoDB). A body can hold secret values
# (a NoEcho parameter, a webhook's signing secret), and SHA-256 of a body whose other fields are known
# lets a secret be guessed at billions a second. scrypt (memory-hard: 16 MiB and about 60 ms of a full
# core a guess), salted with the key's scope, slows each guess to what the request itself paid once.
FINGERPRINT_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
# A path parameter's name gives the kind of id it holds; an id of another shape is answered 404.
ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "target_id": re.compile(r"tgt-[0-9a-f]{24}"),
    "deployment_id": re.compile(r"dep-[0-9a-f]{24}"),
    "rollout_id": re.compile(r"rol-[0-9a-f]{24}"),
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
        if not ID_PATTERNS[name].fullmatch(value):
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
    except RecursionError:
        raise _too_deep() from None
    _check_plain(data)
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


def _too_deep() -> InvalidRequest:
    return InvalidRequest(
        f"The request body nests deeper than {MAX_BODY_DEPTH} levels.",
        code="BODY_TOO_DEEP",
        hint="No field of this API nests that deep; send the documented shape.",
        details={"limit": MAX_BODY_DEPTH},
    )


def _check_plain(data: Any) -> None:
    """Refuse absurd nesting and unpaired surrogates anywhere in the body, walking it without recursion."""
    pending: list[tuple[Any, int, str]] = [(data, 1, "")]
    while pending:
        value, depth, where = pending.pop()
        if depth > MAX_BODY_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"{where}.{key}" if where else "(a key)")
                pending.append((item, depth + 1, f"{where}.{key}" if where else str(key)))
        elif isinstance(value, list):
            pending.extend((item, depth + 1, f"{where}[{n}]") for n, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, where or "(body)")


def _check_text(value: str, where: str) -> None:
    index = first_surrogate(value)
    if index is not None:
        where = shown(where[:200])
        raise InvalidRequest(
            f"The request body holds an unpaired surrogate escape in {where} (at index {index}): "
            "it is not Unicode text.",
            code="MALFORMED_JSON",
            hint="Send text as UTF-8; a \\uD800-\\uDFFF escape must be half of a surrogate pair.",
            details={"field": where},
        )


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
    precheck: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """``produce()``'s record (``{"status", "body"}``), or, under an ``Idempotency-Key`` seen before on
    the same ``path`` (with its ids) with the same payload, the first request's record. Under a key,
    ``precheck`` (the route's checks that need no AWS call) runs first: a request it refuses writes no
    record, and the same key with the same body is refused again the same way."""
    key = request_headers(request).get("idempotency-key")
    if key is None:
        return produce()
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 128 printable ASCII characters.", code="INVALID_IDEMPOTENCY_KEY"
        )
    if precheck is not None:
        precheck()
    scope = f"{tenant}:{request.method}:{path}:{key}"
    return guard.run(scope, body_fingerprint(scope, payload), produce, lambda_context)


def body_fingerprint(scope: str, payload: Any) -> str:
    """What an ``Idempotency-Key``'s first request is told apart by: a memory-hard hash of ``payload``."""
    return hashlib.scrypt(canonical_json(payload).encode(), salt=scope.encode(), **FINGERPRINT_SCRYPT).hex()
