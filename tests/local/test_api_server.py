"""The local HTTP server as its clients meet it, over real sockets: a burst of 200 requests, routes and
methods it does not have, malformed HTTP, and schemathesis on every operation of ``GET /openapi.json``.

Everything runs against a real local-mode process (``python -m localaws.run`` on free ports, see
``tests/support/local_mode.py``). No figure here is timed: latency is measured by ``make bench``
(section 6 of BENCHMARKS.md); these tests check that every request is answered, and how.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bench.http_load import Request, burst
from chalicelib.api.table import ROUTES
from localaws.demo import ROLE_NAME, AccountAdmin, Api, target_body, wait_deployment, wait_rollout
from tests.support.local_mode import LocalMode, local_mode

ROOT = Path(__file__).resolve().parents[2]
QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
# Cases per operation (Hypothesis stops sooner where the inputs run out: GET /health has none).
MAX_EXAMPLES = int(os.environ.get("NEXUS_SCHEMATHESIS_EXAMPLES", "60"))
MIN_CALLS = 50


@dataclass(frozen=True)
class Served:
    running: LocalMode
    api: Api
    token: str


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    token = "nxs_" + secrets.token_urlsafe(24)
    with local_mode(token) as running:
        yield Served(running, Api(running.api_url, token), token)


def _raw(url: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_200_concurrent_requests_are_all_answered_none_reset(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.token}"}
    reads = burst(served.running.api_url, [Request("GET", "/deployments", auth)] * 200)
    assert (reads.answered, reads.resets, dict(reads.errors)) == (200, 0, {})
    assert reads.statuses == {200: 200}
    writes = burst(
        served.running.api_url,
        [Request("POST", "/targets", auth, target_body(f"burst-{n}", "333333333333")) for n in range(50)],
    )
    assert (writes.answered, writes.resets, dict(writes.errors)) == (50, 0, {})
    assert writes.statuses == {201: 50}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "NOT_FOUND"),
        ("POST", "/targets/tgt-000000000000000000000000/nope", 404, "NOT_FOUND"),
        ("DELETE", "/health", 405, "METHOD_NOT_ALLOWED"),
        ("PUT", "/targets", 405, "METHOD_NOT_ALLOWED"),
        ("TRACE", "/deployments", 405, "METHOD_NOT_ALLOWED"),
        ("PROPFIND", "/nope", 404, "NOT_FOUND"),
    ],
)
def test_unknown_routes_and_methods_answer_the_error_shape_and_never_echo_the_token(
    served: Served, method: str, path: str, status: int, code: str
) -> None:
    secret = "nxs_" + secrets.token_urlsafe(24)
    got, headers, body = _raw(served.running.api_url, method, path, {"Authorization": f"Bearer {secret}"})
    assert got == status
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "hint", "details"}
    assert error["code"] == code
    assert secret not in body.decode() + json.dumps(headers)
    if status == 405:
        assert method not in headers["allow"]
        assert set(headers["allow"].split(", ")) <= {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.mark.parametrize(
    ("request_line", "status"),
    [(b"GET /a b HTTP/1.1\r\n\r\n", 400), (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414)],
)
def test_malformed_http_is_answered_in_the_error_shape(
    served: Served, request_line: bytes, status: int
) -> None:
    host, port = served.running.api_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(request_line)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode()
    assert json.loads(body)["error"]["code"] in {"BAD_REQUEST", "REQUEST_URI_TOO_LONG"}


def _seed(served: Served) -> dict[str, list[str]]:
    """Records for schemathesis to find: an ACTIVE deployment, a FAILED one (its target has no role),
    and a PLANNED rollout."""
    api, aws = served.api, served.running.aws_url
    with_role = api.ok("POST", "/targets", target_body("st-a", "111111111111"), status=201)
    template = api.ok("GET", f"/targets/{with_role['target_id']}/bootstrap-template", status=200)
    AccountAdmin(aws, "111111111111").deploy_bootstrap(template)  # the role, with the profile's permissions
    without_role = api.ok("POST", "/targets", target_body("st-b", "222222222222"), status=201)
    deployments = [
        api.ok(
            "POST",
            "/deployments",
            {
                "target_id": t["target_id"],
                "region": "us-east-1",
                "stack_name": "seed",
                "template_body": QUEUE,
            },
            status=202,
        )["deployment_id"]
        for t in (with_role, without_role)
    ]
    rollout = api.ok(
        "POST",
        "/rollouts",
        {
            "stack_name": "fleet",
            "template_body": QUEUE,
            "targets": [{"target_id": with_role["target_id"]}],
            "mode": "plan",
        },
        status=202,
    )["rollout_id"]
    assert [wait_deployment(api, d)["status"] for d in deployments] == ["ACTIVE", "FAILED"]
    assert wait_rollout(api, rollout)["status"] == "PLANNED"
    return {
        "target_id": [with_role["target_id"], without_role["target_id"]],
        "deployment_id": deployments,
        "rollout_id": [rollout],
    }


# One test per operation, each its own Hypothesis run: schemathesis' CLI shares one budget among all of
# them by weight, so a few would get a handful of cases while producers get hundreds.
OPERATIONS = sorted(f"{route.method} {route.path}" for route in ROUTES.routes)
NO_INPUT = {f"{r.method} {r.path}" for r in ROUTES.routes if not (r.body or r.query or r.id_params)}


@dataclass(frozen=True)
class Contract:
    served: Served
    schema: Any
    ids: dict[str, list[str]]


@pytest.fixture(scope="module")
def contract(served: Served) -> Contract:
    ids = _seed(served)
    auth = {"Authorization": f"Bearer {served.token}"}
    schema = schemathesis.openapi.from_url(f"{served.running.api_url}/openapi.json", headers=auth)
    return Contract(served, schema, ids)


def _real_ids(case: Any, ids: dict[str, list[str]], pick: int) -> None:
    """Put issued ids where the case has generated ones, for ``pick`` > 0: past the 404s, onto live records."""
    if pick == 0:
        return
    for name in list(case.path_parameters or {}):
        if ids.get(name):
            case.path_parameters[name] = ids[name][(pick - 1) % len(ids[name])]
    if isinstance(case.body, dict) and isinstance(case.body.get("target_id"), str):
        case.body["target_id"] = ids["target_id"][(pick - 1) % len(ids["target_id"])]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_schemathesis_finds_no_failure(contract: Contract, operation: str) -> None:
    """Schema-valid and schema-invalid cases of one operation: no 5xx, every status documented, every
    body as its schema says (an error's code among those the route declares), JSON content type."""
    method, path = operation.split(" ", 1)
    found = contract.schema[path][method]
    cases = st.one_of(found.as_strategy(GenerationMode.POSITIVE), found.as_strategy(GenerationMode.NEGATIVE))
    headers = {"Authorization": f"Bearer {contract.served.token}"}
    calls: list[int] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, pick=st.integers(0, 2))
    def run(case: Any, pick: int) -> None:
        _real_ids(case, contract.ids, pick)
        case.call_and_validate(base_url=contract.served.running.api_url, headers=headers, checks=CHECKS)
        calls.append(1)

    run()
    print(f"schemathesis {operation}: {len(calls)} cases")
    assert len(calls) >= (1 if operation in NO_INPUT else MIN_CALLS), len(calls)


CLIENT_BLOCK = re.compile(r"^```sh openapi-client\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def test_the_readmes_typed_client_command_works_against_the_served_document(
    served: Served, tmp_path: Path
) -> None:
    """The README's ``sh openapi-client`` block, run as written in bash, then its models used for real."""
    (block,) = CLIENT_BLOCK.findall((ROOT / "README.md").read_text())
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "API": served.running.api_url,
        "TOKEN": served.token,
    }
    ran = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    spec = importlib.util.spec_from_file_location("nexus_api_generated", tmp_path / "nexus_api.py")
    assert spec is not None
    assert spec.loader is not None
    models = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = models  # pydantic resolves the generated generic models through it
    try:
        spec.loader.exec_module(models)
    finally:
        del sys.modules[spec.name]
    new = models.TargetCreate(
        name="typed",
        account_id="444444444444",
        role_arn=f"arn:aws:iam::444444444444:role/{ROLE_NAME}",
        regions=["us-east-1"],
    )
    created = models.Target.model_validate(
        served.api.ok("POST", "/targets", new.model_dump(mode="json", exclude_unset=True), status=201)
    )
    page = models.TargetPage.model_validate(served.api.ok("GET", "/targets?limit=100", status=200))
    assert created.target_id in {t.target_id for t in page.items}
    assert created.external_id
