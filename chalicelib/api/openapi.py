"""The OpenAPI 3.1 document, generated from the route table and its pydantic models (never by hand).

Every ``Route`` (``chalicelib/api/routing.py``) becomes one operation: its path ids (with their id
patterns), its query model's fields as query parameters, its body model as the JSON request body,
each declared answer model by status, and each error status with the error shape, its ``code``
limited to the codes the route declares for that status. Idempotent routes take the
``Idempotency-Key`` header and mark replays with ``Idempotent-Replayed``; every route but
``/health`` needs the bearer token. Schemas are pydantic's JSON Schema (2020-12, which OpenAPI 3.1
uses as is), hoisted into ``components/schemas``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.http import ID_PATTERNS, IDEMPOTENCY_KEY
from chalicelib.api.routing import REPLAYED_HEADER, Route, RouteTable

TITLE = "NexusAI Deployer API"
VERSION = "0.1.0"
REF = "#/components/schemas/{model}"
ERROR_TITLES = {
    400: "The request is malformed",
    401: "No valid bearer token",
    404: "Not found (or another tenant's)",
    409: "Conflicts with the current state",
    413: "Too large",
    422: "The request is invalid",
    500: "The service failed (answered with a request_id)",
    502: "AWS refused a call made for the request",
    503: "AWS is throttling or briefly unavailable: retry",
}
DESCRIPTION = (
    "Deploys CloudFormation stacks into many AWS accounts from one central account. Every route but "
    "`GET /health` needs `Authorization: Bearer <token>`; a token maps to one tenant, and another "
    "tenant's ids answer 404. Every 4xx and 5xx answer has the `Error` shape; each operation lists the "
    "`code`s it can answer per status. Writes accept an `Idempotency-Key` header."
)


def openapi_document(table: RouteTable) -> dict[str, Any]:
    schemas = _schemas(table)
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        path_item = paths.setdefault(route.path, {})
        if route.id_params:
            path_item["parameters"] = [_path_parameter(name) for name in route.id_params]
        path_item[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Retry safely: the same key and body replay the first answer (and start "
                    "one operation); the same key with another body answers 409 IDEMPOTENCY_KEY_REUSED.",
                    "schema": {"type": "string", "pattern": _anchored(IDEMPOTENCY_KEY.pattern)},
                }
            },
            "headers": {
                "IdempotentReplayed": {
                    "description": "`true` when this is the first answer to the Idempotency-Key, given again.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
        },
        "security": [{"bearer": []}],
    }


Mode = Literal["validation", "serialization"]


def _models(table: RouteTable) -> list[tuple[type[BaseModel], Mode]]:
    from chalicelib.api.answers import Error

    found: dict[tuple[type[BaseModel], Mode], None] = {(Error, "serialization"): None}
    for route in table.routes:
        for model in (route.body, route.query):
            if model is not None:
                found[(model, "validation")] = None
        for answer in route.answer_models().values():
            if answer is not None:
                found[(answer, "serialization")] = None
    return list(found)


def _schemas(table: RouteTable) -> dict[str, Any]:
    _, top = models_json_schema(_models(table), ref_template=REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _anchored(pattern: str) -> str:
    """A Python pattern as JSON Schema wants it: anchored at both ends (ECMA-262, no \\A \\Z)."""
    return "^" + pattern.removeprefix("^").removeprefix(r"\A").removesuffix("$").removesuffix(r"\Z") + "$"


def _path_parameter(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": "An id this API issued; any other value answers 404.",
        "schema": {"type": "string", "pattern": _anchored(ID_PATTERNS[name].pattern)},
    }


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    properties = schemas[model.__name__].get("properties", {})
    required = set(schemas[model.__name__].get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {key: value for key, value in schema.items() if key != "title"},
            **({"description": schema["description"]} if "description" in schema else {}),
        }
        for name, schema in properties.items()
    ]


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.path.split("/")[1]],
        "responses": {**_answers(route), **_errors(route)},
    }
    if route.description:
        operation["description"] = route.description
    parameters: list[dict[str, Any]] = []
    if route.query is not None:
        parameters.extend(_query_parameters(route.query, schemas))
    if route.idempotent:
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": not route.body_optional,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    if not route.authenticated:
        operation["security"] = []
    return operation


def _answers(route: Route) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for status, model in route.answer_models().items():
        answer: dict[str, Any] = {"description": _answer_description(status, model)}
        if model is not None:
            answer["content"] = {"application/json": {"schema": _ref(model)}}
        if route.idempotent:
            answer["headers"] = {REPLAYED_HEADER: {"$ref": "#/components/headers/IdempotentReplayed"}}
        found[str(status)] = answer
    return found


def _answer_description(status: int, model: type[BaseModel] | None) -> str:
    if model is None:
        return "Done; no body."
    return {201: "Created", 202: "Accepted: the work runs in the background"}.get(status, "OK")


def _errors(route: Route) -> dict[str, Any]:
    from chalicelib.api.answers import Error

    return {
        str(status): {
            "description": f"{ERROR_TITLES.get(status, 'Error')}: " + ", ".join(codes),
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            _ref(Error),
                            {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}},
                        ]
                    }
                }
            },
        }
        for status, codes in route.errors.items()
    }
