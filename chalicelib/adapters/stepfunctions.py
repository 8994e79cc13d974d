"""Starting the deployment workflow: one execution per operation, named after the operation id."""

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
