"""Step Functions: starting the workflows (one execution per operation, named after its id) and
releasing a task that waits for a stack event."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call, error_code

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class StepFunctionsStarter:
    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, execution_name: str, execution_input: dict[str, Any]) -> str:
        with aws_call("StartExecution"):
            try:
                response = self._sfn.start_execution(
                    stateMachineArn=self._arn, name=execution_name, input=json.dumps(execution_input)
                )
            except ClientError as error:
                if error_code(error) != "ExecutionAlreadyExists":
                    raise
                # Started already (a retried request): the name is the operation id, so it is ours.
                return self._arn.replace(":stateMachine:", ":execution:") + f":{execution_name}"
        return response["executionArn"]


class StepFunctionsCallbacks:
    """Releases a ``.waitForTaskToken`` task (the deployment workflow's WaitForStackEvent)."""

    # The task ended already (released by the other side of a race, or timed out and reconciled).
    _GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})

    def __init__(self, client: SFNClient) -> None:
        self._sfn = client

    def release(self, task_token: str, output: dict[str, Any]) -> bool:
        with aws_call("SendTaskSuccess"):
            try:
                self._sfn.send_task_success(taskToken=task_token, output=json.dumps(output))
            except ClientError as error:
                if error_code(error) in self._GONE:
                    return False
                raise
        return True
