"""Generated malformed requests: always a 4xx with the error body, never a 5xx, a write or an AWS call.

Besides random bodies: a control character or unpaired surrogate in each text place of each route's
body (as a JSON escape or raw), line breaks where only one line belongs, nesting 2 to 3,000 deep in
each field, nested or poisoned page tokens on every listing, and poisoned query values.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from botocore.client import BaseClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.contract import check_answer

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
    response, calls = _call(client, token, route[0], route[1], body.encode("utf-8", "surrogatepass"))
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


# -- issue 13 A.1/A.2: nesting, surrogates, NUL and other control characters -----------------------

TGT = "tgt-" + "0" * 24
DEP = "dep-" + "0" * 24
ROL = "rol-" + "0" * 24
ROLE = "arn:aws:iam::111111111111:role/NexusDeploymentRole"
# A valid body per route, and the places in it that a caller fills with text. Every place is checked
# before the token's tenant is even looked up, so a refusal costs no AWS call at all.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/targets"): {"name": "n", "account_id": "111111111111", "role_arn": ROLE, "regions": ["us-east-1"]},
    ("PATCH", f"/targets/{TGT}"): {"name": "n", "regions": ["us-east-1"], "permission_profile": "default"},
    ("POST", "/deployments"): {
        "target_id": TGT, "region": "us-east-1", "stack_name": "s", "template_url": "s3://bucket/key",
        "parameters": {"P": "v"}, "tags": {"k": "v"},
        "notifications": {"webhook_url": "https://hooks.example.com/x", "webhook_secret": "s" * 20},
    },
    ("PUT", f"/deployments/{DEP}"): {"parameters": {"P": "v"}, "tags": {"k": "v"}},
    ("POST", "/rollouts"): {
        "stack_name": "s", "template_body": "{}", "parameters": {"P": "v"}, "tags": {"k": "v"},
        "targets": [{"target_id": TGT, "regions": ["us-east-1"]}],
        "strategy": {"max_concurrent": "10%", "region_order": ["us-east-1"]},
        "notifications": {"sns_topic_arn": "arn:aws:sns:us-east-1:111111111111:t"},
    },
    ("POST", f"/deployments/{DEP}/apply"): {"config_hash": "0" * 64},
    ("POST", f"/deployments/{DEP}/continue-rollback"): {"resources_to_skip": ["Queue"]},
}  # fmt: skip


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a string value, and to each key of a dict (as ("KEY", key))."""
    if isinstance(value, dict):
        found: list[tuple[Any, ...]] = []
        for key, item in value.items():
            found.append((*path, ("KEY", key)))
            found.extend(_places(item, (*path, key)))
        return found
    if isinstance(value, list):
        return [p for n, item in enumerate(value) for p in _places(item, (*path, n))]
    return [path] if isinstance(value, str) else []


def _with(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    """``body`` with the string (or dict key) at ``path`` replaced by ``new``."""
    copy = json.loads(json.dumps(body))
    *parents, last = path
    holder = copy
    for step in parents:
        holder = holder[step]
    if isinstance(last, tuple):  # a dict key
        holder[new] = holder.pop(last[1])
    else:
        holder[last] = new
    return copy


# A template is text of many lines, parsed by chalicelib/domain/templates.py once the tenant is known:
# only its surrogates are the body's business (test_surrogates_in_templates_are_refused).
PLACES = [
    (route, place) for route, body in BODIES.items() for place in _places(body) if place != ("template_body",)
]
# Control characters (C0 but tab, line feed and carriage return, which a parameter value may hold;
# DEL; C1) and unpaired surrogates: not one is accepted anywhere.
POISON = st.characters(codec=None, categories=["Cc", "Cs"], exclude_characters="\t\n\r")
LINE_BREAKS = st.sampled_from("\t\n\r")
ANSWER_MUST_NOT_HOLD = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@st.composite
def poisoned(draw: st.DrawFn) -> str:
    text = st.text(st.characters(codec="ascii", min_codepoint=0x20, max_codepoint=0x7E), max_size=6)
    return draw(text) + draw(POISON) + draw(text)


def _call(client: Any, token: str, method: str, path: str, body: bytes = b"") -> tuple[Any, list[str]]:
    calls: list[str] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: Any, operation: str, params: Any) -> Any:
        calls.append(operation)
        return original(self, operation, params)

    BaseClient._make_api_call = counting  # type: ignore[attr-defined]
    try:
        response = client.http.request(
            method,
            path,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            body=body,
        )
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
    check_answer(method, path.split("?")[0], response.status_code, response.body)
    return response, calls


def _refused_before_any_aws_call(response: Any, calls: list[str], what: Any) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, what, response.body[:300])
    error: dict[str, Any] = json.loads(response.body)["error"]
    assert set(error) == {"code", "message", "hint", "details"}
    assert calls == [], (calls, what)  # not even the token's lookup
    # The answer never carries back what the request was refused for.
    assert not ANSWER_MUST_NOT_HOLD.search(json.dumps(error, ensure_ascii=False)), error
    return error


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(PLACES), bad=poisoned(), raw=st.booleans())
# Found by this test: a target name's leading form feed (whitespace to str.strip) was stripped, not refused.
@example(where=(("POST", "/targets"), ("name",)), bad="\x0c0", raw=False)
@example(where=(("PATCH", f"/targets/{TGT}"), ("name",)), bad="\x1fn\x85", raw=True)
def test_control_characters_and_surrogates_are_refused_everywhere(module_client, where, bad, raw):
    client, services, _ = module_client
    (method, path), place = where
    body = _with(BODIES[(method, path)], place, bad)
    # As JSON escapes (ensure_ascii), or raw in the text (which JSON itself forbids for C0).
    text = json.dumps(body, ensure_ascii=not raw).encode("utf-8", "surrogatepass")
    response, calls = _call(client, _token(services), method, path, text)
    error = _refused_before_any_aws_call(response, calls, (method, path, place, bad))
    assert error["code"] in {"VALIDATION_FAILED", "MALFORMED_JSON"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(PLACES), breaks=LINE_BREAKS)
def test_line_breaks_only_in_parameter_values(module_client, where, breaks):
    """Tab, line feed and carriage return are refused in every one-line place (names, ids, tags, URLs,
    secrets, keys); a parameter value may hold them (a PEM certificate does)."""
    client, services, _ = module_client
    (method, path), place = where
    if place[:1] == ("parameters",) and not isinstance(place[-1], tuple):
        return  # checked in test_parameter_values_may_span_lines
    body = _with(BODIES[(method, path)], place, f"a{breaks}b")
    response, calls = _call(client, _token(services), method, path, json.dumps(body).encode())
    _refused_before_any_aws_call(response, calls, (method, path, place))


def test_parameter_values_may_span_lines(module_client):
    client, services, _ = module_client
    body = {
        **BODIES[("PUT", f"/deployments/{DEP}")],
        "parameters": {"Cert": "-----BEGIN\r\nabc\tdef\n-----END"},
    }
    response, _ = _call(client, _token(services), "PUT", f"/deployments/{DEP}", json.dumps(body).encode())
    assert response.status_code == 404  # valid: it got as far as looking the deployment up


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from([("POST", "/deployments"), ("PUT", f"/deployments/{DEP}"), ("POST", "/rollouts")]),
    surrogate=st.characters(codec=None, categories=["Cs"]),
    at=st.integers(0, 40),
)
def test_surrogates_in_templates_are_refused(module_client, route, surrogate, at):
    client, services, _ = module_client
    template = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    body = {**BODIES[route], "template_body": template[:at] + surrogate + template[at:]}
    body.pop("template_url", None)
    text = json.dumps(body).encode()
    response, calls = _call(client, _token(services), route[0], route[1], text)
    assert _refused_before_any_aws_call(response, calls, (route, at))["code"] == "MALFORMED_JSON"


def _nested(depth: int, kind: str) -> str:
    return ('{"a":' * depth + "1" + "}" * depth) if kind == "object" else ("[" * depth + "1" + "]" * depth)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from(PLACES),
    depth=st.one_of(st.integers(2, 40), st.integers(900, 3000)),
    kind=st.sampled_from(["array", "object"]),
)
def test_deep_nesting_in_every_field_is_refused(module_client, where, depth, kind):
    client, services, _ = module_client
    (method, path), place = where
    if isinstance(place[-1], tuple):
        place = (*place[:-1], place[-1][1])  # a key's place: nest its value
    marker = "\x01DEEP\x01"
    text = json.dumps(_with(BODIES[(method, path)], place, marker)).replace(
        json.dumps(marker), _nested(depth, kind)
    )
    response, calls = _call(client, _token(services), method, path, text.encode())
    error = _refused_before_any_aws_call(response, calls, (method, path, place, depth))
    if depth > 40:
        assert error["code"] == "BODY_TOO_DEEP"


def _token_of(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode("utf-8", "surrogatepass")).decode().rstrip("=")


def _quoted(value: str) -> str:
    """As a client puts it in a URL: UTF-8 (a lone surrogate as its 3 bytes), percent-encoded."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


LISTINGS = ["/targets", "/deployments", "/rollouts", f"/rollouts/{ROL}"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    listing=st.sampled_from(LISTINGS),
    token=st.one_of(
        st.integers(2, 1500).map(lambda d: _token_of(_nested(d, "array"))),
        st.integers(2, 1500).map(lambda d: _token_of(_nested(d, "object"))),
        st.builds(lambda bad: _token_of(json.dumps({"pk": bad, "sk": bad})), poisoned()),
        poisoned().map(_quoted),
    ),
)
def test_deep_or_poisoned_page_tokens_are_refused(module_client, listing, token):
    client, services, _ = module_client
    response, calls = _call(client, _token(services), "GET", f"{listing}?next_token={token}")
    assert 400 <= response.status_code < 500, (listing, token[:80], response.body[:300])
    assert json.loads(response.body)["error"]["code"] in {"INVALID_NEXT_TOKEN", "VALIDATION_FAILED"}
    assert set(calls) <= {"GetItem"}  # at most the token's tenant; never a Query


QUERIES = {
    "/deployments": ["target_id", "status", "stack_name", "account_id", "region", "limit"],
    "/rollouts": ["target_id", "status", "stack_name", "limit"],
    "/targets": ["limit"],
    "/permissions": ["profile"],
    f"/targets/{TGT}/bootstrap-template": ["part"],
    f"/deployments/{DEP}": [],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from([(path, name) for path, names in QUERIES.items() for name in names]),
    bad=st.one_of(
        poisoned(), st.sampled_from(["\u0661\u0662", "\uff11\uff12", " 12", "12\n", "1_2", "us-east-1\n"])
    ),
)
def test_poisoned_query_values_are_refused_before_any_aws_call(module_client, where, bad):
    client, services, _ = module_client
    path, name = where
    response, calls = _call(client, _token(services), "GET", f"{path}?{name}={_quoted(bad)}")
    error = _refused_before_any_aws_call(response, calls, (path, name, bad))
    assert error["code"] == "VALIDATION_FAILED"


@pytest.mark.parametrize("name", ["prod\n", "\tprod", " prod\r\n"])
def test_a_target_name_with_a_line_break_or_tab_at_either_end_is_refused_not_stripped(module_client, name):
    """One-line text holds no tab or line break anywhere (test_line_breaks_only_in_parameter_values),
    at its ends included: a name is not silently changed (plain spaces around it are still stripped)."""
    client, services, _ = module_client
    body = _with(BODIES[("POST", "/targets")], ("name",), name)
    response, calls = _call(client, _token(services), "POST", "/targets", json.dumps(body).encode())
    _refused_before_any_aws_call(response, calls, ("POST", "/targets", name))
