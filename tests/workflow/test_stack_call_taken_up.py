"""StartStackOperation made its stack call, then AWS throttled the write that records it (past
botocore's retries): the step's Retry runs it again and must recognise the call it made by the
ClientRequestToken on the stack's events, not refuse the stack's new status as someone else's doing.
Each test drives the API and the real .asl.json on the local AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.adapters.automation_store import NotifyingDeploymentStore
from localaws.cloudformation import StackSimulation, install
from tests.conftest import TARGET_ACCOUNT, call, register_target, stacks_in
from tests.support.faults import refused_once
from tests.workflow.lifecycle_helpers import (
    FAILING_SUBNET,
    QUEUE,
    accepted,
    cfn,
    create,
    put,
    rollback_failed,
    settle,
    with_resources,
)


def _record_refused_once(monkeypatch: pytest.MonkeyPatch, phase: str) -> list[Any]:
    """The record of StartStackOperation's call for ``phase`` fails once, throttled: the first save of the
    deployment in that phase with its operation running (no final event), which is that record (the
    store the service runs with is NotifyingDeploymentStore, whose save_deployment runs)."""
    save, refused = refused_once(
        NotifyingDeploymentStore.save_deployment,
        lambda store, deployment, final_event=None: (
            deployment.deployment_id if final_event is None and deployment.operation.phase == phase else None
        ),
    )
    monkeypatch.setattr(NotifyingDeploymentStore, "save_deployment", save)
    return refused


def test_a_continued_rollback_whose_record_was_throttled_is_taken_up_not_refused(
    client, tenant, local_aws, aws_calls, monkeypatch: pytest.MonkeyPatch
):
    did, _ = rollback_failed(client, tenant, local_aws)
    refused = _record_refused_once(monkeypatch, "executing")
    aws_calls.clear()
    accepted(
        call(client, "POST", f"/deployments/{did}/continue-rollback", tenant, {"resources_to_skip": ["Tab"]})
    )
    done = settle(client, tenant, did)
    assert refused == [did]  # the call was made, its record refused once
    assert done["operation"]["status"] == "SUCCEEDED", done["error"]
    assert done["stack_status"] == "UPDATE_ROLLBACK_COMPLETE"
    assert aws_calls.count("cloudformation", "ContinueUpdateRollback") == 1
    events = json.loads(call(client, "GET", f"/deployments/{did}/events", tenant).body)["items"]
    started = [e["message"] for e in events if e["status"] == "STARTED"]
    assert any("ContinueUpdateRollback started" in m for m in started)


def test_a_recreate_whose_delete_record_was_throttled_is_taken_up_not_refused(
    client, tenant, local_aws, aws_calls, monkeypatch: pytest.MonkeyPatch
):
    target = register_target(client, tenant, local_aws)
    broken = with_resources(QUEUE, Subnet={**FAILING_SUBNET, "DependsOn": "Q"})
    did = accepted(create(client, tenant, target, broken))["deployment_id"]
    failed = settle(client, tenant, did)
    assert failed["stack_status"] == "ROLLBACK_COMPLETE"

    refused = _record_refused_once(monkeypatch, "recreate_delete")
    aws_calls.clear()
    install(StackSimulation(stack_seconds=4))  # the retry finds the stack still DELETE_IN_PROGRESS
    try:
        accepted(put(client, tenant, did, template=QUEUE))
        done = settle(client, tenant, did, timeout=60)
    finally:
        install(StackSimulation(stack_seconds=0))
    assert refused == [did]
    assert done["status"] == "ACTIVE", done["error"]
    assert done["stack_status"] == "CREATE_COMPLETE"
    assert done["stack_id"] != failed["stack_id"]
    assert aws_calls.count("cloudformation", "DeleteStack") == 1
    assert aws_calls.count("cloudformation", "CreateStack") == 1
    assert [s["StackName"] for s in stacks_in(local_aws, TARGET_ACCOUNT)] == ["s"]
    old = cfn(local_aws).describe_stacks(StackName=failed["stack_id"])["Stacks"][0]
    assert old["StackStatus"] == "DELETE_COMPLETE"
