"""Lambda's asynchronous invocation in the local AWS (localaws/async_invoke.py): a function that fails
an event EventBridge or SNS delivered, or that ``Invoke`` was given with ``InvocationType=Event``, is run
again twice, then the event goes to its dead-letter queue.

Each test puts a real event on the local bus, publishes on the local topic or calls Invoke, and the
function's real handler fails; the dead-letter queue is read with boto3, as an operator would read it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localaws import async_invoke
from localaws.async_invoke import AsyncRetries
from localaws.environment import LocalAws
from tests.conftest import own_function
from tests.support.polling import until

SHORT = AsyncRetries((0.2, 0.4))
SECRET = "sk-live-0123456789abcdef-not-for-logs"


def test_canary_moto_lambda_internals_are_still_there():
    async_invoke.check_moto_internals()


def test_async_retries_setting_is_two_waits_within_aws_own():
    assert AsyncRetries.from_env({}) == AsyncRetries((1.0, 2.0))
    assert AsyncRetries.parse(" 0.5 , 3 ") == AsyncRetries((0.5, 3.0))
    assert AsyncRetries.parse("0,0").describe() == "0 s then 0 s"
    for bad in ("1", "1,2,3", "a,b", "-1,2", "61,2"):
        with pytest.raises(ValueError, match="NEXUS_LOCAL_ASYNC_RETRY_SECONDS"):
            AsyncRetries.parse(bad)


def _queue(aws: LocalAws, name: str) -> tuple[str, str]:
    sqs = aws.central_session().client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _with_dead_letters(
    aws: LocalAws, name: str, handler: Any, timeout: int = 3, **invoke_config: int
) -> tuple[str, str]:
    """A function of the test's (``own_function``) whose dead-letter queue is a new SQS queue, set by
    UpdateFunctionConfiguration, with ``invoke_config`` as its event invoke config: (its ARN, the queue's URL)."""
    arn = own_function(aws, name, handler, timeout=timeout)
    url, dlq = _queue(aws, f"{name.lower()}-dlq")
    lambda_client = aws.central_session().client("lambda")
    lambda_client.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": dlq})
    if invoke_config:
        lambda_client.put_function_event_invoke_config(FunctionName=name, **invoke_config)
    return arn, url


def _rule_to(aws: LocalAws, function_arn: str) -> None:
    events = aws.central_session().client("events")
    events.put_rule(Name="pings", EventPattern=json.dumps({"source": ["tests.local"]}))
    events.put_targets(Rule="pings", Targets=[{"Id": "f", "Arn": function_arn}])


def _ping(aws: LocalAws, detail: dict[str, Any]) -> None:
    aws.central_session().client("events").put_events(
        Entries=[{"Source": "tests.local", "DetailType": "Ping", "Detail": json.dumps(detail)}]
    )


def _messages(aws: LocalAws, url: str) -> list[dict[str, Any]]:
    answer = (
        aws.central_session()
        .client("sqs")
        .receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
    )
    messages: list[dict[str, Any]] = answer.get("Messages", [])
    return messages


def _first_dead_letters(aws: LocalAws, url: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def arrived() -> bool:
        got.extend(_messages(aws, url))
        return bool(got)

    until(arrived, timeout=10, interval=0.05, what="a message in the dead-letter queue")
    return got


def test_an_event_that_fails_twice_is_run_a_third_time_and_takes_effect_once():
    attempts: list[tuple[float, str, str]] = []  # (when, request id, event id)
    effects: list[str] = []

    def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
        attempts.append((time.monotonic(), context.aws_request_id, event["id"]))
        if len(attempts) < 3:
            raise RuntimeError("the downstream service is not ready")
        effects.append(event["detail"]["order"])
        return {}

    with LocalAws(async_retries=SHORT) as aws:
        arn, url = _with_dead_letters(aws, "Flaky", flaky)
        _rule_to(aws, arn)
        _ping(aws, {"order": "o-1"})
        until(lambda: effects, timeout=10, interval=0.02, what="the third attempt")
        time.sleep(0.8)  # longer than both waits: a fourth attempt would have come
        assert _messages(aws, url) == []
    assert effects == ["o-1"]
    assert len(attempts) == 3
    # One invocation: the same event and request ID on every attempt, the configured waits between them.
    assert len({(request, event) for _, request, event in attempts}) == 1
    assert attempts[1][0] - attempts[0][0] >= SHORT.delays[0]
    assert attempts[2][0] - attempts[1][0] >= SHORT.delays[1]


def test_an_event_that_always_fails_is_tried_three_times_then_kept_in_the_dead_letter_queue(
    caplog: pytest.LogCaptureFixture,
):
    """Through SNS this time: the queue gets the record SNS handed the function, with Lambda's attributes,
    and neither it nor the log carries what the handler held (its error's cause included)."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append((context.aws_request_id, event))
        credential = SECRET
        try:
            raise KeyError(credential)
        except KeyError as cause:
            raise PermissionError("the partner API refused our key") from cause

    caplog.set_level(logging.DEBUG)
    with LocalAws(async_retries=SHORT) as aws:
        arn, url = _with_dead_letters(aws, "Broken", broken)
        sns = aws.central_session().client("sns")
        topic = sns.create_topic(Name="orders")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)
        sns.publish(TopicArn=topic, Message=json.dumps({"order": "o-2"}))
        got = _first_dead_letters(aws, url)
        time.sleep(0.8)
        assert len(seen) == 3
        assert _messages(aws, url) == []  # one message, not one per attempt
    (message,) = got
    (request_id,) = {request for request, _ in seen}
    assert json.loads(message["Body"]) == seen[0][1]  # the event itself, unchanged
    assert json.loads(json.loads(message["Body"])["Records"][0]["Sns"]["Message"]) == {"order": "o-2"}
    assert message["MessageAttributes"] == {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "the partner API refused our key"},
    }
    assert SECRET not in json.dumps(message)
    assert SECRET not in caplog.text
    assert "retrying" in caplog.text
    assert "sent to" in caplog.text


def test_a_timed_out_attempt_is_retried_and_a_lowered_retry_count_is_honoured():
    """``Sandbox.Timedout`` is a function error like any other; ``MaximumRetryAttempts: 1`` means two
    attempts in all."""
    runs: list[float] = []
    release = threading.Event()

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs.append(time.monotonic())
        release.wait(3)
        return {}

    with LocalAws(async_retries=SHORT) as aws:
        arn, url = _with_dead_letters(aws, "Slow", slow, timeout=1, MaximumRetryAttempts=1)
        _rule_to(aws, arn)
        _ping(aws, {"order": "o-3"})
        got = _first_dead_letters(aws, url)
        release.set()
    assert len(runs) == 2
    (message,) = got
    assert json.loads(message["Body"])["detail"] == {"order": "o-3"}
    assert "Task timed out after 1.00 seconds" in message["MessageAttributes"]["ErrorMessage"]["StringValue"]


def test_an_event_too_old_for_the_next_attempt_goes_to_the_queue_at_once():
    """``MaximumEventAgeInSeconds: 100``: AWS would retry at 60 s, not at 180 s; the ages count AWS's
    waits, not the short local ones."""
    runs: list[str] = []

    def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        runs.append(context.aws_request_id)
        raise RuntimeError("no")

    with LocalAws(async_retries=SHORT) as aws:
        arn, url = _with_dead_letters(aws, "Aging", failing, MaximumEventAgeInSeconds=100)
        _rule_to(aws, arn)
        _ping(aws, {"order": "o-4"})
        got = _first_dead_letters(aws, url)
    assert len(runs) == 2
    assert got[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == "no"


def test_dead_letter_config_is_kept_as_aws_keeps_it():
    with LocalAws() as aws:
        _url, dlq = _queue(aws, "kept-dlq")
        own_function(aws, "Kept", lambda event, context: {})
        lambda_client = aws.central_session().client("lambda")
        assert "DeadLetterConfig" not in lambda_client.get_function_configuration(FunctionName="Kept")
        lambda_client.update_function_configuration(FunctionName="Kept", DeadLetterConfig={"TargetArn": dlq})
        assert lambda_client.get_function(FunctionName="Kept")["Configuration"]["DeadLetterConfig"] == {
            "TargetArn": dlq
        }
        lambda_client.update_function_configuration(FunctionName="Kept", DeadLetterConfig={"TargetArn": ""})
        assert "DeadLetterConfig" not in lambda_client.get_function_configuration(FunctionName="Kept")
        deployed = aws.stack.functions()["StackStatusChanged"]
        configured = lambda_client.get_function_configuration(FunctionName=deployed.name)
        # The template's SAM DeadLetterQueue reaches the function as AWS's DeadLetterConfig.
        assert configured["DeadLetterConfig"] == {
            "TargetArn": aws.stack.attribute("StackEventDeadLetterQueue", "Arn")
        }


def test_an_invoke_of_type_event_answers_at_once_and_is_retried_then_dead_lettered():
    """``Invoke`` with ``InvocationType=Event``: 202 with no body before the handler has finished, then
    the same attempts and dead-letter queue as an event's (moto 5.2.5 ran it once, and kept nothing)."""
    runs: list[str] = []
    release = threading.Event()

    def refusing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        release.wait(5)
        runs.append(context.aws_request_id)
        raise RuntimeError("refused")

    with LocalAws(async_retries=SHORT) as aws:
        _arn, url = _with_dead_letters(aws, "Queued", refusing)
        answer = (
            aws.central_session()
            .client("lambda")
            .invoke(FunctionName="Queued", InvocationType="Event", Payload=b'{"order": "o-5"}')
        )
        assert (answer["StatusCode"], answer["Payload"].read(), runs) == (202, b"", [])
        release.set()
        got = _first_dead_letters(aws, url)
        time.sleep(0.8)
        assert _messages(aws, url) == []
    assert len(runs) == 3
    assert len(set(runs)) == 1  # one invocation, one request ID
    (message,) = got
    assert json.loads(message["Body"]) == {"order": "o-5"}
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "refused"


def test_an_invoke_of_type_event_refuses_what_lambda_refuses():
    """Not JSON: 400 InvalidRequestContentException; over 1 MB: 413 RequestEntityTooLargeException; an
    unknown function: 404. Nothing runs."""
    runs: list[str] = []
    with LocalAws(async_retries=SHORT) as aws:
        own_function(aws, "Picky", lambda event, context: runs.append(context.aws_request_id))
        lambda_client = aws.central_session().client("lambda")
        refused: list[tuple[str, int]] = []
        for name, payload in (
            ("Picky", b"not json"),
            ("Picky", b'{"pad": "' + b"x" * 1_048_576 + b'"}'),
            ("Missing", b"{}"),
        ):
            with pytest.raises(ClientError) as raised:
                lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=payload)
            refused.append(
                (
                    raised.value.response["Error"]["Code"],
                    raised.value.response["ResponseMetadata"]["HTTPStatusCode"],
                )
            )
        time.sleep(0.3)
    assert refused == [
        ("InvalidRequestContentException", 400),
        ("RequestEntityTooLargeException", 413),
        ("ResourceNotFoundException", 404),
    ]
    assert runs == []
