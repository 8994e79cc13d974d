"""A Distributed Map past its tolerated failures fails, as AWS's does (localaws/map_runs.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from localaws import map_runs
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from tests.conftest import ended_execution
from tests.support.polling import until


def _machine(tolerated: dict[str, Any]) -> str:
    """A Distributed Map over [1, 2, 3] whose item 2 fails; the Map's failure is caught."""
    item = {
        "StartAt": "IsTwo",
        "States": {
            "IsTwo": {
                "Type": "Choice",
                "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "Broken"}],
                "Default": "Fine",
            },
            "Broken": {"Type": "Fail", "Error": "ItemBroke", "Cause": "item 2"},
            "Fine": {"Type": "Pass", "End": True},
        },
    }
    caught = {"Caught": {"Type": "Pass", "End": True}}
    return json.dumps(
        _distributed_map(
            item,
            caught,
            **tolerated,
            Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
            ResultPath="$.results",
        )
    )


def _distributed_map(
    item: dict[str, Any], others: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    """A machine whose first state, ``Each``, is a Distributed Map over ``$.items`` running ``item``."""
    each = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **item},
        **fields,
        "End": True,
    }
    return {"StartAt": "Each", "States": {"Each": each, **(others or {})}}


def _run(local_aws: LocalAws, name: str, tolerated: dict[str, Any]) -> dict[str, Any]:
    sfn = local_aws.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
    arn = sfn.create_state_machine(
        name=name, definition=_machine(tolerated), roleArn=local_aws.central.service_role_arn
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": [1, 2, 3]}))
    described = ended_execution(sfn, execution["executionArn"], timeout=20)
    result: dict[str, Any] = json.loads(described["output"])
    return result


def test_canary_moto_distributed_worker_is_what_map_runs_wraps() -> None:
    map_runs.check_moto_internals()


def test_a_failed_item_fails_the_map_with_the_tolerance_error(local_aws: LocalAws) -> None:
    output = _run(local_aws, "map-strict", {})
    assert "results" not in output
    assert output["error"]["Error"] == "States.ExceedToleratedFailureThreshold", output
    assert output["error"]["Cause"] == map_runs.CAUSE


def test_a_failed_item_within_the_tolerated_count_lets_the_map_succeed(local_aws: LocalAws) -> None:
    output = _run(local_aws, "map-tolerant", {"ToleratedFailureCount": 1})
    assert "error" not in output, output
    assert sorted(r for r in output["results"] if r is not None) == [1, 3]


@pytest.mark.parametrize(
    ("failed", "total", "count", "percentage", "over"),
    [(0, 3, 0, 0.0, False), (1, 3, 0, 0.0, True), (1, 3, 1, 0.0, False), (2, 3, 1, 0.0, True),
     (1, 3, 0, 50.0, False), (2, 3, 0, 50.0, True), (1, 3, 5, 10.0, True), (2, 10, 5, 20.0, False),
     (3, 10, 5, 20.0, True)],
)  # fmt: skip
def test_over_tolerance_is_either_limit_exceeded(
    failed: int, total: int, count: int, percentage: float, over: bool
) -> None:
    assert map_runs.over_tolerance(failed, total, count, percentage) is over


def test_stopping_an_execution_whose_map_waits_for_task_tokens_aborts_it_at_once(local_aws: LocalAws) -> None:
    """On AWS a stopped execution ends ABORTED at once, its Map Run's child executions with it. moto
    left each item's ``.waitForTaskToken`` task waiting until its timeout, then failed the Map (its
    items timed out) and the execution FAILED; localaws/task_tokens.py releases the waits of a stopped
    execution, and a token of it is refused afterwards."""
    from botocore.exceptions import ClientError

    from tests.conftest import own_function

    tokens: list[str] = []

    def park(event: dict[str, Any], context: Any) -> dict[str, Any]:
        tokens.append(event["token"])
        return {}

    parker = own_function(local_aws, "parker", park)
    wait = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": parker, "Payload": {"token.$": "$$.Task.Token"}},
        "TimeoutSeconds": 60,
        "End": True,
    }
    definition = _distributed_map({"StartAt": "Wait", "States": {"Wait": wait}})
    sfn = local_aws.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
    machine = sfn.create_state_machine(
        name="parked", definition=json.dumps(definition), roleArn=local_aws.central.service_role_arn
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"items": [1, 2]}))[
        "executionArn"
    ]
    until(lambda: tokens, ready=lambda t: len(t) >= 2, timeout=10, interval=0.02, what="both items' tokens")

    stopped_at = time.monotonic()
    sfn.stop_execution(executionArn=execution, error="Operator", cause="stopped by the test")
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() - stopped_at < 5, "the stop waited for the tasks' 60 s timeout"
        time.sleep(0.02)

    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    history = [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]
    assert history[-1] == "ExecutionAborted"
    assert "MapRunFailed" not in history
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=tokens[0], output="{}")
    # refused as a token of a task that no longer exists (moto answers InvalidToken once the execution ended)
    assert refused.value.response["Error"]["Code"] in ("TaskTimedOut", "InvalidToken")
