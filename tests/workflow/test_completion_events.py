"""Completion without polling, on the real definition: stack events release WaitForStackEvent.

The target accounts forward CloudFormation's "Stack Status Change" events to the central bus as the
bootstrap template's rule does (``create_target_role``); the local AWS emits them from its simulated
stacks and invokes the app's StackStatusChanged function through the central rule.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.adapters.dynamodb import DynamoDeploymentStore
from chalicelib.adapters.stepfunctions import StepFunctionsCallbacks
from chalicelib.adapters.waiters import DynamoCompletionWaiters
from chalicelib.domain.errors import TransientAwsError
from chalicelib.domain.model import DeploymentEvent, DeploymentStatus
from chalicelib.service.completion import StackRef
from chalicelib.service.ports import Signalled, StackStatusEvent
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from tests.conftest import (
    TARGET_ACCOUNT,
    AwsCalls,
    call,
    execution_history,
    local_aws_for_app,
    register_target,
    state_names,
    wait_for,
    wired,
)
from tests.support.faults import refused_once
from tests.support.polling import until
from tests.workflow.lifecycle_helpers import events_never_arrive, settle

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
TWO_QUEUES = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}, "R": {"Type": "AWS::SQS::Queue"}}})


def entered(history: list[dict[str, Any]]) -> list[str]:
    return state_names(history)


def timed_out(history: list[dict[str, Any]]) -> int:
    return sum(1 for e in history if e["type"] == "TaskTimedOut")


def deploy(client, tenant, target, template=QUEUE, method="POST", deployment_id=None):
    body = {"template_body": template}
    if method == "POST":
        body |= {"target_id": target["target_id"], "region": "us-east-1", "stack_name": "events"}
    path = "/deployments" if method == "POST" else f"/deployments/{deployment_id}"
    response = call(client, method, path, tenant, body)
    assert response.status_code == 202, response.body
    return json.loads(response.body)


def describe_stacks_of(aws_calls: AwsCalls) -> int:
    return aws_calls.count("cloudformation", "DescribeStacks")


def test_create_update_delete_end_by_stack_events_with_two_describe_stacks_each(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    aws_calls.clear()
    created = wait_for(client, tenant, deploy(client, tenant, target)["deployment_id"])
    assert created["status"] == "ACTIVE", created
    history = execution_history(local_aws, created["operation"]["operation_id"])
    states = entered(history)
    assert "WaitForStackEvent" in states, states
    assert "WaitForStack" not in states, states
    assert timed_out(history) == 0  # released by the event, not by the fallback
    assert len(states) <= 15
    assert describe_stacks_of(aws_calls) == 2

    deployment_id = created["deployment_id"]
    aws_calls.clear()
    deploy(client, tenant, target, TWO_QUEUES, "PUT", deployment_id)
    updated = wait_for(client, tenant, deployment_id)
    assert updated["operation"]["status"] == "SUCCEEDED", updated
    history = execution_history(local_aws, updated["operation"]["operation_id"])
    assert timed_out(history) == 0
    assert "WaitForStackEvent" in entered(history)
    assert describe_stacks_of(aws_calls) <= 2

    aws_calls.clear()
    assert call(client, "DELETE", f"/deployments/{deployment_id}", tenant).status_code == 202
    deleted = wait_for(client, tenant, deployment_id)
    assert deleted["status"] == "DELETED", deleted
    history = execution_history(local_aws, deleted["operation"]["operation_id"])
    assert timed_out(history) == 0
    assert "WaitForStackEvent" in entered(history)
    assert describe_stacks_of(aws_calls) == 2


def test_a_lost_completion_event_is_reconciled_after_the_wait_times_out():
    """No forwarding rule in the target account: no event ever arrives; one reconcile ends the operation."""
    with events_never_arrive(stack_seconds=0.5, event_timeout_seconds=1) as run:
        aws, client, tenant, target = run.aws, run.client, run.tenant, run.target
        done = wait_for(client, tenant, deploy(client, tenant, target)["deployment_id"])
        assert done["status"] == "ACTIVE", done
        history = execution_history(aws, done["operation"]["operation_id"])
        assert timed_out(history) == 1
        states = entered(history)
        assert states.count("WaitForStackEvent") == 1, states
        assert states.count("PollStack") == 1, states

        # The lost event marked the account and region: the next operation there polls instead of
        # waiting in vain, and the mark is the only thing that changed.
        updated = deploy(client, tenant, target, TWO_QUEUES, "PUT", done["deployment_id"])
        after = wait_for(client, tenant, updated["deployment_id"])
        assert after["operation"]["status"] == "SUCCEEDED", after
        history = execution_history(aws, after["operation"]["operation_id"])
        assert timed_out(history) == 0
        states = entered(history)
        assert "WaitForStackEvent" not in states, states
        assert "WaitForStack" in states, states


def test_events_lost_marks_expire_and_the_next_operation_waits_for_events_again():
    with local_aws_for_app() as aws, wired(aws) as services:
        table = aws.central_session().resource("dynamodb").Table(services.settings.table_name)
        now = [1_000_000.0]
        waiters = DynamoCompletionWaiters(table, clock=lambda: now[0])
        assert not waiters.events_lost(TARGET_ACCOUNT, "eu-west-1")
        waiters.mark_events_lost(TARGET_ACCOUNT, "eu-west-1", 3600)
        assert waiters.events_lost(TARGET_ACCOUNT, "eu-west-1")
        assert not waiters.events_lost(TARGET_ACCOUNT, "us-east-1")  # per region
        assert not waiters.events_lost("444444444444", "eu-west-1")  # per account
        now[0] += 3601
        assert not waiters.events_lost(TARGET_ACCOUNT, "eu-west-1")


def test_polling_stays_available_as_a_setting():
    with (
        local_aws_for_app() as aws,
        wired(aws, NEXUS_COMPLETION_MODE="poll") as services,
        Client(app_module.app) as client,
    ):
        from tests.conftest import Tenant

        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)
        done = wait_for(client, tenant, deploy(client, tenant, target)["deployment_id"])
        assert done["status"] == "ACTIVE", done
        states = entered(execution_history(aws, done["operation"]["operation_id"]))
        assert "WaitForStack" in states, states
        assert "WaitForStackEvent" not in states, states


def test_a_failed_create_reports_its_resource_after_events(client, tenant, local_aws):
    broken = json.dumps(
        {
            "Resources": {
                "Subnet": {
                    "Type": "AWS::EC2::Subnet",
                    "Properties": {"VpcId": "vpc-00000000deadbeef0", "CidrBlock": "10.0.0.0/24"},
                }
            }
        }
    )
    target = register_target(client, tenant, local_aws)
    done = wait_for(client, tenant, deploy(client, tenant, target, broken)["deployment_id"])
    assert done["status"] == DeploymentStatus.FAILED.value
    assert done["error"]["code"] == "STACK_CREATE_FAILED"
    assert "Subnet" in done["error"]["message"]
    history = execution_history(local_aws, done["operation"]["operation_id"])
    assert timed_out(history) == 0


# -- the handler, through chalice.test.Client ------------------------------------------------------


def stack_event(stack_id: str, status: str, token: str, account: str = TARGET_ACCOUNT) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"evt-{status}-{token}",
        "detail-type": "CloudFormation Stack Status Change",
        "source": "aws.cloudformation",
        "account": account,
        "time": "2026-11-28T12:00:00Z",
        "region": "us-east-1",
        "resources": [stack_id],
        "detail": {
            "stack-id": stack_id,
            "status-details": {"status": status, "status-reason": ""},
            "client-request-token": token,
        },
    }


STACK_ID = (
    f"arn:aws:cloudformation:us-east-1:{TARGET_ACCOUNT}:stack/events/0f1e2d3c-aaaa-bbbb-cccc-0123456789ab"
)


def invoke(aws: LocalAws, event: dict[str, Any]) -> dict[str, Any]:
    """The deployed StackStatusChanged function (its handler, under its role) on ``event``."""
    result: dict[str, Any] = aws.host.invoke("StackStatusChanged", event)
    return result


@pytest.mark.parametrize(
    "detail",
    [
        "not an object",
        {"stack-id": STACK_ID},
        {"stack-id": STACK_ID, "status-details": {"status": "lower_case"}},
        {"stack-id": "not-an-arn", "status-details": {"status": "CREATE_COMPLETE"}},
        {"stack-id": 42, "status-details": {"status": "CREATE_COMPLETE"}},
    ],
)
def test_malformed_stack_events_are_dropped(local_aws, services, detail):
    event = stack_event(STACK_ID, "CREATE_COMPLETE", "nexus-op-1") | {"detail": detail}
    assert invoke(local_aws, event) == {"dropped": "malformed-detail"}


def test_events_of_other_stacks_and_unsettled_statuses_are_ignored(local_aws, services):
    assert invoke(local_aws, stack_event(STACK_ID, "CREATE_IN_PROGRESS", "nexus-op-1")) == {
        "stack_event": "in-progress"
    }
    assert invoke(local_aws, stack_event(STACK_ID, "CREATE_COMPLETE", "Console-CreateStack-1")) == {
        "stack_event": "not-ours"
    }
    # Ours, settled, but nobody waits: kept for the waiter of that operation only.
    assert invoke(local_aws, stack_event(STACK_ID, "CREATE_COMPLETE", "nexus-op-1")) == {
        "stack_event": "recorded"
    }


def waiters_on(aws: LocalAws) -> DynamoCompletionWaiters:
    """The completion waiters on the deployed table, under the role of StackStatusChanged (the function
    whose events signal them)."""
    session = aws.role_session(aws.host.role_of("StackStatusChanged"))
    return DynamoCompletionWaiters(session.resource("dynamodb").Table(aws.central.table_name))


def test_a_waiter_and_its_event_meet_whichever_comes_first(local_aws):
    waiters = waiters_on(local_aws)
    key = StackRef.from_stack_id(STACK_ID).key  # type: ignore[union-attr]
    done = StackStatusEvent("nexus-op-1", "CREATE_COMPLETE")

    # Event first: recorded, then handed to the waiter of that operation, once.
    assert waiters.signal(key, done).task_token is None
    assert waiters.wait(key, "op-1", "task-1", ("nexus-op-1",)) == done
    assert waiters.wait(key, "op-1", "task-2", ("nexus-op-1",)) is None  # used up

    # Waiter first: the event takes its task token, once; a duplicate event finds none.
    assert waiters.signal(key, done).task_token == "task-2"
    assert waiters.signal(key, done).task_token is None

    # An earlier operation's (late) event never releases the next operation's waiter.
    assert waiters.wait(key, "op-2", "task-3", ("nexus-op-2",)) is None  # consumes the duplicate
    assert waiters.signal(key, StackStatusEvent("nexus-op-1", "UPDATE_COMPLETE")).task_token is None
    assert waiters.wake(key, "op-1") is None  # another operation's waiter is not woken
    assert waiters.wake(key, "op-2") == "task-3"


def test_a_stack_event_reads_the_log_keys_of_its_operations_waiter_and_no_other(local_aws):
    """The waiter's record keeps its operation's log keys; an event of that operation gets them from
    the write that takes the token or records the event, an event of another operation gets none."""
    waiters = waiters_on(local_aws)
    keys = {"tenant_id": "t-1", "deployment_id": "dep-1", "operation_id": "op-1", "correlation_id": "req-1"}
    done = StackStatusEvent("nexus-op-1", "CREATE_FAILED")
    rolled_back = StackStatusEvent("nexus-op-1", "ROLLBACK_COMPLETE")

    assert waiters.signal("s", done) == Signalled(None, {})  # no waiter yet: recorded, nobody's keys
    assert waiters.wait("s", "op-1", "task-1", ("nexus-op-1",), keys) == done
    assert waiters.signal("s", rolled_back) == Signalled("task-1", keys)  # taken
    assert waiters.signal("s", rolled_back) == Signalled(None, keys)  # recorded, for the same operation
    assert waiters.signal("s", StackStatusEvent("nexus-op-9", "DELETE_COMPLETE")) == Signalled(None, {})
    assert waiters.wait("s", "op-2", "task-2", ("nexus-op-2",)) is None  # without keys: none of op-1's left
    assert waiters.signal("s", StackStatusEvent("nexus-op-2", "UPDATE_COMPLETE")) == Signalled("task-2", {})


def cancel_a_running_update(
    stack_seconds: float, timeout: float = 60
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create a stack, update it, cancel the update while it runs: the deployment once its operation
    ended, and that operation's execution history."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=stack_seconds)) as aws,
        wired(aws, NEXUS_EVENT_TIMEOUT_SECONDS="60", NEXUS_LOCK_LEASE_SECONDS="120") as services,
        Client(app_module.app) as client,
    ):
        from tests.conftest import Tenant

        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)
        created = wait_for(client, tenant, deploy(client, tenant, target)["deployment_id"], timeout=60)
        deployment_id = created["deployment_id"]
        deploy(client, tenant, target, TWO_QUEUES, "PUT", deployment_id)
        cfn = aws.account_session(TARGET_ACCOUNT).client("cloudformation")
        until(
            lambda: cfn.describe_stacks(StackName="events")["Stacks"][0]["StackStatus"],
            ready=lambda status: status == "UPDATE_IN_PROGRESS",
            timeout=10,
            what="the stack UPDATE_IN_PROGRESS",
        )
        assert call(client, "POST", f"/deployments/{deployment_id}/cancel", tenant).status_code == 202
        done = settle(client, tenant, deployment_id, timeout=timeout)
        return done, execution_history(aws, done["operation"]["operation_id"])


def test_the_cancel_is_carried_out_before_the_update_would_end():
    done, history = cancel_a_running_update(stack_seconds=4)
    assert done["operation"]["status"] == "CANCELLED", done
    assert timed_out(history) == 0  # woken by the cancel, then by the rollback's event
    assert "cancel" in released_by(history), released_by(history)


def test_a_cancel_whose_bookkeeping_aws_throttled_is_still_carried_out_by_the_retry(
    monkeypatch: pytest.MonkeyPatch,
):
    """PollStack's CANCELLING line is throttled: the step's Retry finds the phase saved ("cancelling") and
    the update still running, sends CancelUpdateStack again (the same ClientRequestToken) and the update
    ends CANCELLED. (The cancel used to be sent before the phase was saved: the retry found the rollback
    running, sent nothing and waited for the update's own events, so the wait ran out and the update
    ended FAILED.) The stacks take 12 s, so that the update still runs when the Retry comes."""

    def cancelling(
        store: DynamoDeploymentStore, deployment_id: str, events: list[DeploymentEvent]
    ) -> str | None:
        return deployment_id if any(e.status == "CANCELLING" for e in events) else None

    append, refused = refused_once(DynamoDeploymentStore.append_events, cancelling)
    monkeypatch.setattr(DynamoDeploymentStore, "append_events", append)
    done, history = cancel_a_running_update(12, timeout=55)  # 60 s: the wait ran out
    assert refused == [done["deployment_id"]]
    assert done["operation"]["status"] == "CANCELLED", done
    assert timed_out(history) == 0


def released_by(history: list[dict[str, Any]]) -> list[str]:
    outputs = [
        json.loads(e["taskSucceededEventDetails"]["output"]) for e in history if e["type"] == "TaskSucceeded"
    ]
    return [o["released_by"] for o in outputs if isinstance(o, dict) and "released_by" in o]


def test_an_operation_end_that_names_its_item_releases_only_that_items_wait(local_aws):
    """The deployment's last step recorded rollout item A's end: it releases A's wait saying so
    (item_ended), never the wait of another item B that took up the same operation (B's iteration
    would then end with B unrecorded); B's wait ends by its timeout, and PollItem reads B."""
    from chalicelib.domain.rollouts import ItemRef
    from chalicelib.service.completion import CompletionService

    released: list[tuple[str, dict[str, Any]]] = []

    class Recorded:
        def release(self, task_token: str, output: dict[str, Any]) -> bool:
            released.append((task_token, output))
            return True

    completion = CompletionService(waiters_on(local_aws), Recorded())
    a, b = ItemRef("rol-1", 0), ItemRef("rol-2", 0)

    assert completion.await_operation("op-9", "task-b", b) is True
    assert completion.operation_ended("op-9", "SUCCEEDED", ended_item=a) is False  # not B's: kept
    assert released == []
    assert completion.await_operation("op-9", "task-a", a) is False  # A's news was kept for A
    assert released == [
        ("task-a", {"released_by": "operation-ended", "status": "SUCCEEDED", "item_ended": False})
    ]

    released.clear()
    assert completion.await_operation("op-8", "task-a", a) is True
    assert completion.operation_ended("op-8", "FAILED", ended_item=a) is True
    assert released == [
        ("task-a", {"released_by": "operation-ended", "status": "FAILED", "item_ended": True})
    ]
    # An end that names no item (its record could not be written) releases whoever waits, unended.
    released.clear()
    assert completion.await_operation("op-7", "task-b", b) is True
    assert completion.operation_ended("op-7", "SUCCEEDED") is True
    assert released[0][1]["item_ended"] is False


def test_an_event_whose_release_failed_releases_the_wait_on_the_handlers_retry(
    monkeypatch: pytest.MonkeyPatch,
):
    """StackStatusChanged takes the waiting task's token from its record, then SendTaskSuccess fails
    (throttled past the client's own retries): the token goes back on the record before the handler
    fails, and Lambda's asynchronous retry (1 s later here) takes it and releases the wait. Without
    that, the retry found no waiter and the operation waited out its 60 s timeout."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=0.5)) as aws,
        wired(aws, NEXUS_EVENT_TIMEOUT_SECONDS="60") as services,
        Client(app_module.app) as client,
    ):
        from tests.conftest import Tenant

        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws)
        # The release by the stack's event (StackStatusChanged's) is throttled once, no other release.
        release, refused = refused_once(
            StepFunctionsCallbacks.release,
            lambda callbacks, task_token, output: task_token if output["released_by"] == "event" else None,
        )
        monkeypatch.setattr(StepFunctionsCallbacks, "release", release)
        done = wait_for(client, tenant, deploy(client, tenant, target)["deployment_id"], timeout=30)
        assert done["status"] == "ACTIVE", done
        history = execution_history(aws, done["operation"]["operation_id"])
    assert len(refused) == 1
    assert timed_out(history) == 0  # released by the retried event, not by the wait's timeout
    assert released_by(history) == ["event"], released_by(history)


def test_a_token_given_back_never_replaces_a_waiter_that_registered_since(local_aws):
    waiters = waiters_on(local_aws)
    event = StackStatusEvent("nexus-op-1-create", "CREATE_COMPLETE")
    assert waiters.wait("k", "op-1", "task-1", (event.client_request_token,)) is None
    assert waiters.signal("k", event).task_token == "task-1"  # taken: no longer waiting
    assert waiters.restore("k", "task-1") is True  # its release failed: given back
    assert waiters.signal("k", event).task_token == "task-1"  # the retry takes it again
    assert waiters.wait("k", "op-1", "task-2", (event.client_request_token,)) is None  # a new wait
    assert waiters.restore("k", "task-1") is False  # a late give-back leaves the new waiter alone
    assert waiters.wake("k", "op-1") == "task-2"
    # ... and does not stand in for the new waiter once its token was taken in turn: the record is to
    # stay without a token, so that the next event is recorded rather than spent on a closed task.
    assert waiters.restore("k", "task-1") is False
    assert waiters.restore("k", "task-2") is True  # the last token taken may be given back
    assert waiters.restore("missing", "task-9") is False  # no record: nothing to give back to


def test_an_event_given_back_replaces_another_operations_news_but_not_newer_news_of_its_own(local_aws):
    waiters = waiters_on(local_aws)
    tokens = ("nexus-op-2-create", "nexus-op-2-create-recreate")
    mine, newer = StackStatusEvent(tokens[0], "CREATE_COMPLETE"), StackStatusEvent(tokens[1], "CREATE_FAILED")
    foreign = StackStatusEvent("nexus-op-1-delete", "DELETE_COMPLETE")
    assert waiters.signal("s", mine).task_token is None  # recorded: no waiter yet
    assert waiters.wait("s", "op-2", "task-a", tokens) == mine  # used up; say its release failed
    assert waiters.signal("s", foreign).task_token is None  # a late event of an earlier operation, recorded
    assert waiters.restore_event("s", mine, tokens) is True  # the stale news gives way
    assert waiters.wait("s", "op-2", "task-b", tokens) == mine  # the retry finds it
    assert waiters.wake("s", "op-2") == "task-b"
    assert waiters.signal("s", newer).task_token is None  # newer news of the same operation
    assert waiters.restore_event("s", mine, tokens) is False  # is kept
    assert waiters.wait("s", "op-2", "task-c", tokens) == newer


def test_a_recorded_event_whose_release_failed_is_found_again_by_the_waits_retry(local_aws):
    """The event came before its waiter: WaitForStackEvent's registration uses it up and releases its own
    task at once. When that SendTaskSuccess fails, the event is recorded again before the step fails, so
    the step's retry finds it and releases; without that the retry would wait out its timeout."""
    from chalicelib.service.completion import CompletionService

    released: list[tuple[str, dict[str, Any]]] = []

    class FailingOnce:
        def release(self, task_token: str, output: dict[str, Any]) -> bool:
            if not released:
                released.append(("refused", output))
                raise TransientAwsError("SendTaskSuccess failed: ThrottlingException: Rate exceeded")
            released.append((task_token, output))
            return True

    completion = CompletionService(waiters_on(local_aws), FailingOnce())
    stack = StackRef("111111111111", "us-east-1", "events")
    event = StackStatusEvent("nexus-op-5-create", "CREATE_COMPLETE")
    assert completion.stack_status_changed(stack, event) == "recorded"  # no waiter yet
    with pytest.raises(TransientAwsError):
        completion.await_stack(stack.key, "op-5", "task-5", (event.client_request_token,))
    # The retry of the step registers again and is released by the same recorded event, once.
    # (On AWS a retried task has a new token.)
    assert completion.await_stack(stack.key, "op-5", "task-5b", (event.client_request_token,)) is False
    assert released[1] == (
        "task-5b",
        {"released_by": "recorded-event", "status": "CREATE_COMPLETE", "item_ended": False},
    )
    assert completion.await_stack(stack.key, "op-5", "task-6", (event.client_request_token,)) is True


def test_an_event_that_finds_its_task_closed_is_kept_for_the_retried_wait(local_aws):
    """WaitForStackEvent parked token 1, then failed (a throttled read after parking); Step Functions
    closed that task and its retry parks token 2. An event arriving in between takes token 1, whose
    release is refused (the task is gone): the event is kept, so token 2 is released at once instead of
    waiting out its timeout."""
    from chalicelib.service.completion import CompletionService

    released: list[str] = []

    class Closing:
        def release(self, task_token: str, output: dict[str, Any]) -> bool:
            released.append(task_token)
            return task_token != "task-1"  # its task closed when its attempt failed

    completion = CompletionService(waiters_on(local_aws), Closing())
    stack = StackRef("111111111111", "us-east-1", "retried")
    event = StackStatusEvent("nexus-op-7-create", "CREATE_COMPLETE")
    tokens = (event.client_request_token,)
    assert completion.await_stack(stack.key, "op-7", "task-1", tokens) is True  # parked
    assert completion.stack_status_changed(stack, event) == "recorded"  # task 1 gone: the event is kept
    assert completion.await_stack(stack.key, "op-7", "task-2", tokens) is False  # released at once
    assert released == ["task-1", "task-2"]
