"""The route table is the API: Chalice serves exactly its routes, and the answer check really checks."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

import app as app_module
from chalicelib.api.table import ROUTES
from tests.contract import check_answer

# The console's files (chalicelib/api/console_routes.py): HTML and scripts, not JSON API routes, so they
# are registered apart from the route table and stay out of its OpenAPI document.
CONSOLE_FILES = {("GET", "/console"), ("GET", "/console/{asset}")}


def test_chalice_serves_exactly_the_route_table_and_the_console_files() -> None:
    served = {(method, path) for path, methods in app_module.app.routes.items() for method in methods}
    table = {(route.method, route.path) for route in ROUTES.routes}
    assert served == table | CONSOLE_FILES
    assert not table & CONSOLE_FILES


def test_every_route_declares_answers_and_auth() -> None:
    for route in ROUTES.routes:
        assert route.responses, route.name
        for name, model in zip(route.responses.values(), route.answer_models().values(), strict=True):
            if name is not None:  # a name of chalicelib/api/answers.py, resolved to that model
                assert model is not None, route.name
                assert issubclass(model, BaseModel), route.name
                assert model.__name__ == name, route.name
        assert all(200 <= status < 300 for status in route.responses), route.name
        assert route.summary != route.name, f"{route.name} needs a docstring"
        assert route.authenticated == (route.path != "/health"), route.name
        assert 500 in route.errors
        if route.authenticated:
            assert route.errors[401] == ("MISSING_TOKEN", "INVALID_TOKEN")
        if route.idempotent:
            assert route.method != "GET", route.name


def _error(code: str) -> str:
    return json.dumps({"error": {"code": code, "message": "m", "hint": "h", "details": {}}})


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (409, _error("TARGET_IN_USE"), "does not declare"),  # a status get_target never answers
        (404, _error("STACK_LOCKED"), "not among"),  # a declared status with a foreign code
        (200, json.dumps({"target_id": "tgt-1"}), "validation error"),  # missing fields
    ],
)
def test_the_answer_check_refuses_what_the_table_does_not_declare(
    status: int, body: str, problem: str
) -> None:
    with pytest.raises(Exception, match=problem):
        check_answer("GET", "/targets/tgt-000000000000000000000000", status, body)


def test_an_answer_with_an_extra_key_fails_its_model() -> None:
    health = {"status": "ok", "version": "1"}
    with pytest.raises(Exception, match="Extra inputs are not permitted"):
        check_answer("GET", "/health", 200, json.dumps(health))
