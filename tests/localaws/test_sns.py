"""A Lambda subscriber gets the record AWS sends (localaws/sns.py), not moto's fixed sample."""

from __future__ import annotations

import json
from typing import Any

from localaws import sns
from localaws.environment import LocalAws
from tests.conftest import own_function
from tests.support.polling import until


def test_canary_the_subscription_delivery_it_replaces_is_still_there():
    sns.check_moto_internals()


def test_a_lambda_subscriber_gets_the_topic_the_message_id_and_the_attributes():
    received: list[dict[str, Any]] = []

    def subscriber(event: dict[str, Any], context: Any) -> dict[str, Any]:
        received.append(event)
        return {}

    with LocalAws() as aws:
        arn = own_function(aws, "subscriber", subscriber)
        client = aws.central_session().client("sns")
        topic = client.create_topic(Name="requests")["TopicArn"]
        subscription = client.subscribe(
            TopicArn=topic, Protocol="lambda", Endpoint=arn, ReturnSubscriptionArn=True
        )
        first = client.publish(
            TopicArn=topic,
            Message=json.dumps({"a": 1}),
            Subject="hello",
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "redeploy"}},
        )["MessageId"]
        second = client.publish(TopicArn=topic, Message="two")["MessageId"]
        # SNS invokes its Lambda subscribers asynchronously.
        until(lambda: len(received) >= 2, timeout=10, interval=0.02, what="both messages delivered")
    assert len(received) == 2
    (record,) = received[0]["Records"]
    assert record["EventSource"] == "aws:sns"
    assert record["EventSubscriptionArn"] == subscription["SubscriptionArn"]
    message = record["Sns"]
    assert (message["TopicArn"], message["MessageId"], message["Subject"]) == (topic, first, "hello")
    assert json.loads(message["Message"]) == {"a": 1}
    assert message["MessageAttributes"] == {"kind": {"Type": "String", "Value": "redeploy"}}
    assert received[1]["Records"][0]["Sns"]["MessageId"] == second != first
