"""Faults end in a recorded, explained state: denied roles, failed stacks, repeated steps, no leaks."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from chalicelib.adapters.dynamodb import DynamoDeploymentStore, DynamoLockStore, SharedTable
from chalicelib.domain.model import DeploymentStatus
from chalicelib.service.deployments import DeploymentService, NewDeployment, PollSettings
from tests.conftest import (
    TARGET_ACCOUNT,
    call,
    create_target_role,
    execution_history,
    register_target,
    stacks_in,
    state_names,
    wait_for,
)

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
BROKEN = json.dumps(
    {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Subnet": {
                "Type": "AWS::EC2::Subnet",
                "DependsOn": "Queue",
                "Properties": {"VpcId": "vpc-00000000deadbeef0", "CidrBlock": "10.0.0.0/24"},
            },
        }
    }
)


def deploy(client, tenant, target, template=QUEUE, stack_name="s"):
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": stack_name,
        "template_body": template,
    }
    response = call(client, "POST", "/deployments", tenant, body)
    assert response.status_code == 202, response.body
    return json.loads(response.body)


def test_wrong_external_id_fails_after_one_assume_role_and_no_stack_call(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws, with_role=False)
    wrong = json.loads(json.dumps(target["trust_policy"]))
    wrong["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "somebody-elses-external-id"
    create_target_role(local_aws, wrong)
    aws_calls.clear()
    deployment = deploy(client, tenant, target)
    done = wait_for(client, tenant, deployment["deployment_id"])
    assert done["status"] == "FAILED"
    assert done["error"]["code"] == "ACCESS_DENIED"
    assert "sts:ExternalId" in done["error"]["hint"]
    assert "trust policy" in done["error"]["hint"]
    assert "not authorized to perform: sts:AssumeRole" in done["error"]["message"]
    assert aws_calls.count("sts", "AssumeRole") == 1
    assert aws_calls.count("cloudformation") == 0
    assert stacks_in(local_aws, TARGET_ACCOUNT) == []
    history = execution_history(local_aws, done["operation"]["operation_id"])
    assert history[-1]["type"] == "ExecutionFailed"
    # The stack is free again: a fixed role lets the next operation through.
    assert call(client, "DELETE", f"/deployments/{done['deployment_id']}", tenant).status_code == 202


def test_missing_role_fails_with_access_denied(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    done = wait_for(client, tenant, deploy(client, tenant, target)["deployment_id"])
    assert done["status"] == "FAILED"
    assert done["error"]["code"] == "ACCESS_DENIED"


def test_failed_create_names_the_resource_and_reason(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    done = wait_for(client, tenant, deploy(client, tenant, target, BROKEN)["deployment_id"])
    assert done["status"] == "FAILED", done
    assert done["stack_status"] == "ROLLBACK_COMPLETE"
    assert done["error"]["code"] == "STACK_CREATE_FAILED"
    assert "Subnet" in done["error"]["message"]
    assert "AWS::EC2::Subnet" in done["error"]["message"]
    assert "vpc-00000000deadbeef0" in done["error"]["message"]
    assert "the failed stack is deleted and created again" in done["error"]["hint"]
    events = json.loads(call(client, "GET", f"/deployments/{done['deployment_id']}/events", tenant).body)[
        "items"
    ]
    statuses = [(e["resource"], e["status"]) for e in events if e["source"] == "stack"]
    assert ("Subnet", "CREATE_FAILED") in statuses
    assert ("s", "ROLLBACK_COMPLETE") in statuses
    # A stack whose first create rolled back is deleted and created again by the next deploy (issue 5;
    # tests/workflow/test_lifecycle_actions.py covers it in depth).
    put = call(client, "PUT", f"/deployments/{done['deployment_id']}", tenant, {"template_body": QUEUE})
    assert put.status_code == 202
    again = wait_for(client, tenant, done["deployment_id"])
    assert again["status"] == "ACTIVE"
    assert again["stack_status"] == "CREATE_COMPLETE"


def test_unsupported_resource_fails_with_a_readable_reason(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    template = json.dumps({"Resources": {"Cdn": {"Type": "AWS::CloudFront::Distribution", "Properties": {}}}})
    done = wait_for(client, tenant, deploy(client, tenant, target, template)["deployment_id"])
    assert done["status"] == "FAILED"
    assert (
        "resource type AWS::CloudFront::Distribution is not emulated by the local AWS"
        in done["error"]["message"]
    )


def test_a_step_invoked_twice_makes_one_stack_operation(client, tenant, local_aws, services, aws_calls):
    """Lambda may run a step more than once; the stack call must happen once."""
    target = register_target(client, tenant, local_aws)
    shared = SharedTable(local_aws.central_session().resource("dynamodb").Table(local_aws.central.table_name))
    store = DynamoDeploymentStore(shared)

    class NotStarted:
        def start(self, execution_name, execution_input):
            return "not-started"  # the test drives the steps itself

    quiet = DeploymentService(
        store, DynamoLockStore(shared), NotStarted(), services.targets, PollSettings(0, 0)
    )
    deployment = quiet.create(
        tenant.tenant_id, NewDeployment(target["target_id"], "us-east-1", "twice", QUEUE, {}, {})
    )
    event = {
        "tenant_id": tenant.tenant_id,
        "deployment_id": deployment.deployment_id,
        "operation_id": deployment.operation.operation_id,
        "wait_seconds": 0,
        "max_wait_seconds": 0,
    }
    aws_calls.clear()
    local_aws.host.invoke("AcquireLock", event)
    first = local_aws.host.invoke("StartStackOperation", event)
    second = local_aws.host.invoke("StartStackOperation", event)
    assert (
        first
        == second
        == {
            "done": False,
            "succeeded": False,
            "wait_seconds": 0,
            "completion": "poll",  # an input without "completion" polls
            "event_timeout_seconds": 600,
        }
    )
    # And when the first attempt's record was lost, the repeat finds its own stack instead of creating one.
    lost = store.get_deployment(tenant.tenant_id, deployment.deployment_id)
    assert lost is not None
    from dataclasses import replace

    store.save_deployment(replace(lost, operation=replace(lost.operation, phase="pending")))
    local_aws.host.invoke("StartStackOperation", event)
    assert aws_calls.count("cloudformation", "CreateStack") == 1
    assert [s["StackName"] for s in stacks_in(local_aws, TARGET_ACCOUNT)] == ["twice"]
    polled = local_aws.host.invoke("PollStack", {**event, "progress": {"wait_seconds": 0}})
    assert polled["done"] is True
    final = store.get_deployment(tenant.tenant_id, deployment.deployment_id)
    assert final is not None
    assert final.status is DeploymentStatus.ACTIVE
    # PollStack run again after it finished the operation (Lambda retried it): no second final write.
    again = local_aws.host.invoke("PollStack", {**event, "progress": {"wait_seconds": 0}})
    assert (again["done"], again["succeeded"]) == (True, True)
    events = store.list_events(deployment.deployment_id, 100, None).items
    assert [e["status"] for e in events].count("SUCCEEDED") == 1, events
    assert store.get_deployment(tenant.tenant_id, deployment.deployment_id) == final


def test_no_credentials_in_dynamodb_execution_history_or_logs(
    client, tenant, local_aws, aws_calls, monkeypatch, caplog, capsys
):
    caplog.set_level(logging.DEBUG, logger="chalicelib")
    caplog.set_level(logging.INFO, logger="localaws")
    issued: list[str] = []
    from botocore.client import BaseClient

    counting = BaseClient._make_api_call  # type: ignore[attr-defined]

    def capture(self, operation_name, api_params):
        result = counting(self, operation_name, api_params)
        if operation_name == "AssumeRole":
            creds = result["Credentials"]
            issued.extend([creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]])
        return result

    monkeypatch.setattr(BaseClient, "_make_api_call", capture)
    target = register_target(client, tenant, local_aws)
    deployment = deploy(client, tenant, target)
    wait_for(client, tenant, deployment["deployment_id"])
    call(client, "PUT", f"/deployments/{deployment['deployment_id']}", tenant, {"tags": {"k": "v"}})
    wait_for(client, tenant, deployment["deployment_id"])
    call(client, "DELETE", f"/deployments/{deployment['deployment_id']}", tenant)
    done = wait_for(client, tenant, deployment["deployment_id"])
    assert done["status"] == "DELETED"
    assert len(issued) >= 9  # at least three steps per operation assumed the role
    table = local_aws.central_session().client("dynamodb")
    items = json.dumps(table.scan(TableName=local_aws.central.table_name)["Items"])
    sfn = local_aws.central_session().client("stepfunctions")
    histories = ""
    for execution in sfn.list_executions(stateMachineArn=local_aws.central.state_machine_arn)["executions"]:
        histories += json.dumps(execution_history(local_aws, execution["name"]), default=str)
    assert histories.count("ExecutionSucceeded") == 3
    logs = caplog.text + capsys.readouterr().out
    for haystack in (items, histories, logs):
        assert not re.search(r"(AKIA|ASIA)[A-Z0-9]{16}", haystack)
        for secret in issued:
            assert secret not in haystack


@pytest.mark.parametrize("limit", [1, 2])
def test_events_paginate_oldest_first(client, tenant, local_aws, limit):
    target = register_target(client, tenant, local_aws)
    done = wait_for(client, tenant, deploy(client, tenant, target)["deployment_id"])
    everything = json.loads(call(client, "GET", f"/deployments/{done['deployment_id']}/events", tenant).body)[
        "items"
    ]
    paged, token = [], None
    while True:
        suffix = f"?limit={limit}" + (f"&next_token={token}" if token else "")
        page = json.loads(
            call(client, "GET", f"/deployments/{done['deployment_id']}/events{suffix}", tenant).body
        )
        paged += page["items"]
        token = page["next_token"]
        if not token:
            break
    assert paged == everything
    assert len(everything) >= 5


def test_a_step_that_fails_after_the_operation_succeeded_ends_the_execution_as_the_operation(
    client, tenant, local_aws, monkeypatch
):
    """ReleaseLock refused for good (not a throttle: no Retry) after PollStack wrote the operation's
    success: the Catch runs RecordFailure, which does ReleaseLock's work and leaves the success as
    written, and the execution ends SUCCEEDED, as its operation did; the deployment takes its next
    operation. It ended FAILED, which the ExecutionsFailed alarm counts, for a deployment that was
    ACTIVE."""
    from chalicelib.domain.errors import TargetAccessError
    from chalicelib.steps import handlers

    release = handlers.release_lock
    refused: list[str] = []

    def refused_once(services, event):
        if not refused:
            refused.append(event["operation_id"])
            raise TargetAccessError("DeleteItem failed: AccessDeniedException", code="ACCESS_DENIED")
        return release(services, event)

    monkeypatch.setattr(handlers, "release_lock", refused_once)
    target = register_target(client, tenant, local_aws)
    created = deploy(client, tenant, target)
    ended = wait_for(client, tenant, created["deployment_id"])
    history = execution_history(local_aws, created["operation"]["operation_id"])
    entered = state_names(history)
    assert refused == [created["operation"]["operation_id"]]
    assert (ended["status"], ended["operation"]["status"], ended.get("error")) == (
        "ACTIVE",
        "SUCCEEDED",
        None,
    )
    assert entered[-3:] == ["RecordFailure", "DidOperationSucceedBeforeFailure", "Succeeded"], entered
    assert history[-1]["type"] == "ExecutionSucceeded", history[-1]

    # Nothing was left held: the next operation on the stack runs.
    body = {"template_body": QUEUE, "tags": {"after": "refused-release"}}
    response = call(client, "PUT", f"/deployments/{created['deployment_id']}", tenant, body)
    assert response.status_code == 202, response.body
    updated = wait_for(client, tenant, created["deployment_id"])
    assert (updated["status"], updated["operation"]["action"]) == ("ACTIVE", "update"), updated


def test_an_answer_of_record_failure_without_the_operations_end_ends_the_execution_failed(
    client, tenant, local_aws, monkeypatch
):
    """An answer of RecordFailure without ``operation_succeeded`` (a Lambda of an earlier version, during
    a deployment of the stack) goes to Failed, as every RecordFailure did: the Choice checks that the
    field is there (without IsPresent a missing field is a States.Runtime error)."""
    from chalicelib.domain.errors import TargetAccessError
    from chalicelib.steps import handlers

    record = handlers.record_failure

    def refused(services, event):
        raise TargetAccessError("DeleteItem failed: AccessDeniedException", code="ACCESS_DENIED")

    def earlier_answer(services, event):
        answer = record(services, event)
        assert answer.pop("operation_succeeded") is True  # the operation had succeeded
        return answer

    monkeypatch.setattr(handlers, "release_lock", refused)
    monkeypatch.setattr(handlers, "record_failure", earlier_answer)
    target = register_target(client, tenant, local_aws)
    created = deploy(client, tenant, target)
    ended = wait_for(client, tenant, created["deployment_id"])
    history = execution_history(local_aws, created["operation"]["operation_id"])
    assert (ended["status"], ended["operation"]["status"]) == ("ACTIVE", "SUCCEEDED")
    assert history[-1]["type"] == "ExecutionFailed", history[-1]
    assert history[-1]["executionFailedEventDetails"]["error"] == "DeploymentFailed", history[-1]


def timing_out_after(local_aws, function: str, seconds: int) -> int:
    """The deployed function ``function`` (its logical id) now times out after ``seconds``; the timeout
    it had."""
    lam = local_aws.account_session(local_aws.central.account_id).client("lambda")
    (found,) = [f for f in lam.list_functions()["Functions"] if f"-{function}-" in f["FunctionName"]]
    lam.update_function_configuration(FunctionName=found["FunctionName"], Timeout=seconds)
    return int(found["Timeout"])


def slowed_polls(monkeypatch):
    """While ``slowing[0]``, every PollStack runs past a 1 s Lambda timeout having done nothing (as Lambda
    stops a function at its timeout); the operation ids it was slowed for."""
    from chalicelib.steps import handlers

    poll = handlers.poll_stack
    slowed: list[str] = []
    slowing = [True]

    def slow_while_slowing(services, event):
        if slowing[0]:
            slowed.append(event["operation_id"])
            time.sleep(1.5)
            return {}
        return poll(services, event)

    monkeypatch.setattr(handlers, "poll_stack", slow_while_slowing)
    return slowed, slowing


def test_a_step_that_times_out_after_the_stack_call_leaves_the_operation_to_its_stack(
    client, tenant, local_aws, monkeypatch
):
    """PollStack runs past its Lambda timeout (``Sandbox.Timedout``, which no Retry takes) after the stack
    call: the Catch runs RecordFailure. The step failed, not the stack, which CloudFormation goes on
    changing: RecordFailure records nothing and keeps the lock, the execution polls the stack again
    after a Wait, and the operation ends as its stack did. Before, it ended FAILED STEP_TIMED_OUT and
    freed the stack's lock while the stack was still being created. A fault before the stack call, or one
    of the stack's own, is still recorded (the rest of this module)."""
    from chalicelib.steps import handlers

    poll = handlers.poll_stack
    slowed: list[str] = []

    def slow_once(services, event):
        if not slowed:
            slowed.append(event["operation_id"])
            time.sleep(2.5)  # past the function's 1 s timeout, having done nothing (Lambda stops it)
            return {}
        return poll(services, event)

    monkeypatch.setattr(handlers, "poll_stack", slow_once)
    timing_out_after(local_aws, "PollStack", 1)
    target = register_target(client, tenant, local_aws)
    created = deploy(client, tenant, target)
    ended = wait_for(client, tenant, created["deployment_id"])
    history = execution_history(local_aws, created["operation"]["operation_id"])
    entered = state_names(history)
    assert slowed == [created["operation"]["operation_id"]]
    assert (ended["status"], ended["operation"]["status"], ended.get("error")) == (
        "ACTIVE",
        "SUCCEEDED",
        None,
    )
    resumed = entered.index("RecordFailure")
    assert entered[resumed : resumed + 5] == [
        "RecordFailure",
        "DidOperationSucceedBeforeFailure",
        "ResumePolling",
        "WaitForStack",
        "PollStack",
    ], entered
    assert entered[-2:] == ["DidOperationSucceed", "Succeeded"], entered
    assert history[-1]["type"] == "ExecutionSucceeded", history[-1]
    assert len(stacks_in(local_aws, TARGET_ACCOUNT)) == 1


@pytest.mark.parametrize("bound", ["deadline", "resumes"])
def test_a_step_that_keeps_timing_out_is_recorded_once_its_resumes_are_bounded(
    client, tenant, local_aws, monkeypatch, bound
):
    """What bounds the polls after a step's own fault: past the operation's deadline, or after
    RESUMES_AT_MOST resumes of one execution, RecordFailure records the failure (STEP_TIMED_OUT) and frees
    the lock, as it always did. PollStack times out every time. ``deadline``: the operation's age reads
    past its deadline from the second failure on (the clock moved on: a real deadline is at least a
    minute away), so it resumes once. ``resumes``: RESUMES_AT_MOST is 2 here, so it resumes twice."""
    from chalicelib.domain.model import age_seconds

    slowed, slowing = slowed_polls(monkeypatch)
    if bound == "deadline":
        late = lambda at: age_seconds(at) + (7 * 3600 if len(slowed) > 1 and slowing[0] else 0)  # noqa: E731
        monkeypatch.setattr("chalicelib.service.workflow.failures.age_seconds", late)
    else:
        monkeypatch.setattr("chalicelib.service.workflow.failures.RESUMES_AT_MOST", 2)
    timeout = timing_out_after(local_aws, "PollStack", 1)
    target = register_target(client, tenant, local_aws)
    created = deploy(client, tenant, target)
    ended = wait_for(client, tenant, created["deployment_id"])
    history = execution_history(local_aws, created["operation"]["operation_id"])
    entered = state_names(history)
    assert (ended["operation"]["status"], ended["error"]["code"]) == ("FAILED", "STEP_TIMED_OUT"), ended
    resumes = 1 if bound == "deadline" else 2
    assert entered.count("ResumePolling") == resumes, entered
    assert entered.count("PollStack") == resumes + 1, entered
    assert entered[-1] == "Failed", entered

    # The lock was freed: the stack takes its next operation (polled as usual, with its own timeout).
    slowing[0] = False
    timing_out_after(local_aws, "PollStack", timeout)
    body = {"template_body": QUEUE, "tags": {"after": bound}}
    response = call(client, "PUT", f"/deployments/{created['deployment_id']}", tenant, body)
    assert response.status_code == 202, response.body
    assert wait_for(client, tenant, created["deployment_id"])["operation"]["status"] == "SUCCEEDED"


def test_an_execution_of_the_earlier_definition_records_a_steps_fault_after_the_stack_call(
    client, tenant, local_aws, monkeypatch
):
    """An execution that an earlier definition started (its Catches put the error in ``$.error``, and the
    Choice after RecordFailure cannot resume) running the new RecordFailure, as during a deploy of the
    service: its step's fault after the stack call is recorded as before (FAILED, the lock freed), not
    resumed, which that definition would have ended Failed with nothing recorded."""
    import threading

    from chalicelib.steps import handlers

    poll, held, release = handlers.poll_stack, threading.Event(), threading.Event()

    def held_poll(services, event):
        held.set()
        release.wait(30)
        return poll(services, event)

    monkeypatch.setattr(handlers, "poll_stack", held_poll)
    target = register_target(client, tenant, local_aws)
    created = deploy(client, tenant, target)
    assert held.wait(30)  # the stack call was made; its operation runs, held at PollStack
    state = {
        "tenant_id": tenant.tenant_id,
        "deployment_id": created["deployment_id"],
        "operation_id": created["operation"]["operation_id"],
        "error": {"Error": "States.Timeout", "Cause": "a step timed out"},  # where it put the error
    }
    try:
        answer = local_aws.host.invoke("RecordFailure", state)
        assert (answer["recorded"], answer.get("resumed")) == ("STEP_TIMED_OUT", None), answer
        shown = json.loads(call(client, "GET", f"/deployments/{created['deployment_id']}", tenant).body)
        assert (shown["operation"]["status"], shown["error"]["code"]) == ("FAILED", "STEP_TIMED_OUT"), shown
    finally:
        release.set()
