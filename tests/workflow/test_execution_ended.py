"""A workflow execution that ends without its own last step still ends its deployment or rollout.

Someone stops an execution (StopExecution), it times out, or it fails where no Catch applies: its last
step never runs, so nothing would record how its operation ended, free the stack's lock or release the
rollout item waiting for it. Step Functions puts an "Execution Status Change" event on the default bus
(the local AWS does too, localaws/execution_events.py); the template's rules run
DeploymentExecutionEnded and RolloutExecutionEnded, which end the record. These tests stop real
executions of the real definitions and read the outcome through the API.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.adapters.rollouts import DynamoRolloutStore
from chalicelib.domain.errors import DeployerError, TargetAccessError
from chalicelib.domain.model import ExecutionEnd, utc_now
from chalicelib.domain.rollouts import ItemStatus, RolloutStatus
from chalicelib.steps import rollout_handlers
from localaws import eventbridge
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from tests.conftest import (
    AwsCalls,
    Tenant,
    call,
    deploy,
    local_aws_for_app,
    register_target,
    running_executions,
    wait_for,
    wired,
)
from tests.support.faults import refused_once
from tests.support.polling import until
from tests.workflow.lifecycle_helpers import execution_status_event, locks, store, waiting_for_stack_event
from tests.workflow.rollout_helpers import NoExecution, wired_rollouts
from tests.workflow.test_rollouts import register_fleet, rollout_body, start

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})


def _stop(aws: LocalAws, execution_arn: str) -> None:
    aws.central_session().client("stepfunctions").stop_execution(
        executionArn=execution_arn, error="Operator", cause="stopped by the test"
    )


def _deployment(client: Client, tenant: Tenant, deployment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body)
    return body


def test_a_deployment_execution_stopped_while_it_waits_ends_its_operation_failed_and_frees_the_stack(
    aws_calls: AwsCalls,
) -> None:
    """Stopped in WaitForStackEvent, where a deployment spends its time: the execution ends ABORTED at
    once (not FAILED when the wait times out), and DeploymentExecutionEnded records the operation's end."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=30)) as aws,
        wired(aws) as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)
        deployment_id = deploy(client, tenant, target["target_id"], "stopped", QUEUE)
        until(
            lambda: _deployment(client, tenant, deployment_id)["operation"]["status"] == "IN_PROGRESS",
            timeout=30,
            what="the operation IN_PROGRESS",
        )
        (execution,) = running_executions(aws, aws.central.state_machine_arn)
        until(
            lambda: waiting_for_stack_event(aws, execution["executionArn"]),
            timeout=30,
            what="WaitForStackEvent",
        )
        key = f"{target['account_id']}#us-east-1#stopped"
        assert locks(aws).lock_holder(key) is not None
        running = store(aws).get_deployment(tenant.tenant_id, deployment_id)
        assert running is not None

        _stop(aws, execution["executionArn"])
        ended = wait_for(client, tenant, deployment_id, timeout=30)

        sfn = aws.central_session().client("stepfunctions")
        assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "ABORTED"
        assert ended["operation"]["status"] == "FAILED"
        assert ended["error"]["code"] == "EXECUTION_ABORTED"
        assert execution["executionArn"] in ended["error"]["message"]
        assert "target account" in ended["error"]["hint"]
        assert locks(aws).lock_holder(key) is None  # the stack is free, not held until the lease runs out

        # A step that was still running when the execution stopped (Lambda is not stopped with it)
        # can neither bring the operation back nor take the stack's lock again.
        with pytest.raises(DeployerError) as stale:
            store(aws).save_deployment(running)
        assert stale.value.code == "STALE_OPERATION"
        assert not locks(aws).renew_lock(key, running.operation.operation_id, 900)
        assert locks(aws).lock_holder(key) is None
        # The steps themselves, run again with the stopped execution's input: none calls CloudFormation
        # or takes the lock; each sends the execution (were it running) to its end.
        step_input = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
        assert aws_calls.count("cloudformation", "CreateStack") == 1  # the count sees the service's calls
        aws_calls.clear()
        assert aws.host.invoke("AcquireLock", step_input) == {}
        for name in ("StartStackOperation", "PollStack"):
            progress = aws.host.invoke(name, step_input)
            assert (progress["done"], progress["succeeded"]) == (True, False), name
        assert aws.host.invoke("AwaitStackEvent", {**step_input, "task_token": "t-gone"}) == {
            "waiting": False
        }
        assert aws_calls.count("cloudformation") == 0
        assert aws_calls.count("sts", "AssumeRole") == 0
        assert locks(aws).lock_holder(key) is None
        assert _deployment(client, tenant, deployment_id) == ended


@pytest.mark.parametrize("item_end_throttled", [False, True])
def test_a_stopped_item_deployment_fails_its_item_and_releases_the_rollout_at_once(
    item_end_throttled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollout item's deployment execution is stopped while it waits for its stack: under its own role
    (no way into target accounts), DeploymentExecutionEnded ends the operation and the item, and releases
    the item's StartItem task, so the rollout goes on now, not when that task's wait (330 s) runs out.
    With the item's end throttled once, the handler fails after ending the operation, and Lambda's retry
    (which finds the operation ended) ends the item and releases it."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=30)) as aws,
        wired(aws, NEXUS_EVENT_TIMEOUT_SECONDS="300") as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        fleet = register_fleet(client, tenant, aws, 1)  # one target, two regions: two items
        rollout_id = start(client, tenant, rollout_body(fleet, max_concurrent=1))["rollout_id"]
        (execution,) = until(
            lambda: running_executions(aws, aws.central.state_machine_arn),
            timeout=30,
            what="a running deployment execution",
        )
        until(
            lambda: waiting_for_stack_event(aws, execution["executionArn"]),
            timeout=30,
            what="WaitForStackEvent",
        )

        if item_end_throttled:
            # The item's FAILED end, which only DeploymentExecutionEnded writes here (StartItem's task
            # waits 330 s), refused once.
            end_item, refused = refused_once(
                DynamoRolloutStore.end_item,
                lambda store, tenant_id, item, **_: (
                    (item.rollout_id, item.index) if item.status is ItemStatus.FAILED else None
                ),
            )
            monkeypatch.setattr(DynamoRolloutStore, "end_item", end_item)
        stopped_at = time.monotonic()
        _stop(aws, execution["executionArn"])

        def ended() -> dict[str, Any] | None:
            view: dict[str, Any] = json.loads(
                call(client, "GET", f"/rollouts/{rollout_id}?limit=10", tenant).body
            )
            return view if view["status"] in ("FAILED", "SUCCEEDED", "CANCELLED") else None

        view = until(ended, timeout=90, what="the rollout to end")
        assert time.monotonic() - stopped_at < 90
        first = view["items"][0]
        assert first["status"] == "FAILED"
        assert first["error"]["code"] == "EXECUTION_ABORTED", first
        assert view["status"] == "FAILED"  # over its failure tolerance (0): the other item never started
        assert _nonzero(view["counts"]) == {"FAILED": 1, "CANCELLED": 1}
        operation = _deployment(client, tenant, first["deployment_id"])["operation"]
        assert operation["status"] == "FAILED"
        if item_end_throttled:
            assert refused == [(rollout_id, first["item_id"])]


def test_an_execution_whose_own_steps_recorded_the_failure_is_left_as_they_recorded_it(
    client: Client, tenant: Tenant, local_aws: LocalAws
) -> None:
    """A template CloudFormation refuses: the workflow's own RecordFailure ends the operation and the
    execution FAILED; the event that follows finds nothing left to record."""
    target = register_target(client, tenant, local_aws)
    bad = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"Nope": 1}}}})
    deployment_id = deploy(client, tenant, target["target_id"], "refused", bad)
    failed = wait_for(client, tenant, deployment_id)
    assert failed["operation"]["status"] == "FAILED"
    code = failed["error"]["code"]
    assert code != "EXECUTION_FAILED"
    # The FAILED event reaches DeploymentExecutionEnded through the template's rule; once EventBridge
    # has delivered everything, the record is as the workflow's own step left it.
    until(
        lambda: local_aws.host.invocations["DeploymentExecutionEnded"] >= 1 and eventbridge.idle(),
        timeout=30,
        what="DeploymentExecutionEnded invoked and EventBridge idle",
    )
    (execution,) = (
        local_aws.central_session()
        .client("stepfunctions")
        .list_executions(stateMachineArn=local_aws.central.state_machine_arn, statusFilter="FAILED")[
            "executions"
        ]
    )
    event = execution_status_event(local_aws, execution, "FAILED")
    assert local_aws.host.invoke("DeploymentExecutionEnded", event) == {"reconciled": False}
    again = _deployment(client, tenant, deployment_id)
    assert again["error"]["code"] == code
    assert again["operation"] == failed["operation"]


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {status: n for status, n in counts.items() if n}


def test_a_stopped_rollout_execution_ends_the_rollout_failed_and_its_running_item_still_ends() -> None:
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=4)) as aws,
        wired(aws, NEXUS_ALLOW_LOCAL_WEBHOOKS="1") as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        fleet = register_fleet(client, tenant, aws, 2)
        rollout_id = start(client, tenant, rollout_body(fleet, max_concurrent=1))["rollout_id"]

        def view() -> dict[str, Any]:
            found: dict[str, Any] = json.loads(call(client, "GET", f"/rollouts/{rollout_id}", tenant).body)
            return found

        until(lambda: view()["counts"].get("IN_PROGRESS", 0) == 1, timeout=30, what="one item IN_PROGRESS")
        (execution,) = running_executions(aws, aws.central.rollout_state_machine_arn)
        # A late event of an earlier run of this rollout (a resume or an apply starts another) is ignored.
        earlier = execution_status_event(aws, execution, "ABORTED")
        attempt = int(execution["executionArn"].rsplit("-", 1)[1])  # named <rollout_id>-<attempt>
        earlier["detail"]["executionArn"] = (
            execution["executionArn"].rsplit(":", 1)[0] + f":{rollout_id}-{attempt - 1}"
        )
        late = aws.host.invoke("RolloutExecutionEnded", earlier)
        assert late == {"reconciled": False, "ignored": "earlier-execution"}
        assert view()["status"] == "IN_PROGRESS"
        _stop(aws, execution["executionArn"])

        ended = until(view, ready=lambda v: v["status"] == "FAILED", timeout=30, what="the rollout FAILED")
        sfn = aws.central_session().client("stepfunctions")
        assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "ABORTED"
        assert ended["error"]["code"] == "EXECUTION_ABORTED"
        assert "rollout" in ended["error"]["message"]
        items = len(fleet) * 2  # each target's two regions
        # The running item's deployment runs on, and its last step records the item's end.
        settled = until(
            view,
            ready=lambda v: v["counts"].get("IN_PROGRESS", 0) == 0,
            timeout=30,
            what="no item IN_PROGRESS",
        )
        assert _nonzero(settled["counts"]) == {"SUCCEEDED": 1, "CANCELLED": items - 1}
        assert settled["status"] == "FAILED"
        until(  # its deployment's execution ends
            lambda: not running_executions(aws, aws.central.state_machine_arn),
            timeout=30,
            what="no running execution",
        )

        # A second delivery (EventBridge delivers at least once) changes nothing, and the deployment
        # workflow's function keeps only its own machine's events.
        event = execution_status_event(aws, execution, "ABORTED")
        assert aws.host.invoke("RolloutExecutionEnded", event) == {"reconciled": False}
        assert aws.host.invoke("DeploymentExecutionEnded", event) == {"ignored": "another-state-machine"}
        assert view() == settled


def test_events_that_are_not_the_services_own_are_dropped(
    client: Client, tenant: Tenant, local_aws: LocalAws
) -> None:
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target["target_id"], "dropped", QUEUE)
    done = wait_for(client, tenant, deployment_id)
    (execution,) = (
        local_aws.central_session()
        .client("stepfunctions")
        .list_executions(stateMachineArn=local_aws.central.state_machine_arn)["executions"]
    )
    event = execution_status_event(local_aws, execution, "ABORTED")
    foreign = {**event, "account": "999999999999"}
    assert local_aws.host.invoke("DeploymentExecutionEnded", foreign) == {"dropped": "foreign-account"}
    broken = {**event, "detail": {**event["detail"], "input": "not json"}}
    assert local_aws.host.invoke("DeploymentExecutionEnded", broken) == {"dropped": "malformed-detail"}
    # An ABORTED event for an execution whose operation had ended (a late or repeated event): nothing.
    assert local_aws.host.invoke("DeploymentExecutionEnded", event) == {"reconciled": False}
    assert _deployment(client, tenant, deployment_id)["operation"] == done["operation"]


def _unrun_rollout(
    aws: LocalAws, services: Any, client: Client
) -> tuple[Tenant, DynamoRolloutStore, str, str]:
    """A rollout over one target (two regions: two items) whose workflow never runs (``NoExecution``):
    its tenant, its store, its id and the ARN its execution has."""
    tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
    fleet = register_fleet(client, tenant, aws, 1)
    rollout_id = start(client, tenant, rollout_body(fleet))["rollout_id"]
    rollouts = DynamoRolloutStore(aws.central_session().resource("dynamodb").Table(aws.central.table_name))
    rollout = rollouts.get_rollout(tenant.tenant_id, rollout_id)
    assert rollout is not None
    arn = f"arn:aws:states:us-east-1:{aws.central.account_id}:execution:rollout:{rollout.execution_name}"
    return tenant, rollouts, rollout_id, arn


def _marked(rollouts: DynamoRolloutStore, rollout_id: str, index: int) -> None:
    """The item PENDING with a start's mark (``start_attempted_at``), as a start leaves it whose
    StartExecution was throttled (the step's Retry may still start it), or an earlier version's start."""
    item = rollouts.get_item(rollout_id, index)
    assert item is not None
    assert rollouts.save_item(replace(item, start_attempted_at=utc_now()))


def test_an_item_whose_start_may_still_run_is_spared_and_ends_by_its_own_step() -> None:
    """The rollout's execution ended while a StartItem's Retry could still run (Lambda is not stopped
    with it): that item is not cancelled as never started, since the step may still start it; a step
    that then runs finds the rollout ended and ends the item CANCELLED itself, saying why."""
    with (
        local_aws_for_app() as aws,
        wired_rollouts(aws, NoExecution()) as services,
        Client(app_module.app) as client,
    ):
        tenant, rollouts, rollout_id, arn = _unrun_rollout(aws, services, client)
        _marked(rollouts, rollout_id, 0)  # item 0's StartItem began a moment ago

        ended = services.rollouts.execution_ended(tenant.tenant_id, rollout_id, ExecutionEnd(arn, "ABORTED"))

        assert ended == {"reconciled": True, "recorded": "EXECUTION_ABORTED", "in_flight": 1}
        view = services.rollouts.get(tenant.tenant_id, rollout_id)
        assert view.rollout.status is RolloutStatus.FAILED
        assert [i.status for i in view.items] == [ItemStatus.PENDING, ItemStatus.CANCELLED]
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        assert rollout_handlers.start_item(services, event)["done"] is True
        (spared, _) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert spared.status is ItemStatus.CANCELLED
        assert spared.error is not None
        assert spared.error["message"].endswith(": not started: the rollout ended FAILED")


def test_a_rollout_whose_cancel_was_asked_ends_cancelled_when_its_execution_is_stopped() -> None:
    with (
        local_aws_for_app() as aws,
        wired_rollouts(aws, NoExecution()) as services,
        Client(app_module.app) as client,
    ):
        tenant, rollouts, rollout_id, arn = _unrun_rollout(aws, services, client)
        rollouts.request_cancel(tenant.tenant_id, rollout_id)

        ended = services.rollouts.execution_ended(tenant.tenant_id, rollout_id, ExecutionEnd(arn, "ABORTED"))

        assert ended == {"reconciled": True, "recorded": "CANCELLED", "in_flight": 0}
        view = services.rollouts.get(tenant.tenant_id, rollout_id)
        assert view.rollout.status is RolloutStatus.CANCELLED
        assert view.rollout.error is None
        assert {i.status for i in view.items} == {ItemStatus.CANCELLED}


def test_reading_a_stopped_rollout_ends_the_item_whose_own_end_could_not_be_recorded(
    monkeypatch: pytest.MonkeyPatch, aws_calls: AwsCalls
) -> None:
    """After the rollout's execution was stopped, only its deployment's last step ends a running item.
    When that step cannot record it (refused for good, say by a policy: the step must not fail the
    deployment for it; a throttle instead fails the step, whose Retry records it), no Map iteration is
    left to read it: reading the rollout ends it as its operation ended."""
    ends = {"refused": 0}
    real_end = DynamoRolloutStore.end_running_item

    def refused_once(self: DynamoRolloutStore, *args: Any) -> tuple[bool, Any]:
        if not ends["refused"]:
            ends["refused"] += 1
            raise TargetAccessError(
                "UpdateItem failed: AccessDeniedException: not authorized", code="ACCESS_DENIED"
            )
        return real_end(self, *args)

    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=3)) as aws,
        wired(aws, NEXUS_ALLOW_LOCAL_WEBHOOKS="1") as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        fleet = register_fleet(client, tenant, aws, 1)  # one target, two regions: two items
        rollout_id = start(client, tenant, rollout_body(fleet, max_concurrent=1))["rollout_id"]
        rollouts = DynamoRolloutStore(
            aws.central_session().resource("dynamodb").Table(aws.central.table_name)
        )

        def item(index: int) -> Any:
            return rollouts.get_item(rollout_id, index)

        until(lambda: item(0).status is ItemStatus.IN_PROGRESS, timeout=30, what="item 0 IN_PROGRESS")
        monkeypatch.setattr(DynamoRolloutStore, "end_running_item", refused_once)
        (execution,) = running_executions(aws, aws.central.rollout_state_machine_arn)
        _stop(aws, execution["executionArn"])
        until(
            lambda: (r := rollouts.get_rollout(tenant.tenant_id, rollout_id)) and r.status.value == "FAILED",
            timeout=30,
            what="the rollout FAILED",
        )
        until(
            lambda: not running_executions(aws, aws.central.state_machine_arn),
            timeout=60,
            what="no running execution",
        )
        deployment = _deployment(client, tenant, item(0).deployment_id)
        assert deployment["status"] == "ACTIVE", deployment
        assert ends["refused"] == 1
        assert item(0).status is ItemStatus.IN_PROGRESS  # nothing will end it but a read

        before = len(aws_calls.calls)
        view = json.loads(call(client, "GET", f"/rollouts/{rollout_id}", tenant).body)
        read = aws_calls.on_this_thread(before)  # not an event handler's meanwhile
        queries = read.count(("dynamodb", "Query"))

        assert _nonzero(view["counts"]) == {"SUCCEEDED": 1, "CANCELLED": 1}
        assert queries == 2, read  # the items read, then read again once settled
        assert item(0).status is ItemStatus.SUCCEEDED
        assert view["status"] == "FAILED"


def test_reading_a_stopped_rollout_cancels_a_spared_item_once_its_start_cannot_berunning_executions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An item spared by the rollout's end (its StartItem had begun) whose StartItem then died: past
    the time a StartItem can run, reading the rollout ends it CANCELLED, not PENDING for ever."""
    with (
        local_aws_for_app() as aws,
        wired_rollouts(aws, NoExecution()) as services,
        Client(app_module.app) as client,
    ):
        tenant, rollouts, rollout_id, arn = _unrun_rollout(aws, services, client)
        _marked(rollouts, rollout_id, 0)  # item 0's StartItem began, then died
        ended = services.rollouts.execution_ended(tenant.tenant_id, rollout_id, ExecutionEnd(arn, "ABORTED"))
        assert ended["in_flight"] == 1

        def read() -> dict[str, Any]:
            body: dict[str, Any] = json.loads(
                call(client, "GET", f"/rollouts/{rollout_id}?limit=10", tenant).body
            )
            return body

        assert _nonzero(read()["counts"]) == {"PENDING": 1, "CANCELLED": 1}  # it may still be starting
        # as if a minute had passed
        monkeypatch.setattr("chalicelib.service.rollouts.waves.START_SECONDS", -1)

        view = read()

        assert _nonzero(view["counts"]) == {"CANCELLED": 2}
        spared = view["items"][0]
        assert spared["error"]["code"] == "NOT_STARTED"
        assert spared["error"]["message"].endswith("not started: the rollout ended FAILED")
        stored = rollouts.get_item(rollout_id, 0)
        assert stored is not None
        assert stored.status is ItemStatus.CANCELLED
