"""A tenant never sees another tenant's records: other tenants' ids answer 404."""

from __future__ import annotations

import json

from tests.conftest import call, register_target


def test_tenants_see_only_their_own(client, tenant, other_tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    template = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
    created = call(
        client,
        "POST",
        "/deployments",
        tenant,
        {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "q",
            "template_body": template,
        },
    )
    deployment_id = json.loads(created.body)["deployment_id"]
    for method, path in [
        ("GET", f"/targets/{target['target_id']}"),
        ("DELETE", f"/targets/{target['target_id']}"),
        ("GET", f"/deployments/{deployment_id}"),
        ("GET", f"/deployments/{deployment_id}/events"),
        ("DELETE", f"/deployments/{deployment_id}"),
    ]:
        response = call(client, method, path, other_tenant)
        assert response.status_code == 404, (method, path, response.body)
    put = call(client, "PUT", f"/deployments/{deployment_id}", other_tenant, {"parameters": {}})
    assert put.status_code == 404
    stolen = call(
        client,
        "POST",
        "/deployments",
        other_tenant,
        {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "q2",
            "template_body": template,
        },
    )
    assert stolen.status_code == 404
    assert json.loads(call(client, "GET", "/targets", other_tenant).body)["items"] == []
    assert json.loads(call(client, "GET", "/deployments", other_tenant).body)["items"] == []
    mine = json.loads(call(client, "GET", "/deployments", tenant).body)["items"]
    assert [d["deployment_id"] for d in mine] == [deployment_id]


def test_next_token_of_another_tenant_is_refused(client, tenant, other_tenant):
    body = {
        "name": "x",
        "account_id": "111111111111",
        "role_arn": "arn:aws:iam::111111111111:role/NexusDeploymentRole",
        "regions": ["us-east-1"],
    }
    for _ in range(3):
        call(client, "POST", "/targets", tenant, body)
    token = json.loads(call(client, "GET", "/targets?limit=1", tenant).body)["next_token"]
    assert token
    response = call(client, "GET", f"/targets?next_token={token}", other_tenant)
    assert response.status_code == 400
