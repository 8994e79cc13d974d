"""The local AWS's EventBridge: CloudFormation's Stack Status Change events, and Lambda targets.

Events are observed through moto's own SQS target (what moto delivers natively), so these tests
check what the local AWS emits, not the deployer's handling of it (tests/workflow/test_completion_events.py).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from chalicelib.domain.bootstrap import STACK_STATUS_PATTERN
from localaws import eventbridge
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from tests.conftest import own_function

ACCOUNT = "111111111111"
QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})


def test_canary_moto_event_internals_are_still_there():
    eventbridge.check_moto_internals()
    from moto.events.models import Rule

    eventbridge.install()
    assert Rule.send_to_targets.__name__ == "send_to_targets"
    assert eventbridge._original_send is not None


def capture_stack_events(aws: LocalAws, account: str) -> Any:
    """An SQS queue in ``account`` receiving every stack status change on its default bus."""
    session = aws.account_session(account)
    queue_url = session.client("sqs").create_queue(QueueName="stack-events")["QueueUrl"]
    queue_arn = session.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events = session.client("events")
    events.put_rule(Name="all-stack-events", EventPattern=json.dumps({"source": ["aws.cloudformation"]}))
    events.put_targets(Rule="all-stack-events", Targets=[{"Id": "q", "Arn": queue_arn}])

    def received(count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            messages = session.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            got += [json.loads(m["Body"]) for m in messages.get("Messages", [])]
            time.sleep(0.05)
        return got

    return received


def test_a_simulated_stack_emits_each_status_change_when_it_happens():
    with LocalAws(simulation=StackSimulation(stack_seconds=1.0)) as aws:
        received = capture_stack_events(aws, ACCOUNT)
        cfn = aws.account_session(ACCOUNT).client("cloudformation")
        stack_id = cfn.create_stack(StackName="emits", TemplateBody=QUEUE, ClientRequestToken="nexus-op-1")[
            "StackId"
        ]
        first = received(1)
        assert [e["detail"]["status-details"]["status"] for e in first] == ["CREATE_IN_PROGRESS"]
        # The final status is not on the bus before the stack reaches it.
        assert cfn.describe_stacks(StackName="emits")["Stacks"][0]["StackStatus"] == "CREATE_IN_PROGRESS"
        final = received(1)
        assert len(final) == 1
        event = final[0]
        assert event["source"] == "aws.cloudformation"
        assert event["detail-type"] == "CloudFormation Stack Status Change"
        assert event["region"] == "us-east-1"
        assert event["resources"] == [stack_id]
        assert event["detail"] == {
            "stack-id": stack_id,
            "status-details": {"status": "CREATE_COMPLETE", "status-reason": ""},
            "client-request-token": "nexus-op-1",
        }
        assert cfn.describe_stacks(StackName="emits")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_cancelled_update_never_emits_the_status_it_did_not_reach():
    with LocalAws(simulation=StackSimulation(stack_seconds=2.0)) as aws:
        received = capture_stack_events(aws, ACCOUNT)
        cfn = aws.account_session(ACCOUNT).client("cloudformation")
        cfn.create_stack(StackName="cancels", TemplateBody=QUEUE, ClientRequestToken="nexus-op-1")
        assert len(received(2)) == 2
        two = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}, "R": {"Type": "AWS::SQS::Queue"}}})
        cfn.update_stack(StackName="cancels", TemplateBody=two, ClientRequestToken="nexus-op-2")
        cfn.cancel_update_stack(StackName="cancels", ClientRequestToken="nexus-op-2-cancel")
        statuses = [e["detail"]["status-details"]["status"] for e in received(4, timeout=8)]
        assert "UPDATE_COMPLETE" not in statuses
        assert statuses[-1] == "UPDATE_ROLLBACK_COMPLETE", statuses


def test_a_rule_delivers_to_a_lambda_target_asynchronously_and_across_accounts():
    """The forwarding rule of a target account, then the central rule's Lambda target."""
    seen: list[dict[str, Any]] = []
    arrived = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        arrived.set()
        return {}

    with LocalAws(simulation=StackSimulation(stack_seconds=0)) as aws:
        seen_arn = own_function(aws, "Seen", handler)
        central = aws.central_session().client("events")
        central.put_rule(Name="seen", EventPattern=json.dumps(STACK_STATUS_PATTERN))
        central.put_targets(Rule="seen", Targets=[{"Id": "seen", "Arn": seen_arn}])
        forward = aws.account_session(ACCOUNT).client("events")
        forward.put_rule(Name="forward", EventPattern=json.dumps(STACK_STATUS_PATTERN))
        bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
        forward.put_targets(Rule="forward", Targets=[{"Id": "bus", "Arn": bus}])
        cfn = aws.account_session(ACCOUNT).client("cloudformation")
        cfn.create_stack(StackName="not-ours", TemplateBody=QUEUE, ClientRequestToken="Console-CreateStack-1")
        cfn.create_stack(StackName="ours", TemplateBody=QUEUE, ClientRequestToken="nexus-op-9")
        assert arrived.wait(10)
        time.sleep(0.5)  # anything else that was going to arrive has
        assert {e["detail"]["client-request-token"] for e in seen} == {"nexus-op-9"}
        assert {e["detail"]["status-details"]["status"] for e in seen} == {
            "CREATE_IN_PROGRESS",
            "CREATE_COMPLETE",
        }


def test_a_schedule_rule_gets_no_event_put_on_the_bus():
    """A rule without a pattern (the template's drift schedule) is not a catch-all, as on AWS."""
    scheduled: list[dict[str, Any]] = []
    matched = threading.Event()

    def on_schedule(event: dict[str, Any], context: Any) -> dict[str, Any]:
        scheduled.append(event)
        return {}

    def on_pattern(event: dict[str, Any], context: Any) -> dict[str, Any]:
        matched.set()
        return {}

    with LocalAws() as aws:
        events = aws.central_session().client("events")
        events.put_rule(Name="hourly", ScheduleExpression="rate(1 hour)")
        events.put_targets(
            Rule="hourly", Targets=[{"Id": "s", "Arn": own_function(aws, "Hourly", on_schedule)}]
        )
        events.put_rule(Name="requests", EventPattern=json.dumps({"source": ["tests.local"]}))
        events.put_targets(
            Rule="requests", Targets=[{"Id": "p", "Arn": own_function(aws, "Requests", on_pattern)}]
        )
        events.put_events(Entries=[{"Source": "tests.local", "DetailType": "Ping", "Detail": "{}"}])
        assert matched.wait(10)
        time.sleep(0.5)  # the schedule's target would have been invoked by now
    assert scheduled == []
