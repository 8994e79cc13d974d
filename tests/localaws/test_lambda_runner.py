"""The in-process Lambda runner: moto's private hook, and the Lambda runtime's error shape."""

from __future__ import annotations

import json
import time

import pytest

from localaws import faults, lambda_runner
from localaws.environment import LocalAws
from localaws.faults import FaultSettings
from localaws.server import free_port
from tests.conftest import ended_execution, own_function
from tests.support.polling import until


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
        with lambda_runner.recording() as invocations:
            response = client.invoke(FunctionName="nexus-deployer-local-Ok", Payload=json.dumps({"a": 1}))
            failed = client.invoke(FunctionName="nexus-deployer-local-Fails", Payload=b"{}")
        assert json.loads(response["Payload"].read()) == {"echo": {"a": 1}, "name": "nexus-deployer-local-Ok"}
        assert failed["FunctionError"] == "Handled"
        body = json.loads(failed["Payload"].read())
        assert body["errorType"] == "Boom"
        assert body["errorMessage"] == "it broke"
        # What a run records of each invocation (the reliability scenarios count errors by type from it).
        assert [(i.function, i.error, i.errored) for i in invocations] == [
            ("Ok", None, False),
            ("Fails", "Boom", True),
        ]


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
    ended_execution(sfn, execution, timeout=10, interval=0.02)
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


def test_a_handler_past_its_timeout_answers_sandbox_timedout_when_the_timeout_passes():
    """Lambda stops waiting for a handler at the function's timeout and answers ``Sandbox.Timedout``;
    the handler saw its remaining time in its context. (Here the handler then runs on, detached, to its end:
    it makes no AWS call after the timeout.)"""
    import threading

    release = threading.Event()
    seen: dict[str, int | bool] = {}

    def slow(event, context):
        seen["remaining_ms"] = context.get_remaining_time_in_millis()
        release.wait(10)
        seen["finished"] = True
        return {"late": True}

    with LocalAws() as aws:
        own_function(aws, "nexus-deployer-local-Slow", slow, timeout=1)
        client = aws.account_session("123456789012").client("lambda")
        began = time.monotonic()
        response = client.invoke(FunctionName="nexus-deployer-local-Slow", Payload=b"{}")
        waited = time.monotonic() - began
        release.set()

        assert 1.0 <= waited < 5, waited  # answered at the timeout, not when the handler ended (10 s)
        assert "FunctionError" in response
        body = json.loads(response["Payload"].read())
        assert body["errorType"] == "Sandbox.Timedout"
        assert body["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
        assert 0 < int(seen["remaining_ms"]) <= 1000
        until(lambda: "finished" in seen, timeout=5, interval=0.02, what="the detached handler to finish")


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "server-mode"])
def test_a_handler_past_its_timeout_makes_no_further_aws_call(served):
    """Lambda freezes a timed-out sandbox: the handler's code, which Python cannot stop, is refused its
    next AWS call (``SandboxFrozen``, which its ``except Exception`` does not take), so it writes nothing
    after its caller got ``Sandbox.Timedout``. Its calls before the timeout went through. So too in
    server mode (local mode's), where the calls reach moto over HTTP, on the server's threads."""
    import threading

    release = threading.Event()
    seen: dict[str, object] = {}

    with LocalAws(serve_on=("127.0.0.1", free_port()) if served else None) as aws:
        session = aws.account_session("123456789012")
        sqs = session.client("sqs", endpoint_url=aws.endpoint_url)

        def slow(event, context):
            sqs.create_queue(QueueName="before-the-timeout")
            release.wait(10)
            try:
                sqs.create_queue(QueueName="after-the-timeout")
            except Exception as error:  # noqa: BLE001 - what a handler's own error handling would take
                seen["handled"] = error
            finally:
                seen["finished"] = True

        own_function(aws, "nexus-deployer-local-Frozen", slow, timeout=1)
        with lambda_runner.recording() as calls:
            lam = session.client("lambda", endpoint_url=aws.endpoint_url)
            response = lam.invoke(FunctionName="nexus-deployer-local-Frozen", Payload=b"{}")
            assert json.loads(response["Payload"].read())["errorType"] == "Sandbox.Timedout"
            release.set()
            until(lambda: "finished" in seen, timeout=5, interval=0.02, what="the handler to stop")
        urls = sqs.list_queues().get("QueueUrls", [])
        assert [u.rsplit("/", 1)[1] for u in urls if u.endswith("-the-timeout")] == ["before-the-timeout"]
        assert "handled" not in seen  # no except Exception took it
        assert [(c.function, c.error) for c in calls] == [("Frozen", "Sandbox.Timedout")]


def test_a_function_the_faults_time_out_answers_sandbox_timedout_at_once_and_runs_nothing():
    """NEXUS_LOCAL_FAULTS time_out: the first invocation of each input answers as a timed-out function,
    without waiting out its timeout and without running its handler; the next one of that input runs."""
    ran: list[object] = []

    def handler(event, context):
        ran.append(event)
        return {"ran": True}

    with LocalAws(faults=FaultSettings(time_out=frozenset({"Once"}))) as aws:
        own_function(aws, "nexus-deployer-local-Once", handler, timeout=60)
        client = aws.account_session("123456789012").client("lambda")

        def invoke(payload):
            response = client.invoke(FunctionName="nexus-deployer-local-Once", Payload=json.dumps(payload))
            return response.get("FunctionError"), json.loads(response["Payload"].read())

        began = time.monotonic()
        error, body = invoke({"a": 1})
        assert time.monotonic() - began < 5  # not the function's 60 s
        assert error is not None
        assert body["errorType"] == "Sandbox.Timedout"
        assert body["errorMessage"].endswith(
            "Error: Task timed out after 60.00 seconds (NEXUS_LOCAL_FAULTS time_out)"
        )
        assert ran == []
        assert invoke({"a": 1}) == (None, {"ran": True})
        assert invoke({"a": 2})[1]["errorType"] == "Sandbox.Timedout"  # another input: its first run
        assert ran == [{"a": 1}]
        assert faults.counts() == {"time_out:Once": 2}


def test_a_task_state_sees_a_timed_out_function_as_sandbox_timedout(local_aws):
    """What a definition's Retry and Catch match: the error name is ``Sandbox.Timedout``."""
    import threading

    release = threading.Event()

    def slow(event, context):
        release.wait(10)
        return {}

    arn = own_function(local_aws, "nexus-deployer-local-SlowStep", slow, timeout=1)
    sfn = local_aws.central_session().client("stepfunctions")
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": {}},
                "Catch": [{"ErrorEquals": ["Sandbox.Timedout"], "ResultPath": "$.error", "Next": "TimedOut"}],
                "End": True,
            },
            "TimedOut": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name="slow-step", definition=json.dumps(definition), roleArn=local_aws.central.service_role_arn
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    described = ended_execution(sfn, execution, timeout=8)
    release.set()
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["error"]["Error"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in output["error"]["Cause"]
