"""The Step Functions interpreter's caches (localaws/stepfunctions.py): same results, work done once."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from localaws import stepfunctions
from localaws.environment import LocalAws
from tests.support.polling import until


def test_canary_moto_interpreter_internals_are_what_this_caches() -> None:
    """Fails loudly if moto changes a function that localaws/stepfunctions.py replaces or relies on."""
    stepfunctions.check_moto_internals()
    stepfunctions.install()
    stepfunctions.install()  # idempotent
    stepfunctions.check_moto_internals()  # still checks moto's originals after the swap
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import json_path

    assert getattr(lambda_eval_utils, "boto_client_for") is stepfunctions._boto_client_for  # noqa: B009
    parse = getattr(json_path, "parse")  # noqa: B009 - imported there, not exported
    assert parse("$.a.b") is parse("$.a.b")


def test_each_execution_gets_its_own_program_from_one_parse() -> None:
    stepfunctions.install()
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    worker: Any = SimpleNamespace(
        _evaluation_details=SimpleNamespace(state_machine_details=SimpleNamespace(definition=definition))
    )
    first = ExecutionWorker._get_evaluation_entrypoint(worker)
    second = ExecutionWorker._get_evaluation_entrypoint(worker)
    assert type(first) is type(second)
    assert first is not second  # evaluation state is never shared between executions
    assert definition in stepfunctions._trees


def test_one_lambda_client_per_region_while_moto_intercepts(local_aws: LocalAws) -> None:
    first = stepfunctions._boto_client_for("us-east-1", "lambda")
    assert stepfunctions._boto_client_for("us-east-1", "lambda") is first
    assert stepfunctions._boto_client_for("eu-west-1", "lambda") is not first


def test_executions_still_run_jsonpaths_and_lambda_tasks(local_aws: LocalAws) -> None:
    """The real deployment definition, twice: both executions reach their (expected) failure state."""
    sfn = local_aws.account_session("123456789012").client("stepfunctions")
    arns = [
        sfn.start_execution(
            stateMachineArn=local_aws.central.state_machine_arn,
            name=f"op-cache-{n}",
            input=json.dumps({"tenant_id": "t", "deployment_id": "dep-missing", "operation_id": f"op-{n}"}),
        )["executionArn"]
        for n in range(2)
    ]
    until(
        lambda: [sfn.describe_execution(executionArn=arn)["status"] for arn in arns],
        ready=lambda statuses: "RUNNING" not in statuses,
        timeout=20,
        interval=0.02,
        what="both executions to end",
    )
    for arn in arns:
        types = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
        assert "LambdaFunctionFailed" in types  # AcquireLock ran our handler, which found no deployment
        assert types[-1] == "ExecutionFailed"


def test_a_definition_is_validated_once_and_a_bad_one_is_refused_every_time(local_aws: LocalAws) -> None:
    """CreateStateMachine validates by parsing (moto); a definition parsed once is valid again without a
    new parse, and one that does not parse is never kept: it is refused InvalidDefinition each time."""
    from botocore.exceptions import ClientError

    sfn = local_aws.account_session("123456789012").client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/any"
    good = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}})
    bad = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "NotAState", "End": True}}})
    sfn.create_state_machine(name="valid-once-a", definition=good, roleArn=role)
    assert good in stepfunctions._trees
    sfn.create_state_machine(name="valid-once-b", definition=good, roleArn=role)
    for name in ("refused-a", "refused-b"):
        with pytest.raises(ClientError) as refused:
            sfn.create_state_machine(name=name, definition=bad, roleArn=role)
        assert refused.value.response["Error"]["Code"] == "InvalidDefinition", refused.value.response
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert bad not in stepfunctions._trees
    names = {m["name"] for m in sfn.list_state_machines()["stateMachines"]}
    assert {"valid-once-a", "valid-once-b"} <= names
    assert not {"refused-a", "refused-b"} & names
