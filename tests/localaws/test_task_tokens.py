"""A task token is refused once its task has closed, as AWS refuses it (localaws/task_tokens.py)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localaws import task_tokens
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from tests.conftest import own_function, state_names
from tests.support.polling import until


def _machine(function_arn: str, timeout_seconds: int) -> str:
    """A waitForTaskToken Lambda task, then a wait, so the execution still runs when the test sends
    with the closed task's token."""
    return json.dumps(
        {
            "StartAt": "Park",
            "States": {
                "Park": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {"FunctionName": function_arn, "Payload": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": timeout_seconds,
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Linger"}],
                    "ResultPath": "$.released",
                    "Next": "Linger",
                },
                "Linger": {"Type": "Wait", "Seconds": 5, "End": True},
            },
        }
    )


class Parker:
    """The task's Lambda: keeps the token it is given, and sends nothing."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.called = threading.Event()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.tokens.append(str(event["token"]))
        self.called.set()
        return {}


def _start(local_aws: LocalAws, name: str, parker: Parker, timeout_seconds: int) -> tuple[Any, str]:
    arn = own_function(local_aws, f"nexus-deployer-local-{name}", parker)
    sfn = local_aws.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name, definition=_machine(arn, timeout_seconds), roleArn=local_aws.central.service_role_arn
    )["stateMachineArn"]
    return sfn, sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]


def _entered(sfn: Any, execution: str, state: str, timeout: float = 20) -> None:
    def entered() -> list[str]:
        events = sfn.get_execution_history(executionArn=execution)["events"]
        return state_names(events)

    until(entered, ready=lambda names: state in names, timeout=timeout, what=f"{state} to be entered")


def _refused(sfn: Any, token: str) -> str:
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=token, output="{}")
    return str(refused.value.response["Error"]["Code"])


def test_canary_moto_task_state_is_what_task_tokens_wraps() -> None:
    task_tokens.check_moto_internals()


def test_a_released_tasks_token_is_refused_the_second_time(local_aws: LocalAws) -> None:
    parker = Parker()
    sfn, execution = _start(local_aws, "released", parker, timeout_seconds=60)
    assert parker.called.wait(20)
    sfn.send_task_success(taskToken=parker.tokens[0], output="{}")  # the open task: accepted
    _entered(sfn, execution, "Linger")
    assert _refused(sfn, parker.tokens[0]) == "TaskTimedOut"


def test_a_timed_out_tasks_token_is_refused(local_aws: LocalAws) -> None:
    parker = Parker()
    sfn, execution = _start(local_aws, "timed-out", parker, timeout_seconds=3)
    assert parker.called.wait(20)
    _entered(sfn, execution, "Linger")  # after the task's timeout, through its Catch
    assert _refused(sfn, parker.tokens[0]) == "TaskTimedOut"


def test_a_token_no_task_ever_had_is_invalid(local_aws: LocalAws) -> None:
    sfn = local_aws.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
    assert _refused(sfn, "not-a-token-of-any-task") in ("InvalidToken", "AccessDeniedException")
