"""SNS delivers to Lambda subscribers the event AWS delivers.

Why this exists: moto 5.2.5's SNS invokes a Lambda subscriber with a fixed sample record
(``LambdaBackend.send_sns_message``): ``TopicArn`` ``arn:aws:sns:EXAMPLE``, the same ``MessageId`` for
every message, no subscription ARN, no message attributes. The service's ``RedeployMessage`` handler reads
the topic's account (only the service's own account may ask for redeploys) and deduplicates by message
id, so with moto's record every message is dropped as foreign. ``install()`` makes a Lambda subscription's
delivery carry AWS's record (the topic, the message id, the subscription, the subject, the time, the
attributes, as in AWS's "Using Lambda with Amazon SNS" sample), invoked through moto's Lambda backend (so
the function runs the project's handler in-process, under its role: ``localaws/lambda_runner.py``),
asynchronously as AWS invokes subscribers, with Lambda's retries and dead-letter queue
(``localaws/async_invoke.py``, on the local AWS's delivery thread).
Filter policies and raw delivery stay moto's; other protocols are untouched.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from localaws.patching import Patcher, params

__all__ = ["check_moto_internals", "install", "lambda_record"]

_PATCHER = Patcher("localaws.sns")


def lambda_record(
    subscription: Any, message: str, message_id: str, subject: str | None, attributes: Any
) -> dict[str, Any]:
    """The event AWS hands a Lambda subscriber for one message."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{datetime.now(UTC).microsecond // 1000:03d}Z"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": str(subscription.arn),
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": str(subscription.topic.arn),
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": now,
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {
                        name: {"Type": value.get("Type"), "Value": value.get("Value")}
                        for name, value in (attributes or {}).items()
                    },
                },
            }
        ]
    }


def _publish(original: Any) -> Any:
    def publish(
        self: Any, message: str, message_id: str, subject: str | None = None, *args: Any, **kwargs: Any
    ) -> None:
        if self.protocol != "lambda":
            original(self, message, message_id, subject, *args, **kwargs)
            return
        attributes = kwargs.get("message_attributes", args[0] if args else None)
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(
            attributes, message
        ):
            return
        from localaws import async_invoke

        # SNS invokes its Lambda subscribers asynchronously, with Lambda's retries and dead-letter queue:
        # Publish answers first. (Synchronously, the handler ran inside Publish's moto request and lock,
        # and deadlocked with a handler of another thread that held a table lock while waiting for moto.)
        async_invoke.invoke(
            str(self.endpoint), json.dumps(lambda_record(self, message, message_id, subject, attributes))
        )

    return publish


def check_moto_internals() -> None:
    from moto.sns.models import Subscription

    original = getattr(Subscription.publish, "__wrapped__", Subscription.publish)
    _PATCHER.expect(
        params(original)[:5] == ["self", "message", "message_id", "subject", "message_attributes"],
        "Subscription.publish(self, message, message_id, subject, message_attributes, ...)",
    )
    for attribute in ("_filter_policy_matcher", "protocol", "endpoint", "account_id", "topic", "arn"):
        _PATCHER.expect(
            attribute in Subscription.__init__.__code__.co_names or hasattr(Subscription, attribute),
            f"Subscription.{attribute}",
        )


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        from moto.sns.models import Subscription

        _PATCHER.wrap(Subscription, "publish", _publish)
