"""Hundreds of generated malformed bodies: always a 4xx with the error body, never a write or AWS call."""

from __future__ import annotations

import json
from typing import Any

from botocore.client import BaseClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["name", "account_id", "role_arn", "regions", "target_id", "region", "stack_name", "template_body",
          "parameters", "tags", "external_id"]  # fmt: skip
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_values, max_size=8).map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
    st.text(max_size=64),
)
ROUTES = [
    ("POST", "/targets"),
    ("POST", "/deployments"),
    ("PUT", "/deployments/dep-000000000000000000000000"),
]


def table_size(dynamodb: Any, table: str) -> int:
    return int(dynamodb.scan(TableName=table, Select="COUNT")["Count"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=bodies)
def test_malformed_bodies_never_5xx_never_write(module_client, route, body):
    client, services, aws = module_client
    token = _token(services)
    dynamodb = aws.central_session().client("dynamodb")
    before = table_size(dynamodb, aws.central.table_name)
    calls: list[str] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: Any, operation: str, params: Any) -> Any:
        calls.append(operation)
        return original(self, operation, params)

    BaseClient._make_api_call = counting  # type: ignore[attr-defined]
    try:
        response = client.http.request(
            route[0],
            route[1],
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            body=body.encode("utf-8", "surrogatepass"),
        )
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
    assert 400 <= response.status_code < 500, (response.status_code, body, response.body)
    error = json.loads(response.body)["error"]
    assert set(error) == {"code", "message", "hint", "details"}
    assert set(calls) <= {"GetItem"}  # at most the token lookup, after validation passed
    assert "PutItem" not in calls
    assert "StartExecution" not in calls
    assert table_size(dynamodb, aws.central.table_name) == before


_tokens: dict[int, str] = {}


def _token(services: Any) -> str:
    key = id(services)
    if key not in _tokens:
        _tokens[key] = services.auth.issue("fuzz-tenant", "fuzz")
    return _tokens[key]
