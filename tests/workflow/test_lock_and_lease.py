"""The per-stack lock itself, its lease, and the operation deadline, through the real deployment.asl.json.

The API refuses a second operation on a locked stack up front (STACK_LOCKED); these tests get past that
check (two executions reach the lock before either holds it), so that what they prove is the workflow's
own lock: a conditional write in DynamoDB.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.adapters.dynamodb import DynamoDeploymentStore, DynamoLockStore, SharedTable
from chalicelib.domain.errors import DeployerError
from chalicelib.domain.model import DeploymentStatus, ErrorInfo, OperationStatus
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from tests.conftest import (
    TARGET_ACCOUNT,
    AwsCalls,
    Tenant,
    call,
    create_target_role,
    local_aws_for_app,
    running_executions,
    stacks_in,
    wait_for,
    wired,
)
from tests.support.polling import until

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})


@pytest.fixture
def slow_aws():
    """Stacks that stay in progress for 6 s, so that operations overlap even on a loaded machine."""
    with local_aws_for_app(simulation=StackSimulation(stack_seconds=6)) as aws:
        yield aws


def target_in(client: Client, tenant: Tenant, name: str) -> dict[str, Any]:
    """A target of the one target account: two targets may name one account (two teams, one account)."""
    body = {
        "name": name,
        "account_id": TARGET_ACCOUNT,
        "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/NexusDeploymentRole",
        "regions": ["us-east-1"],
    }
    response = call(client, "POST", "/targets", tenant, body)
    assert response.status_code == 201, response.body
    return dict(json.loads(response.body))


def test_two_operations_reaching_the_lock_at_once_make_one_stack_call(
    slow_aws, aws_calls, monkeypatch: pytest.MonkeyPatch
):
    # Both executions reach the lock's conditional write at the same moment: the first waits there for
    # the second, so neither holds the lock when the API checks the second POST, and both POSTs pass
    # the API's STACK_LOCKED pre-check.
    barrier = threading.Barrier(2, timeout=20)
    original = DynamoLockStore.acquire_lock
    first_calls: set[str] = set()

    def together(self: DynamoLockStore, key: str, owner: str, lease_seconds: int) -> bool:
        if owner not in first_calls:
            first_calls.add(owner)
            barrier.wait()
        return original(self, key, owner, lease_seconds)

    monkeypatch.setattr(DynamoLockStore, "acquire_lock", together)
    with wired(slow_aws) as services, Client(app_module.app) as client:
        tenant = Tenant("t", services.auth.issue("t", "tests"))
        one, two = target_in(client, tenant, "team-one"), target_in(client, tenant, "team-two")
        # One role serves both targets here: the account trusts the service with either external ID.
        trust = json.loads(json.dumps(one["trust_policy"]))
        trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = [
            one["external_id"],
            two["external_id"],
        ]
        create_target_role(slow_aws, trust)
        aws_calls.clear()
        ids = []
        for target in (one, two):
            body = {"target_id": target["target_id"], "region": "us-east-1", "stack_name": "shared"}
            response = call(client, "POST", "/deployments", tenant, {**body, "template_body": QUEUE})
            assert response.status_code == 202, response.body
            ids.append(json.loads(response.body)["deployment_id"])
        outcomes = [wait_for(client, tenant, d, timeout=60) for d in ids]
    assert sorted(o["status"] for o in outcomes) == ["ACTIVE", "FAILED"], outcomes
    [failed] = [o for o in outcomes if o["status"] == "FAILED"]
    assert failed["error"]["code"] == "STACK_LOCKED"
    assert aws_calls.count("cloudformation", "CreateStack") == 1
    assert len(stacks_in(slow_aws, TARGET_ACCOUNT)) == 1


def lock_item(aws, key_suffix: str) -> dict[str, Any] | None:
    table = aws.central_session().resource("dynamodb").Table(aws.central.table_name)
    items = table.scan()["Items"]
    found = [i for i in items if str(i["pk"]).startswith("LOCK#") and str(i["pk"]).endswith(key_suffix)]
    return dict(found[0]) if found else None


def deploy_on_a_slow_stack(aws, **settings: str):
    """A deployment whose stack call was made and whose workflow now waits on the stack (poll mode):
    yields the test client, the tenant, the deployment id and a store on the service's table."""
    tuning = {"NEXUS_COMPLETION_MODE": "poll", "NEXUS_POLL_INITIAL_SECONDS": "1", **settings}
    with wired(aws, **tuning) as services, Client(app_module.app) as client:
        tenant = Tenant("t", services.auth.issue("t", "tests"))
        target = target_in(client, tenant, "team")
        create_target_role(aws, target["trust_policy"])
        body = {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "s",
            "template_body": QUEUE,
        }
        deployment_id = json.loads(call(client, "POST", "/deployments", tenant, body).body)["deployment_id"]
        until(  # recorded once CreateStack was sent
            lambda: json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body),
            ready=lambda shown: shown["stack_status"] == "CREATE_IN_PROGRESS",
            timeout=20,
            what="CREATE_IN_PROGRESS recorded",
        )
        store = DynamoDeploymentStore(
            SharedTable(aws.central_session().resource("dynamodb").Table(aws.central.table_name))
        )
        yield client, tenant, deployment_id, store


def test_a_lease_taken_over_stops_the_operation_without_another_stack_call(slow_aws, aws_calls):
    for client, tenant, deployment_id, _ in deploy_on_a_slow_stack(slow_aws):
        held = lock_item(slow_aws, "#s")
        assert held is not None
        # The lease ran out and another operation took the stack (what a lease expiry allows).
        table = slow_aws.central_session().resource("dynamodb").Table(slow_aws.central.table_name)
        table.put_item(Item={**held, "owner": "op-someone-else", "ttl": int(time.time()) + 900})
        aws_calls.clear()
        done = wait_for(client, tenant, deployment_id, timeout=30)
    assert done["status"] == "FAILED", done
    assert done["error"]["code"] == "LOCK_LOST"
    assert "op-someone-else" in done["error"]["message"]
    # No stack call after the takeover, and the other operation's lock is left alone.
    assert aws_calls.count("cloudformation") == 0
    assert (lock_item(slow_aws, "#s") or {}).get("owner") == "op-someone-else"


@pytest.mark.parametrize("step", ["PollStack", "AcquireLock"])
def test_a_lock_taken_again_while_the_end_was_recorded_is_given_back_by_the_step(
    step: str, slow_aws: LocalAws, aws_calls: AwsCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleavings a step's second look is for. Its lease ran out (the lock is gone, nobody took
    it); the step reads its operation still running, and the operation's end is recorded (its execution
    was stopped) between that read and the step's taking the lock. PollStack reads the record again
    after taking the lock; AcquireLock's save of IN_PROGRESS is refused. Either must give the lock back
    at once, before any stack call: RecordFailure, which would release it too, never runs for a stopped
    execution. The execution waits 60 s between polls, so the step runs here alone."""
    for _, tenant, deployment_id, store in deploy_on_a_slow_stack(
        slow_aws, NEXUS_POLL_INITIAL_SECONDS="60", NEXUS_POLL_MAX_SECONDS="60"
    ):
        _run_while_the_end_is_recorded(step, slow_aws, store, tenant, deployment_id, aws_calls, monkeypatch)


def _run_while_the_end_is_recorded(
    step: str,
    aws: LocalAws,
    store: DynamoDeploymentStore,
    tenant: Tenant,
    deployment_id: str,
    aws_calls: AwsCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sfn = aws.central_session().client("stepfunctions")
    (execution,) = running_executions(aws, aws.central.state_machine_arn)
    step_input = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    held = lock_item(aws, "#s")
    assert held is not None
    assert held["owner"] == step_input["operation_id"]
    table = aws.central_session().resource("dynamodb").Table(aws.central.table_name)
    table.delete_item(Key={"pk": held["pk"], "sk": held["sk"]})  # the lease ran out
    ended: list[str] = []
    original = DynamoLockStore.acquire_lock

    def end_recorded_meanwhile(self: DynamoLockStore, key: str, owner: str, lease_seconds: int) -> bool:
        taken = original(self, key, owner, lease_seconds)
        running = store.get_deployment(tenant.tenant_id, deployment_id)
        assert running is not None
        assert running.operation.running
        stopped = ErrorInfo("EXECUTION_ABORTED", "The execution was stopped.", "Look at the stack.")
        store.save_deployment(
            replace(
                running,
                status=DeploymentStatus.FAILED,
                operation=replace(running.operation, status=OperationStatus.FAILED),
                error=stopped,
            )
        )
        ended.append(owner)
        return taken

    monkeypatch.setattr(DynamoLockStore, "acquire_lock", end_recorded_meanwhile)
    aws_calls.clear()
    with pytest.raises(DeployerError) as stale:
        aws.host.invoke(step, step_input)
    assert stale.value.code == "STALE_OPERATION"
    assert ended == [step_input["operation_id"]]  # the lock was taken again, then the end came
    assert lock_item(aws, "#s") is None  # and the step gave it back
    assert aws_calls.count("cloudformation") == 0
    assert aws_calls.count("sts", "AssumeRole") == 0
    sfn.stop_execution(executionArn=execution["executionArn"])  # rather than wait out its 60 s poll


def test_an_operation_past_its_deadline_ends_operation_timed_out(slow_aws):
    for client, tenant, deployment_id, store in deploy_on_a_slow_stack(
        slow_aws, NEXUS_OPERATION_TIMEOUT_SECONDS="3600"
    ):
        # The record says the operation started two hours ago.
        current = store.get_deployment("t", deployment_id)
        assert current is not None
        past = (datetime.now(UTC) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
        store.save_deployment(replace(current, operation=replace(current.operation, started_at=past)))
        done = wait_for(client, tenant, deployment_id, timeout=30)
    assert done["status"] == "FAILED", done
    assert done["error"]["code"] == "OPERATION_TIMED_OUT"
    assert "3600 s" in done["error"]["message"]


def test_a_stack_that_ended_before_the_late_poll_is_recorded_as_it_ended(slow_aws):
    """The deadline is for a stack still in progress. One that ended while the workflow waited (its event
    lost, and this poll the reconcile after the wait's timeout) ended in time: PollStack, reading it
    past the deadline, records how it ended, not OPERATION_TIMED_OUT over a CREATE_COMPLETE stack."""
    for client, tenant, deployment_id, store in deploy_on_a_slow_stack(
        slow_aws, NEXUS_OPERATION_TIMEOUT_SECONDS="3600", NEXUS_POLL_INITIAL_SECONDS="12"
    ):
        current = store.get_deployment("t", deployment_id)
        assert current is not None
        past = (datetime.now(UTC) - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
        store.save_deployment(replace(current, operation=replace(current.operation, started_at=past)))
        done = wait_for(client, tenant, deployment_id, timeout=40)
    assert (done["status"], done["stack_status"], done["error"]) == ("ACTIVE", "CREATE_COMPLETE", None), done
