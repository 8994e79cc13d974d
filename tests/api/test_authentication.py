"""Every route but health needs a valid bearer token; one local AWS serves the whole module."""

from __future__ import annotations

import json
from typing import Any

import pytest

TEMPLATE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
# Each route with a body that is valid, so only the token decides the answer.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/targets", None),
    (
        "POST",
        "/targets",
        {
            "name": "x",
            "account_id": "111111111111",
            "role_arn": "arn:aws:iam::111111111111:role/NexusDeploymentRole",
            "regions": ["us-east-1"],
        },
    ),
    ("GET", "/targets/tgt-000000000000000000000000", None),
    ("DELETE", "/targets/tgt-000000000000000000000000", None),
    ("GET", "/deployments", None),
    (
        "POST",
        "/deployments",
        {
            "target_id": "tgt-000000000000000000000000",
            "region": "us-east-1",
            "stack_name": "s",
            "template_body": TEMPLATE,
        },
    ),
    ("GET", "/deployments/dep-000000000000000000000000", None),
    ("PUT", "/deployments/dep-000000000000000000000000", {"parameters": {}}),
    ("DELETE", "/deployments/dep-000000000000000000000000", None),
    ("GET", "/deployments/dep-000000000000000000000000/events", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer "])
def test_missing_or_wrong_token_is_401(module_client, method, path, body, authorization):
    client, _, _ = module_client
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    payload = json.dumps(body).encode() if body is not None else b""
    response = client.http.request(method, path, headers=headers, body=payload)
    assert response.status_code == 401
    error = json.loads(response.body)["error"]
    assert error["code"] in {"MISSING_TOKEN", "INVALID_TOKEN"}
    assert error["hint"]
