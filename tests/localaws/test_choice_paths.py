"""A Choice rule on a path the state's input lacks fails the execution with States.Runtime, as on AWS,
for every comparison but IsPresent (localaws/choice_paths.py); present paths compare as before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localaws import choice_paths
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from tests.conftest import ended_execution, state_names


def _run(
    local_aws: LocalAws,
    name: str,
    rule: dict[str, Any],
    state_input: dict[str, Any],
    *earlier: dict[str, Any],
) -> Any:
    """A machine whose one Choice state goes to ``Matched`` on ``rule`` (after the ``earlier`` rules, which
    go to ``Earlier``), else to ``Other``; DescribeExecution once it ended, the names of the states it
    entered, and its last history event."""
    choices = [*({**r, "Next": "Earlier"} for r in earlier), {**rule, "Next": "Matched"}]
    definition = {
        "StartAt": "Decide",
        "States": {
            "Decide": {"Type": "Choice", "Choices": choices, "Default": "Other"},
            "Earlier": {"Type": "Pass", "End": True},
            "Matched": {"Type": "Pass", "End": True},
            "Other": {"Type": "Pass", "End": True},
        },
    }
    sfn = local_aws.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=local_aws.central.service_role_arn
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(state_input))["executionArn"]
    described = ended_execution(sfn, execution, timeout=20)
    history = sfn.get_execution_history(executionArn=execution)["events"]
    entered = state_names(history)
    return described, entered, history[-1]


def test_canary_moto_comparison_is_what_choice_paths_wraps() -> None:
    choice_paths.check_moto_internals()
    choice_paths.install()
    choice_paths.install()  # idempotent
    choice_paths.check_moto_internals()  # still reads moto's original after the wrap


@pytest.mark.parametrize(
    "rule",
    [
        {"Variable": "$.recorded.done", "BooleanEquals": True},
        {"Variable": "$.recorded.status", "StringEquals": "SUCCEEDED"},
        {"Not": {"Variable": "$.recorded.count", "NumericGreaterThan": 0}},
        {
            "And": [
                {"Variable": "$.recorded", "IsPresent": True},
                {"Variable": "$.recorded.done", "IsNull": False},
            ]
        },
    ],
    ids=["BooleanEquals", "StringEquals", "Not", "And-IsNull"],
)
def test_a_rule_on_a_missing_path_fails_the_execution(local_aws: LocalAws, rule: dict[str, Any]) -> None:
    """AWS: "If the state input doesn't contain the $.type field, the execution fails". moto went to the
    Default instead, so a Choice that one path to it gives no such field passed locally only."""
    described, entered, last = _run(local_aws, "missing-path", rule, {"recorded": {"other": 1}})
    assert described["status"] == "FAILED", described
    assert described["error"] == "States.Runtime", described
    paths = {"Not": "$.recorded.count", "And": "$.recorded.done"}
    path = rule.get("Variable") or next(p for key, p in paths.items() if key in rule)
    assert (
        f"Invalid path '{path}': The choice state's condition path references an invalid value."
        in (described["cause"])
    ), described
    assert "An error occurred while executing the state 'Decide'" in described["cause"], described
    assert entered == ["Decide"]
    assert last["type"] == "ExecutionFailed", last
    assert last["executionFailedEventDetails"] == {"error": "States.Runtime", "cause": described["cause"]}


def test_a_missing_context_path_names_the_path_as_written(local_aws: LocalAws) -> None:
    rule = {"Variable": "$$.Execution.Input.flag", "BooleanEquals": True}
    described, entered, _ = _run(local_aws, "missing-context", rule, {"other": 1})
    assert entered == ["Decide"]
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime"), described
    assert "Invalid path '$$.Execution.Input.flag': " in described["cause"], described


def test_a_guard_or_an_earlier_match_keeps_a_missing_path_from_being_read(local_aws: LocalAws) -> None:
    """And and Or stop at their first deciding rule, and the Choice at its first matching one, on AWS as
    here: the usual guard ``And: [IsPresent, ...]`` relies on it (statemachine/deployment.asl.json's
    DidOperationSucceedBeforeFailure does)."""
    missing = {"Variable": "$.recorded.done", "BooleanEquals": True}
    present = {"Variable": "$.recorded", "IsPresent": True}
    guarded_and = {"And": [{"Variable": "$.recorded.done", "IsPresent": True}, missing]}
    guarded_or = {"Or": [{"Variable": "$.recorded.done", "IsPresent": False}, missing]}
    cases: list[tuple[dict[str, Any], tuple[dict[str, Any], ...], str]] = [
        (guarded_and, (), "Other"),
        (guarded_or, (), "Matched"),
        (missing, (present,), "Earlier"),
    ]
    for n, (rule, earlier, expected) in enumerate(cases):
        described, entered, _ = _run(local_aws, f"guarded-{n}", rule, {"recorded": {}}, *earlier)
        assert described["status"] == "SUCCEEDED", (rule, described)
        assert entered == ["Decide", expected], (rule, entered)


def test_is_present_tests_a_missing_path_and_present_paths_compare_as_before(local_aws: LocalAws) -> None:
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"Variable": "$.recorded.done", "IsPresent": True}, {"recorded": {}}, "Other"),
        ({"Variable": "$.recorded.done", "IsPresent": False}, {"recorded": {}}, "Matched"),
        ({"Variable": "$.recorded.done", "BooleanEquals": True}, {"recorded": {"done": True}}, "Matched"),
        ({"Variable": "$.recorded.done", "BooleanEquals": True}, {"recorded": {"done": False}}, "Other"),
        # A present value of another type is a non-match, not an error (as on AWS).
        ({"Variable": "$.recorded.done", "BooleanEquals": True}, {"recorded": {"done": "yes"}}, "Other"),
    ]
    for n, (rule, state_input, expected) in enumerate(cases):
        described, entered, _ = _run(local_aws, f"present-{n}", rule, state_input)
        assert described["status"] == "SUCCEEDED", (rule, described)
        assert entered == ["Decide", expected], (rule, entered)
