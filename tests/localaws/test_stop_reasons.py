"""StopExecution's error and cause are kept (localaws/stop_reasons.py): DescribeExecution, the history's
ExecutionAborted event and the "Execution Status Change" event say why the execution was stopped."""

from __future__ import annotations

import json
from typing import Any

from localaws import stop_reasons
from localaws.environment import LocalAws
from tests.conftest import ended_execution
from tests.support.polling import until

HOLD = json.dumps(
    {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 30, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
)


def test_canary_moto_internals_that_the_stop_reasons_wrap() -> None:
    stop_reasons.check_moto_internals()
    stop_reasons.install()
    stop_reasons.check_moto_internals()  # still reads moto's originals after the wrap


def _aborted_event(history: list[Any]) -> dict[str, Any]:
    (aborted,) = [e for e in history if e["type"] == "ExecutionAborted"]
    details: dict[str, Any] = aborted.get("executionAbortedEventDetails", {})
    return details


def test_a_stopped_execution_keeps_the_error_and_cause_it_was_stopped_with() -> None:
    with LocalAws() as aws:
        session = aws.central_session()
        sfn, sqs, events = session.client("stepfunctions"), session.client("sqs"), session.client("events")
        url = sqs.create_queue(QueueName="ended")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="ended", EventPattern=json.dumps({"source": ["aws.states"]}))
        events.put_targets(Rule="ended", Targets=[{"Id": "q", "Arn": arn}])
        machine = sfn.create_state_machine(
            name="hold", definition=HOLD, roleArn=aws.central.service_role_arn
        )["stateMachineArn"]
        explained = sfn.start_execution(stateMachineArn=machine, name="explained")["executionArn"]
        silent = sfn.start_execution(stateMachineArn=machine, name="silent")["executionArn"]
        until(
            lambda: all(
                any(
                    e["type"] == "WaitStateEntered"
                    for e in sfn.get_execution_history(executionArn=a)["events"]
                )
                for a in (explained, silent)
            ),
            timeout=10,
            what="both executions in their Wait state",
        )

        sfn.stop_execution(
            executionArn=explained, error="Operator.Cancelled", cause="rolled back by the on-call"
        )
        sfn.stop_execution(executionArn=silent)

        described = ended_execution(sfn, explained, timeout=10, interval=0.02)
        assert described["status"] == "ABORTED"
        assert (described["error"], described["cause"]) == (
            "Operator.Cancelled",
            "rolled back by the on-call",
        )
        history = sfn.get_execution_history(executionArn=explained)["events"]
        assert _aborted_event(history) == {
            "error": "Operator.Cancelled",
            "cause": "rolled back by the on-call",
        }

        plain = ended_execution(sfn, silent, timeout=10, interval=0.02)
        assert plain["status"] == "ABORTED"
        assert "error" not in plain
        assert "cause" not in plain

        def both() -> dict[str, dict[str, Any]] | None:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for m in messages:
                detail = json.loads(m["Body"])["detail"]
                seen[detail["name"]] = detail
            return seen if len(seen) == 2 else None

        seen: dict[str, dict[str, Any]] = {}
        until(both, timeout=10, what="both status-change events")
    assert (seen["explained"]["error"], seen["explained"]["cause"]) == (
        "Operator.Cancelled",
        "rolled back by the on-call",
    )
    assert (seen["silent"]["error"], seen["silent"]["cause"]) == (None, None)
