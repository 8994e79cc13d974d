"""The real statemachine/deployment.asl.json, executed by moto, across a central and a target account."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import call, execution_history, register_target, stacks_in, wait_for

APP_STACK = (Path(__file__).resolve().parents[2] / "examples" / "app-stack.json").read_text()


def test_create_update_noop_delete(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    created = call(
        client,
        "POST",
        "/deployments",
        tenant,
        {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "app",
            "template_body": APP_STACK,
            "parameters": {"Environment": "dev"},
            "tags": {"team": "a"},
        },
    )
    assert created.status_code == 202, created.body
    deployment = json.loads(created.body)
    assert deployment["status"] == "PENDING"
    done = wait_for(client, tenant, deployment["deployment_id"])
    assert done["status"] == "ACTIVE", done
    assert done["stack_status"] == "CREATE_COMPLETE"
    assert done["outputs"]["Environment"] == "dev"
    assert set(done["outputs"]) >= {"BucketName", "QueueUrl", "TableName"}
    stacks = stacks_in(local_aws, "111111111111")
    assert [s["StackName"] for s in stacks] == ["app"]
    assert stacks_in(local_aws, "123456789012") == []

    updated = call(
        client,
        "PUT",
        f"/deployments/{deployment['deployment_id']}",
        tenant,
        {"parameters": {"Environment": "prod"}},
    )
    assert updated.status_code == 202, updated.body
    done = wait_for(client, tenant, deployment["deployment_id"])
    assert done["status"] == "ACTIVE", done
    assert done["operation"]["action"] == "update"
    assert done["outputs"]["Environment"] == "prod"

    noop = call(
        client,
        "PUT",
        f"/deployments/{deployment['deployment_id']}",
        tenant,
        {"parameters": {"Environment": "prod"}},
    )
    assert noop.status_code == 202, noop.body
    done = wait_for(client, tenant, deployment["deployment_id"])
    assert done["status"] == "ACTIVE", done
    assert done["operation"]["status"] == "SUCCEEDED"

    deleted = call(client, "DELETE", f"/deployments/{deployment['deployment_id']}", tenant)
    assert deleted.status_code == 202, deleted.body
    done = wait_for(client, tenant, deployment["deployment_id"])
    assert done["status"] == "DELETED", done
    assert stacks_in(local_aws, "111111111111") == []
    assert stacks_in(local_aws, "123456789012") == []
    history = execution_history(local_aws, done["operation"]["operation_id"])
    assert history[-1]["type"] == "ExecutionSucceeded"
