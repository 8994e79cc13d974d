"""The in-process Lambda runner: moto's private hook, and the Lambda runtime's error shape."""

from __future__ import annotations

import json
import time

from localaws import lambda_runner
from localaws.environment import LocalAws
from tests.conftest import own_function


def test_canary_moto_invoke_hook_is_still_there():
    """Fails loudly if moto renames or reshapes LambdaFunction._invoke_lambda (we replace it)."""
    lambda_runner.check_moto_internals()
    from moto.awslambda.models import LambdaFunction

    lambda_runner.install()
    assert LambdaFunction._invoke_lambda is lambda_runner._invoke


class Boom(Exception):
    pass


def test_results_and_errors_have_the_lambda_runtime_shape():
    def ok(event, context):
        return {"echo": event, "name": context.function_name}

    def fails(event, context):
        raise Boom("it broke")

    with LocalAws() as aws:
        own_function(aws, "nexus-deployer-local-Ok", ok)
        own_function(aws, "nexus-deployer-local-Fails", fails)
        client = aws.account_session("123456789012").client("lambda")
        response = client.invoke(FunctionName="nexus-deployer-local-Ok", Payload=json.dumps({"a": 1}))
        assert json.loads(response["Payload"].read()) == {"echo": {"a": 1}, "name": "nexus-deployer-local-Ok"}
        failed = client.invoke(FunctionName="nexus-deployer-local-Fails", Payload=b"{}")
        assert failed["FunctionError"] == "Handled"
        body = json.loads(failed["Payload"].read())
        assert body["errorType"] == "Boom"
        assert body["errorMessage"] == "it broke"


def test_state_machine_execution_is_on(local_aws):
    """moto only runs definitions when configured to; without it executions would 'succeed' doing nothing."""
    sfn = local_aws.account_session("123456789012").client("stepfunctions")
    definition = sfn.describe_state_machine(stateMachineArn=local_aws.central.state_machine_arn)["definition"]
    assert "${" not in definition  # every placeholder was filled
    execution = sfn.start_execution(
        stateMachineArn=local_aws.central.state_machine_arn,
        name="op-canary",
        input=json.dumps({"tenant_id": "t", "deployment_id": "dep-missing", "operation_id": "op-canary"}),
    )["executionArn"]
    deadline = time.monotonic() + 10
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    types = [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]
    assert "LambdaFunctionFailed" in types  # AcquireLock really ran our handler, which found no deployment
    assert types[-1] == "ExecutionFailed"


def test_concurrent_transactions_do_not_break_the_local_dynamodb(local_aws):
    """moto's DynamoDB is not thread-safe; localaws.concurrency serialises its actions."""
    import threading

    client = local_aws.account_session("123456789012").client("dynamodb")
    table = local_aws.central.table_name
    errors: list[Exception] = []

    def writer(n: int) -> None:
        try:
            for i in range(40):
                client.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": table, "Item": {"pk": {"S": f"T{n}"}, "sk": {"S": f"{i}"}}}},
                        {"Put": {"TableName": table, "Item": {"pk": {"S": f"U{n}"}, "sk": {"S": f"{i}"}}}},
                    ]
                )
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert client.scan(TableName=table, Select="COUNT")["Count"] >= 480
