"""Step Functions' "Execution Status Change" events in the local AWS (localaws/execution_events.py).

A rule on the central account's default bus sends them to an SQS queue, which the test reads: the
event arrives through moto's own rules and targets, as EventBridge delivers it on AWS.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from localaws import execution_events
from localaws.environment import LocalAws
from tests.conftest import ended_execution

HOLD = json.dumps(
    {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 5, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
)
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}})
FAIL = json.dumps(
    {"StartAt": "Broke", "States": {"Broke": {"Type": "Fail", "Error": "Broken", "Cause": "why"}}}
)


def test_canary_moto_internals_that_the_events_wrap() -> None:
    execution_events.check_moto_internals()
    execution_events.install()
    execution_events.check_moto_internals()  # still reads moto's original after the wrap


@pytest.fixture
def heard(local_aws: LocalAws) -> tuple[Any, Any, Any, str]:
    """(stepfunctions client, a reader of ``count`` caught events, what else is in the queue now, the role
    for state machines)."""
    session = local_aws.central_session()
    sqs, events = session.client("sqs"), session.client("events")
    queue_url = sqs.create_queue(QueueName="heard")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]}
    events.put_rule(Name="heard", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="heard", Targets=[{"Id": "q", "Arn": queue_arn}])

    def read(count: int, seconds: float = 15) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while len(found) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} events"
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            time.sleep(0.05)
        return found

    def leftover() -> list[Any]:
        messages: list[Any] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        return messages

    return session.client("stepfunctions"), read, leftover, local_aws.central.service_role_arn


def _machine(sfn: Any, name: str, definition: str, role: str) -> str:
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"])


def test_each_ending_puts_one_event_shaped_as_aws_shapes_it(heard: tuple[Any, Any, Any, str]) -> None:
    sfn, read, leftover, role = heard
    passed = sfn.start_execution(stateMachineArn=_machine(sfn, "p", PASS, role), input='{"a": 1}')[
        "executionArn"
    ]
    failed = sfn.start_execution(stateMachineArn=_machine(sfn, "f", FAIL, role))["executionArn"]
    held = sfn.start_execution(stateMachineArn=_machine(sfn, "h", HOLD, role))["executionArn"]
    time.sleep(0.3)
    sfn.stop_execution(executionArn=held, error="Operator", cause="stopped")

    by_arn = {e["detail"]["executionArn"]: e for e in read(3)}
    assert set(by_arn) == {passed, failed, held}
    ok = by_arn[passed]
    assert ok["source"] == "aws.states"
    assert ok["detail-type"] == "Step Functions Execution Status Change"
    assert ok["resources"] == [passed]
    assert ok["detail"]["status"] == "SUCCEEDED"
    assert json.loads(ok["detail"]["input"]) == {"a": 1}
    assert json.loads(ok["detail"]["output"]) == {"ok": 1}
    assert ok["detail"]["stateMachineArn"].endswith(":stateMachine:p")
    assert ok["detail"]["stopDate"] >= ok["detail"]["startDate"] > 1_700_000_000_000  # epoch milliseconds
    assert (by_arn[failed]["detail"]["status"], by_arn[failed]["detail"]["error"]) == ("FAILED", "Broken")
    assert by_arn[failed]["detail"]["cause"] == "why"
    assert by_arn[held]["detail"]["status"] == "ABORTED"
    assert by_arn[held]["detail"]["output"] is None
    # An Express workflow's executions emit none, as on AWS.
    express = sfn.create_state_machine(name="x", definition=PASS, roleArn=role, type="EXPRESS")
    quick = sfn.start_execution(stateMachineArn=express["stateMachineArn"])["executionArn"]
    ended_execution(sfn, quick, timeout=5, interval=0.02)
    # Events are delivered in the order they were put: once a later Standard execution's event is in,
    # an event of the Express one would be too.
    marker = sfn.start_execution(stateMachineArn=_machine(sfn, "m", PASS, role))["executionArn"]
    (after,) = read(1)
    assert after["detail"]["executionArn"] == marker
    assert leftover() == []  # one event per ending, none for RUNNING
