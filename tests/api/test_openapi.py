"""GET /openapi.json: generated from the route table, valid OpenAPI 3.1, and exactly the routes Chalice serves."""

from __future__ import annotations

import json
from typing import Any

from openapi_spec_validator import validate

import app as app_module
from chalicelib.api.openapi import openapi_document
from chalicelib.api.table import ROUTES
from tests.conftest import call

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document(ROUTES)
    assert document["openapi"] == "3.1.0"
    validate(document)  # openapi-spec-validator: raises on any violation


def test_the_document_names_exactly_the_routes_chalice_serves() -> None:
    """Every route but the console's files (``chalicelib/api/blueprints.py``: HTML and scripts, not API)."""
    served = {
        (method, path)
        for path, methods in app_module.app.routes.items()
        for method, entry in methods.items()
        if entry.view_function.__module__ != "chalicelib.api.console_routes"
    }
    assert ("GET", "/deployments") in served
    documented = set(operations(openapi_document(ROUTES)))
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented"


def test_each_operation_documents_its_answers_errors_and_codes() -> None:
    document = openapi_document(ROUTES)
    found = operations(document)
    for route in ROUTES.routes:
        operation = found[(route.method, route.path)]
        statuses = {int(s) for s in operation["responses"]}
        assert statuses == set(route.responses) | set(route.errors), route.name
        for status, codes in route.errors.items():
            schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema["allOf"][0] == {"$ref": "#/components/schemas/Error"}
            assert schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"] == list(codes)
        parameters = operation.get("parameters", [])
        assert ({"$ref": "#/components/parameters/IdempotencyKey"} in parameters) == route.idempotent, (
            route.name
        )
        assert (operation.get("security") == []) == (not route.authenticated), route.name
        if route.body is not None:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{route.body.__name__}"}
        if route.query is not None:
            assert {p["name"] for p in parameters if p.get("in") == "query"} == set(route.query.model_fields)
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearer": []}]
    error = document["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message", "hint", "details"}


def test_the_route_serves_the_generated_document_to_a_token_holder_only(client, tenant) -> None:
    served = call(client, "GET", "/openapi.json", tenant)
    assert served.status_code == 200
    assert json.loads(served.body) == openapi_document(ROUTES)
    anonymous = client.http.get("/openapi.json")
    assert anonymous.status_code == 401
    assert json.loads(anonymous.body)["error"]["code"] == "MISSING_TOKEN"
