"""``States.ALL`` neither retries nor catches ``States.DataLimitExceeded`` or ``States.Runtime``, as on AWS
(localaws/error_matching.py); every other error it still matches."""

from __future__ import annotations

import json
from typing import Any

from localaws import error_matching
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from tests.conftest import ended_execution, own_function, state_names

BIG = "x" * (256 * 1024)  # a result over Step Functions' 256 KiB quota


class Step:
    """The task's Lambda: counts its calls, then returns ``result`` or raises ``error``."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.result, self.error, self.calls = result, error, 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.result


def _run(
    local_aws: LocalAws, name: str, step: Step, error_equals: list[str], **task: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One Lambda task with a Retry (one more attempt) and a Catch on ``error_equals``, its caught
    branch a Pass state ``Caught``; DescribeExecution's answer once it ended, and its history."""
    arn = own_function(local_aws, name, step)
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": arn,
                **task,
                "Retry": [{"ErrorEquals": error_equals, "IntervalSeconds": 1, "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": error_equals, "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = local_aws.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=local_aws.central.service_role_arn
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    described = ended_execution(sfn, execution, timeout=20)
    history = [dict(e) for e in sfn.get_execution_history(executionArn=execution)["events"]]
    return described, history


def _entered(history: list[dict[str, Any]]) -> list[str]:
    return state_names(history)


def _failed(described: dict[str, Any], history: list[dict[str, Any]], error: str) -> None:
    assert described["status"] == "FAILED", described
    assert described.get("error") == error, described
    assert history[-1]["type"] == "ExecutionFailed"
    assert history[-1]["executionFailedEventDetails"]["error"] == error
    assert "Caught" not in _entered(history)


def test_canary_moto_error_equals_is_what_error_matching_wraps() -> None:
    error_matching.check_moto_internals()
    error_matching.install()
    error_matching.install()  # idempotent
    error_matching.check_moto_internals()  # still reads moto's original after the wrap


def test_states_all_does_not_catch_or_retry_a_result_over_the_size_quota(local_aws: LocalAws) -> None:
    """AWS: States.DataLimitExceeded "is a terminal error that can't be caught by the States.ALL error
    type". moto caught it (and retried it first)."""
    step = Step(result={"blob": BIG})
    described, history = _run(local_aws, "too-big-all", step, ["States.ALL"])
    _failed(described, history, "States.DataLimitExceeded")
    assert step.calls == 1  # the Retry on States.ALL did not retry it either


def test_an_explicit_data_limit_exceeded_still_catches_it(local_aws: LocalAws) -> None:
    """Left as moto has it: an ErrorEquals naming States.DataLimitExceeded itself retries and catches it."""
    step = Step(result={"blob": BIG})
    described, _ = _run(local_aws, "too-big-named", step, ["States.DataLimitExceeded"])
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["error"]["Error"] == "States.DataLimitExceeded"
    assert step.calls == 2


def test_states_all_still_retries_and_catches_a_task_error(local_aws: LocalAws) -> None:
    step = Step(error=ValueError("the step broke"))
    described, history = _run(local_aws, "broken-all", step, ["States.ALL"])
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["error"]["Error"] == "ValueError"
    assert step.calls == 2
    assert "Caught" in _entered(history)


def test_states_all_does_not_catch_a_runtime_error(local_aws: LocalAws) -> None:
    """AWS: "A retry or catch on States.ALL won't catch States.Runtime errors"; here a TimeoutSecondsPath
    the input lacks (moto's States.Runtime before the task runs), which moto retried and caught."""
    step = Step(result={})
    described, history = _run(
        local_aws, "missing-path-all", step, ["States.ALL"], TimeoutSecondsPath="$.missing"
    )
    _failed(described, history, "States.Runtime")
    assert step.calls == 0
