"""A running rollout item waits for its operation's end instead of polling its deployment record.

The real rollout.asl.json and deployment.asl.json, executed by the local AWS: the item's Map iteration
parks its task token in ``WaitForItemEnd`` and the deployment workflow's last step releases it; a lost
release ends by the wait's timeout, and ``NEXUS_COMPLETION_MODE=poll`` keeps the poll loop. Stacks take
2 s, so a polling item would read its record more than once (1 s, then 2 s apart at least).

moto runs the Distributed Map's iterations without listing them as executions, so the steps are
counted where they run: each invocation of the deployed functions, by logical id (``FunctionHost``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

import app as app_module
from chalicelib.adapters.rollouts import DynamoRolloutStore
from chalicelib.adapters.stepfunctions import StepFunctionsCallbacks
from chalicelib.composition import Services
from chalicelib.service.completion import CompletionService, released_by
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from tests.conftest import Tenant, call, execution_history, local_aws_for_app, state_names, wait_for, wired
from tests.support.faults import refused_once
from tests.workflow.test_rollouts import QUEUE, register_fleet, start, wait_rollout

FLEET = 3


@contextmanager
def fleet_service(
    stack_seconds: int = 2, **overrides: str
) -> Iterator[tuple[Client, Tenant, LocalAws, Services, Counter[str]]]:
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=stack_seconds)) as aws,
        wired(aws, **overrides) as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        yield client, tenant, aws, services, aws.host.invocations


def run_rollout(client: Client, tenant: Tenant, aws: LocalAws) -> dict[str, Any]:
    fleet = register_fleet(client, tenant, aws, FLEET)
    body = {
        "stack_name": "fleet",
        "template_body": QUEUE,
        "targets": [{"target_id": t["target_id"], "regions": ["us-east-1"]} for t in fleet],
        "strategy": {"max_concurrent": FLEET},
    }
    return wait_rollout(client, tenant, start(client, tenant, body)["rollout_id"], timeout=120)


def test_items_are_released_by_their_operations_end_with_one_poll_each() -> None:
    # A 60 s wait: an item that ends sooner was released by its operation's end, not by the timeout.
    with fleet_service(NEXUS_EVENT_TIMEOUT_SECONDS="60") as (client, tenant, aws, _, invocations):
        started = time.monotonic()
        ended = run_rollout(client, tenant, aws)
        elapsed = time.monotonic() - started
        aws.drain_executions(timeout=30)
        announced = _announced(aws)
        inputs = _deployment_inputs(aws)
        kept = _item_records(aws)
        refusals = {_release_refusal(aws, str(r.get("task_token"))) for r in kept}
    assert elapsed < 45, elapsed
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["counts"]["SUCCEEDED"] == FLEET
    # StartItem parks its own token: one wait each, released by the operation's end, not timed out.
    assert invocations["StartItem"] == FLEET, invocations
    assert invocations["AwaitItem"] == 0, invocations
    # The deployment execution's last step ended each item (item_ended): no PollItem reads it again.
    assert invocations["PollItem"] == 0, invocations
    # It released the StartItem task whose token the item's record held: no waiter record was written.
    assert announced == set()
    # The token is in no execution's input (which Step Functions' status events, and a dead-letter
    # queue behind their handlers, copy). An ended item keeps it (a retried last step releases with
    # it), but its task has closed: the token is refused (here InvalidToken: moto looks for it only in
    # running executions, and the rollout's has ended).
    assert len(inputs) == FLEET
    assert all(set(i["rollout_item"]) == {"rollout_id", "item_id"} for i in inputs), inputs
    assert len(kept) == FLEET
    assert all(r.get("task_token") for r in kept), kept
    assert refusals == {"InvalidToken"}, refusals


def test_a_lost_release_is_reconciled_after_the_wait_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment workflow announces nothing: each item still ends, through the timeout's reconcile."""
    monkeypatch.setattr("chalicelib.service.rollouts.waves.START_SECONDS", 30)  # StartItem waits 3 + 30 s
    # The announcement is what this test loses: the deployment workflow's last steps (ReleaseLock,
    # RecordFailure) announce nothing. (DeploymentExecutionEnded, the only other caller, runs for an
    # execution that its own steps did not end: none here.)
    lost: list[str] = []

    def announces_nothing(self: CompletionService, operation_id: str, *args: Any) -> bool:
        lost.append(operation_id)
        return False

    monkeypatch.setattr(CompletionService, "operation_ended", announces_nothing)
    with fleet_service(NEXUS_EVENT_TIMEOUT_SECONDS="3") as (client, tenant, aws, _, invocations):
        started = time.monotonic()
        ended = run_rollout(client, tenant, aws)
        elapsed = time.monotonic() - started
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["counts"]["SUCCEEDED"] == FLEET
    assert len(set(lost)) == FLEET  # each item's operation announced its end, and the announcement was lost
    # StartItem's wait (3 s, plus the 30 s its own work may take) timed out: one reconcile each, which
    # found the 2 s stacks done.
    assert elapsed > 33, elapsed
    assert invocations["StartItem"] == FLEET, invocations
    assert invocations["PollItem"] == FLEET + invocations["AwaitItem"], invocations


def test_a_release_that_failed_after_the_items_end_was_written_is_sent_again_by_the_retried_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last step writes the item's end, then its SendTaskSuccess fails (throttled past botocore's own
    retries): the step fails with TransientAwsError and Step Functions runs it again. That run finds the
    item ended and releases the StartItem task with the token the record kept, at once, not at the end
    of StartItem's wait (60 + 120 s here)."""
    release, refused = refused_once(
        StepFunctionsCallbacks.release,
        # The direct release of an operation's end (CompletionService.operation_ended, from the last step),
        # refused once per task token as the adapter refuses a SendTaskSuccess AWS still throttles.
        lambda callbacks, task_token, output: (
            task_token if output == released_by("operation-ended", "SUCCEEDED", True) else None
        ),
    )
    monkeypatch.setattr(StepFunctionsCallbacks, "release", release)
    with fleet_service(NEXUS_EVENT_TIMEOUT_SECONDS="60") as (client, tenant, aws, _, invocations):
        started = time.monotonic()
        ended = run_rollout(client, tenant, aws)
        elapsed = time.monotonic() - started
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["counts"]["SUCCEEDED"] == FLEET
    assert len(refused) == FLEET  # each item's first release failed
    # The retries (at most 5 s apart, jittered) released each StartItem task; none waited out its 180 s.
    assert elapsed < 60, elapsed
    assert invocations["ReleaseLock"] == 2 * FLEET, invocations
    assert invocations["PollItem"] == 0, invocations  # released saying the item ended: nothing to read


def test_an_item_end_that_aws_throttled_is_written_and_released_by_the_retried_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last step's write of the item's end is throttled past botocore's retries: the step fails
    (TransientAwsError) and its Retry writes the end and releases the StartItem task, in seconds. It used
    to go on without the end, so no one released that task: it waited out 60 + 120 s here."""
    # The deployment workflow's last step is the only caller of end_running_item.
    end_running_item, refused = refused_once(
        DynamoRolloutStore.end_running_item, lambda store, ref, *_: (ref.rollout_id, ref.index)
    )
    monkeypatch.setattr(DynamoRolloutStore, "end_running_item", end_running_item)
    with fleet_service(NEXUS_EVENT_TIMEOUT_SECONDS="60") as (client, tenant, aws, _, invocations):
        started = time.monotonic()
        ended = run_rollout(client, tenant, aws)
        elapsed = time.monotonic() - started
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["counts"]["SUCCEEDED"] == FLEET
    keys = [cast("tuple[str, int]", key) for key in refused]
    assert {index for _, index in keys} == set(range(FLEET))
    assert len({rollout for rollout, _ in keys}) == 1  # the one rollout's items
    assert len(refused) == FLEET  # once each
    assert elapsed < 60, elapsed
    assert invocations["ReleaseLock"] == 2 * FLEET, invocations
    assert invocations["PollItem"] == 0, invocations  # released saying the item ended


def test_an_item_whose_start_task_closed_is_released_by_its_operations_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """StartItem's own wait (6 s) ends before its operation does (15 s stacks), so the item waits again
    in WaitForItemEnd (40 s). The operation's last step first releases the StartItem task whose token
    its input carries; that task is closed (TaskTimedOut, as on AWS: localaws/task_tokens.py), so the
    end goes to the waiter record, which releases WaitForItemEnd at once rather than at its timeout."""
    monkeypatch.setattr("chalicelib.service.rollouts.waves.START_SECONDS", -34)  # StartItem waits 40 - 34 s
    with fleet_service(stack_seconds=15, NEXUS_EVENT_TIMEOUT_SECONDS="40") as (
        client,
        tenant,
        aws,
        _,
        invocations,
    ):
        ended = run_rollout(client, tenant, aws)
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["counts"]["SUCCEEDED"] == FLEET
    assert invocations["AwaitItem"] == FLEET, invocations  # each StartItem wait timed out: one wait more
    # One PollItem each, after the StartItem wait's timeout; none after WaitForItemEnd, which the
    # operation's end released (a timed-out one would be followed by a second PollItem).
    assert invocations["PollItem"] == FLEET, invocations


def test_poll_mode_keeps_the_items_poll_loop() -> None:
    with fleet_service(NEXUS_COMPLETION_MODE="poll") as (client, tenant, aws, _, invocations):
        ended = run_rollout(client, tenant, aws)
    assert ended["status"] == "SUCCEEDED", ended
    assert invocations["AwaitItem"] == 0, invocations
    assert invocations["PollItem"] > FLEET, invocations  # a 2 s stack takes more than one read 1 s apart


def _deployment_inputs(aws: LocalAws) -> list[dict[str, Any]]:
    """The input of every execution of the deployment workflow."""
    sfn = aws.account_session(aws.central.account_id).client("stepfunctions")
    arns = [
        e["executionArn"]
        for e in sfn.list_executions(stateMachineArn=aws.central.state_machine_arn)["executions"]
    ]
    return [json.loads(sfn.describe_execution(executionArn=arn)["input"]) for arn in arns]


def _release_refusal(aws: LocalAws, task_token: str) -> str | None:
    """The error code SendTaskSuccess answers with ``task_token``; None if it was accepted."""
    sfn = aws.account_session(aws.central.account_id).client("stepfunctions")
    try:
        sfn.send_task_success(taskToken=task_token, output="{}")
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


def _item_records(aws: LocalAws) -> list[dict[str, Any]]:
    table = aws.account_session(aws.central.account_id).resource("dynamodb").Table(aws.central.table_name)
    return [i for i in table.scan()["Items"] if i.get("kind") == "rollout_item"]


def _announced(aws: LocalAws) -> set[str]:
    """Operation ids with an end announcement (or a waiter) on record: ``WAIT#OPERATION#<id>`` items."""
    table = aws.account_session(aws.central.account_id).resource("dynamodb").Table(aws.central.table_name)
    prefix = "WAIT#OPERATION#"
    items = table.scan(ProjectionExpression="pk")["Items"]
    return {str(i["pk"]).removeprefix(prefix) for i in items if str(i["pk"]).startswith(prefix)}


def test_an_operation_no_rollout_waits_for_announces_nothing() -> None:
    """Only a rollout's operations write their end (their items wait for it; see the first test); a
    deployment of its own does not: no ``WAIT#OPERATION#`` item once its execution, last step
    included, has ended."""
    with fleet_service() as (client, tenant, aws, _, _invocations):
        (target,) = register_fleet(client, tenant, aws, 1)
        body = {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "solo",
            "template_body": QUEUE,
        }
        solo = json.loads(call(client, "POST", "/deployments", tenant, body).body)
        settled = wait_for(client, tenant, solo["deployment_id"])
        assert settled["status"] == "ACTIVE", settled
        history = execution_history(aws, settled["operation"]["operation_id"])  # waits for its end
        assert history[-1]["type"] == "ExecutionSucceeded"
        entered = state_names(history)
        assert "ReleaseLock" in entered  # the step that announces, had anything waited
        assert _announced(aws) == set()
