"""Targets through Chalice's test client: the external ID is the service's, never the caller's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import TARGET_ACCOUNT, call, register_target, wait_for

VALID = {
    "name": "team-a",
    "account_id": TARGET_ACCOUNT,
    "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/NexusDeploymentRole",
    "regions": ["us-east-1"],
}


def test_health_needs_no_token(client):
    response = client.http.get("/health")
    assert response.status_code == 200
    assert json.loads(response.body) == {"status": "ok"}


def test_register_returns_generated_external_id_and_exact_trust_policy(client, tenant, local_aws):
    first = json.loads(call(client, "POST", "/targets", tenant, VALID).body)
    second = json.loads(call(client, "POST", "/targets", tenant, {**VALID, "name": "team-b"}).body)
    assert len(first["external_id"]) >= 32
    assert first["external_id"] != second["external_id"]
    statement = first["trust_policy"]["Statement"][0]
    assert statement["Principal"] == {"AWS": local_aws.central.service_role_arn}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": first["external_id"]}}
    assert set(first) == {
        "target_id", "name", "account_id", "role_arn", "regions", "external_id", "trust_policy", "created_at",
        "permission_profile", "external_id_enforced", "external_id_checked_at",
    }  # fmt: skip
    assert first["external_id_enforced"] is None  # not tried yet
    fetched = json.loads(call(client, "GET", f"/targets/{first['target_id']}", tenant).body)
    assert fetched == first


def test_caller_cannot_choose_external_id(client, tenant):
    response = call(client, "POST", "/targets", tenant, {**VALID, "external_id": "mine-mine-mine"})
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "EXTERNAL_ID_NOT_ALLOWED"
    listing = json.loads(call(client, "GET", "/targets", tenant).body)
    assert listing["items"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account_id": "12345"}, "account_id"),
        ({"account_id": 111111111111}, "account_id"),
        ({"role_arn": "arn:aws:iam::111111111111:user/bob"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::222222222222:role/NexusDeploymentRole"}, "(body)"),
        ({"regions": ["us-moon-1"]}, "regions"),
        ({"regions": []}, "regions"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_invalid_target_bodies_are_422_with_the_field(client, tenant, change, field):
    response = call(client, "POST", "/targets", tenant, {**VALID, **change})
    assert response.status_code == 422, response.body
    error = json.loads(response.body)["error"]
    assert set(error) == {"code", "message", "hint", "details"}
    assert field in {d["field"] for d in error["details"]}


def test_list_paginates(client, tenant):
    for n in range(5):
        assert call(client, "POST", "/targets", tenant, {**VALID, "name": f"t{n}"}).status_code == 201
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        path = "/targets?limit=2" + (f"&next_token={token}" if token else "")
        page = json.loads(call(client, "GET", path, tenant).body)
        seen += [t["name"] for t in page["items"]]
        pages += 1
        token = page["next_token"]
        if not token:
            break
    assert sorted(seen) == [f"t{n}" for n in range(5)]
    assert pages == 3


def test_bad_next_token_is_400(client, tenant):
    response = call(client, "GET", "/targets?next_token=garbage", tenant)
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "INVALID_NEXT_TOKEN"


def test_delete_target_refused_while_it_has_live_deployments(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    template = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": "q",
        "template_body": template,
    }
    assert call(client, "POST", "/deployments", tenant, body).status_code == 202
    refused = call(client, "DELETE", f"/targets/{target['target_id']}", tenant)
    assert refused.status_code == 409
    assert json.loads(refused.body)["error"]["code"] == "TARGET_IN_USE"


def test_delete_unused_target(client, tenant):
    target = json.loads(call(client, "POST", "/targets", tenant, VALID).body)
    assert call(client, "DELETE", f"/targets/{target['target_id']}", tenant).status_code == 204
    assert call(client, "GET", f"/targets/{target['target_id']}", tenant).status_code == 404


def test_role_names_outside_the_services_pattern_are_refused(client, tenant):
    """On AWS the service's IAM policy can only assume roles named like TargetRoleNamePattern, which the
    template also hands the API (NEXUS_TARGET_ROLE_PATTERN): a role the service could never assume is
    refused when it registers."""
    refused = call(
        client, "POST", "/targets", tenant, {**VALID, "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/Admin"}
    )
    accepted = call(
        client,
        "POST",
        "/targets",
        tenant,
        {**VALID, "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/NexusDeploymentRole-eu"},
    )
    assert refused.status_code == 422
    error = json.loads(refused.body)["error"]
    assert error["code"] == "ROLE_NAME_NOT_ALLOWED"
    assert error["details"]["pattern"] == "NexusDeploymentRole*"
    assert accepted.status_code == 201


def test_patch_changes_name_regions_and_profile_never_the_external_id(client, tenant):
    target = json.loads(call(client, "POST", "/targets", tenant, VALID).body)
    path = f"/targets/{target['target_id']}"
    change = {
        "name": "team-a-renamed",
        "regions": ["us-east-1", "eu-west-1"],
        "permission_profile": "cloudformation-only",
    }
    patched = call(client, "PATCH", path, tenant, change)
    assert patched.status_code == 200, patched.body
    shown = json.loads(call(client, "GET", path, tenant).body)
    assert shown == {**target, **change}  # external_id, trust_policy, account, role: unchanged
    refused = call(client, "PATCH", path, tenant, {"external_id": "mine"})
    assert refused.status_code == 400
    assert json.loads(refused.body)["error"]["code"] == "EXTERNAL_ID_NOT_ALLOWED"
    bad_changes: list[dict[str, Any]] = [{}, {"account_id": "222222222222"}, {"regions": ["mars-east-1"]},
        {"regions": []}, {"permission_profile": "admin"}, {"name": ""}]  # fmt: skip
    for bad in bad_changes:
        assert call(client, "PATCH", path, tenant, bad).status_code == 422, bad
    other_partition = call(client, "PATCH", path, tenant, {"regions": ["cn-north-1"]})
    assert other_partition.status_code == 422
    assert json.loads(other_partition.body)["error"]["code"] == "REGION_NOT_IN_PARTITION"
    assert json.loads(call(client, "GET", path, tenant).body) == {**target, **change}
    assert call(client, "PATCH", "/targets/tgt-000000000000000000000000", tenant, change).status_code == 404


def test_patch_refuses_to_remove_a_region_with_live_deployments(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)  # us-east-1 and eu-west-1
    template = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    body = {
        "target_id": target["target_id"],
        "region": "eu-west-1",
        "stack_name": "q",
        "template_body": template,
    }
    deployment = json.loads(call(client, "POST", "/deployments", tenant, body).body)
    path = f"/targets/{target['target_id']}"
    refused = call(client, "PATCH", path, tenant, {"regions": ["us-east-1"]})
    assert refused.status_code == 409
    error = json.loads(refused.body)["error"]
    assert error["code"] == "REGION_IN_USE"
    assert error["details"] == {"region": "eu-west-1", "live_deployments": 1}
    assert call(client, "PATCH", path, tenant, {"regions": ["eu-west-1"]}).status_code == 200  # keeps it
    wait_for(client, tenant, deployment["deployment_id"])
    call(client, "DELETE", f"/deployments/{deployment['deployment_id']}", tenant)
    assert wait_for(client, tenant, deployment["deployment_id"])["status"] == "DELETED"
    moved = call(client, "PATCH", path, tenant, {"regions": ["us-east-1"]})
    assert moved.status_code == 200
    assert json.loads(moved.body)["regions"] == ["us-east-1"]
