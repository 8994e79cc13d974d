"""FallbackReconciles counts lost events, not waits that timed out.

A wait for a stack's final event that times out is followed by a reconcile (PollStack, or PollItem for a
rollout item). That reconcile is a fallback for a lost event only when it finds what the event would have
said: the stack no longer in progress, or the item ended. A stack that simply runs longer than the wait
lost nothing, and counting it would make the metric (and its rising-rate alarm) follow the mix of stack
durations instead of lost events.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.adapters.metrics import InMemoryMetrics
from chalicelib.domain.metrics import Metric
from chalicelib.domain.model import age_seconds
from chalicelib.steps import rollout_handlers
from localaws.cloudformation import StackSimulation
from tests.conftest import (
    TARGET_ACCOUNT,
    Tenant,
    execution_history,
    local_aws_for_app,
    register_target,
    running_executions,
    state_names,
    wired,
)
from tests.support import polling
from tests.workflow.lifecycle_helpers import (
    FAILING_SUBNET,
    QUEUE,
    accepted,
    create,
    events_never_arrive,
    put,
    settle,
    waiting_for_stack_event,
    with_resources,
)
from tests.workflow.rollout_helpers import NoExecution, wired_rollouts
from tests.workflow.test_observability import emf_documents, totals
from tests.workflow.test_rollout_item_retry import one_item

LOST = {(("wait", "stack_event"),): 1}


def states_entered(aws: Any, deployment: dict[str, Any]) -> list[str]:
    history = execution_history(aws, deployment["operation"]["operation_id"])
    return state_names(history)


def timed_out_waits(aws: Any, deployment: dict[str, Any]) -> int:
    history = execution_history(aws, deployment["operation"]["operation_id"])
    return sum(1 for e in history if e["type"] == "TaskTimedOut")


def test_a_stack_longer_than_the_event_wait_is_no_lost_event(capsys: pytest.CaptureFixture[str]) -> None:
    """A 4 s stack outlasts the first 3 s wait and ends about 1 s into the second, which its event then
    releases. (On a loaded machine the first wait can end just as the stack does, its final event still
    on its way: the reconcile then finds the stack ended within half a wait and does not count it; see
    the next test but one.)"""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=4)) as aws,
        wired(aws, NEXUS_EVENT_TIMEOUT_SECONDS="3") as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)  # its stack events are forwarded
        created = settle(client, tenant, accepted(create(client, tenant, target, QUEUE))["deployment_id"])
        assert created["status"] == "ACTIVE", created
        assert timed_out_waits(aws, created) >= 1  # the stack outlasted at least one wait

        documents = emf_documents(capsys.readouterr().out)
        assert totals(documents, Metric.FALLBACK_RECONCILES) == {}
        # Nor was the account marked as losing events: the next operation waits for them again.
        two_queues = with_resources(QUEUE, R=QUEUE["Resources"]["Q"])
        updated = put(client, tenant, created["deployment_id"], template=two_queues)
        after = settle(client, tenant, accepted(updated)["deployment_id"])
        assert after["operation"]["status"] == "SUCCEEDED", after
        assert "WaitForStackEvent" in states_entered(aws, after)


def test_polls_after_a_timed_out_wait_are_no_fallback_once_the_operation_polls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A wait times out on a running stack, then the region is found losing events (by another
    operation): this one polls from then on. The error of its timed-out wait stays in its state through
    the polls (nothing clears it), yet none of those polls follows an event wait: the stack's end, whose
    event came, is no lost event."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=4)) as aws,
        wired(aws, NEXUS_EVENT_TIMEOUT_SECONDS="1") as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)  # events forwarded: none is lost
        started = accepted(create(client, tenant, target, QUEUE))
        (execution,) = polling.until(
            lambda: running_executions(aws, aws.central.state_machine_arn), what="the create's execution"
        )
        polling.until(
            lambda: waiting_for_stack_event(aws, execution["executionArn"]), what="its wait for the event"
        )
        services.completion.mark_events_lost(TARGET_ACCOUNT, "us-east-1", 3600)
        done = settle(client, tenant, started["deployment_id"])
        assert done["status"] == "ACTIVE", done
        states = states_entered(aws, done)
        assert states.count("WaitForStack") >= 1, states  # it did poll, after its timed-out wait
        assert timed_out_waits(aws, done) >= 1
        assert totals(emf_documents(capsys.readouterr().out), Metric.FALLBACK_RECONCILES) == {}


def test_a_failed_stack_whose_final_event_was_lost_counts_once_and_the_region_polls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reconcile finds the create failed: its final event (ROLLBACK_COMPLETE) was lost like any
    other, so it is counted, and the account and region poll from then on, as after a lost success.
    The stack ends as it is created, so it has ended more than half the 2 s wait before the reconcile."""
    with events_never_arrive(stack_seconds=0, event_timeout_seconds=2) as run:
        aws, client, tenant, target = run.aws, run.client, run.tenant, run.target
        broken = with_resources(QUEUE, Subnet=FAILING_SUBNET)
        failed = settle(client, tenant, accepted(create(client, tenant, target, broken))["deployment_id"])
        assert failed["status"] == "FAILED", failed
        assert failed["error"]["code"] == "STACK_CREATE_FAILED"
        assert timed_out_waits(aws, failed) == 1

        assert totals(emf_documents(capsys.readouterr().out), Metric.FALLBACK_RECONCILES) == LOST
        other = settle(
            client, tenant, accepted(create(client, tenant, target, QUEUE, stack_name="t"))["deployment_id"]
        )
        assert other["status"] == "ACTIVE", other
        states = states_entered(aws, other)
        assert "WaitForStack" in states, states
        assert "WaitForStackEvent" not in states, states
        assert totals(emf_documents(capsys.readouterr().out), Metric.FALLBACK_RECONCILES) == {}


def test_a_stack_that_ended_less_than_half_a_wait_before_the_reconcile_lost_no_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The race a loaded machine met: the wait times out just as the stack ends, its final event still
    on its way. The reconcile that follows finds the stack ended; it was no lost event while it is within
    half a wait of the stack's end (by the stack's final event), so it is not counted and the region is
    not marked as losing events. Here no event ever comes, and PollStack is invoked as the wait's Catch
    would hand it over, moments after the stack ended, once with a 60 s wait (not counted) and, for a
    second stack, with a 1 s wait once more than half of it has passed (counted, the region polls)."""
    with events_never_arrive(stack_seconds=0, event_timeout_seconds=60) as run:
        aws, services, client, tenant, target = run.aws, run.services, run.client, run.tenant, run.target
        sfn = aws.central_session().client("stepfunctions")

        def reconcile_after_timed_out_wait(stack_name: str, event_timeout: int) -> dict[str, Any]:
            started = accepted(create(client, tenant, target, QUEUE, stack_name=stack_name))
            arn = f"{aws.central.state_machine_arn.replace(':stateMachine:', ':execution:')}:"
            arn += started["operation"]["operation_id"]
            polling.until(lambda: waiting_for_stack_event(aws, arn), what="the wait for the stack's event")
            if event_timeout < 60:
                time.sleep(event_timeout / 2 + 0.1)  # more than half the wait since the stack ended
            execution_input = json.loads(sfn.describe_execution(executionArn=arn)["input"])
            waited = {"done": False, "wait_seconds": 1, "completion": "events"}
            released = {"Error": "States.Timeout", "Cause": "no event within the wait"}
            event = {
                **execution_input,
                "event_timeout_seconds": event_timeout,
                "progress": waited,
                "released": released,
            }
            progress: dict[str, Any] = aws.host.invoke("PollStack", event)
            sfn.stop_execution(executionArn=arn)  # its own wait would last the 60 s
            return progress

        assert reconcile_after_timed_out_wait("queue", 60)["done"] is True
        assert totals(emf_documents(capsys.readouterr().out), Metric.FALLBACK_RECONCILES) == {}
        assert not services.completion.events_lost(TARGET_ACCOUNT, "us-east-1")

        assert reconcile_after_timed_out_wait("t", 1)["done"] is True
        assert totals(emf_documents(capsys.readouterr().out), Metric.FALLBACK_RECONCILES) == LOST
        assert services.completion.events_lost(TARGET_ACCOUNT, "us-east-1")


def test_an_item_wait_that_times_out_counts_only_once_the_item_has_ended() -> None:
    """An item's wait (4 s here) that times out counts when the poll after it finds the item ended, its
    operation more than half a wait before: the release its last step sends was lost. Not while the
    operation runs, nor when it ended just now (its release may still be on its way)."""
    metrics = InMemoryMetrics()
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=2)) as aws,
        wired(aws, NEXUS_EVENT_TIMEOUT_SECONDS="4"),
        wired_rollouts(aws, NoExecution(), metrics=metrics) as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, aws)["rollout_id"]
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        assert rollout_handlers.start_item(services, event)["done"] is False
        # As WaitForItemEnd's Catch hands it to PollItem: the poll before it sent it to wait for the end.
        waited = {"wait_seconds": 1, "completion": "events"}
        timed_out = {**event, "released": {"Error": "States.Timeout"}, "progress": waited}

        # The wait timed out while the item's stack still runs: nothing was lost.
        progress = rollout_handlers.poll_item(services, timed_out)
        assert progress["done"] is False, progress
        assert metrics.total(Metric.FALLBACK_RECONCILES) == 0

        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        deployment = polling.until(
            lambda: services.deployments.get(tenant.tenant_id, str(item.deployment_id)),
            ready=lambda d: not d.operation.running,
            timeout=30,
            what="the item's operation ended",
        )
        # It ended just now (its last step ended the item too, and sent a release no wait was there to
        # take): the release of a wait that ran out as the operation ended may still be on its way, so
        # the poll that finds the item ended counts nothing.
        assert rollout_handlers.poll_item(services, timed_out)["done"] is True
        assert metrics.total(Metric.FALLBACK_RECONCILES) == 0
        # A wait that timed out more than half a wait (2 s) after the operation's end, and no release
        # came (none was registered): this reconcile is the fallback.
        time.sleep(max(0.0, 2.1 - age_seconds(str(deployment.operation.ended_at))))
        assert rollout_handlers.poll_item(services, timed_out)["done"] is True
        reconciles = [point for point in metrics.points if point[0] == "FallbackReconciles"]
        assert reconciles == [("FallbackReconciles", 1.0, {"wait": "item_end"})]
        # A poll of the plain timed wait (WaitForItem) still carries that timeout: it is no new one.
        stale = {**timed_out, "progress": {"wait_seconds": 1, "completion": "poll"}}
        assert rollout_handlers.poll_item(services, stale)["done"] is True
        assert metrics.total(Metric.FALLBACK_RECONCILES) == 1
        (ended,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert ended.status.value == "SUCCEEDED"


def test_an_event_wait_whose_operation_ended_while_it_ran_is_no_lambda_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wait's task times out (1 s) while its AwaitStackEvent still runs, its lease renewal held up
    (as botocore holds up a throttled call while it backs off). The Catch hands over to PollStack, the
    operation ends and frees its lock, and only then does the renewal reach DynamoDB: it finds the lock
    gone and the operation ended (its end recorded: the renewal goes on only then). Nothing is left to
    wait for, as when the step reads an ended operation first: it answers so, instead of raising
    STALE_OPERATION, a Lambda error that the errors alarm pages for (`make chaos` met it once in a
    100-item rollout under throttling)."""
    from chalicelib.adapters.dynamodb.locks import DynamoLockStore
    from localaws import lambda_runner

    renew = DynamoLockStore.renew_lock
    posted: dict[str, Any] = {}
    held_up: list[bool] = []  # per held-up renewal: whether its operation had ended when it went on

    def ended() -> bool:
        services, tenant_id = posted["services"], posted["tenant_id"]
        return not services.deployments.get(tenant_id, posted["deployment_id"]).operation.running

    def held_up_while_waiting(store: DynamoLockStore, key: str, owner: str, lease_seconds: int) -> bool:
        if threading.current_thread().name == "lambda-AwaitStackEvent" and not held_up:
            polling.until(lambda: "deployment_id" in posted, what="the create's answer")
            held_up.append(polling.until(ended, what="the operation's recorded end", timeout=20))
        return renew(store, key, owner, lease_seconds)

    monkeypatch.setattr(DynamoLockStore, "renew_lock", held_up_while_waiting)
    with (
        events_never_arrive(stack_seconds=0, event_timeout_seconds=1) as run,
        lambda_runner.recording() as calls,
    ):
        posted.update(services=run.services, tenant_id=run.tenant.tenant_id)
        posted["deployment_id"] = accepted(create(run.client, run.tenant, run.target, QUEUE))["deployment_id"]
        done = settle(run.client, run.tenant, posted["deployment_id"])
        assert done["status"] == "ACTIVE", done
        assert timed_out_waits(run.aws, done) == 1
        polling.until(lambda: any(c.function == "AwaitStackEvent" for c in calls), what="the wait's answer")
    assert held_up == [True]  # the renewal went on after the operation had ended, as in the race
    waits = [c for c in calls if c.function == "AwaitStackEvent"]
    assert [c.error for c in waits] == [None], waits
