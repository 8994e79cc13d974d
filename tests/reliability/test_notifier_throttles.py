"""ThrottlesRetried counts the throttled SNS publishes of notifications too.

Notifications are published as the one role topic policies name (``NEXUS_NOTIFIER_ROLE_ARN``, set on
every function by the template), through a session of that role. Its clients must count their retried
throttles as the service's other clients do, or a throttled topic never shows in the metric.
"""

from __future__ import annotations

from bench.chaos.harness import chaos_service
from chalicelib.domain.automation import Notifications
from chalicelib.domain.metrics import Metric
from localaws.faults import FaultSettings
from tests.conftest import TARGET_ACCOUNT


def test_a_throttled_publish_of_a_notification_counts_each_retry_under_sns() -> None:
    with chaos_service(FaultSettings(throttle=1.0)) as h:
        assert h.services.settings.notifier_role_arn  # the template's setting: the role's own session
        owner = h.aws.account_session(TARGET_ACCOUNT)  # a customer's topic, as the guide sets one up
        topic = owner.client("sns", region_name="us-east-1").create_topic(Name="alerts")["TopicArn"]
        config = Notifications(sns_topic_arn=topic)

        def send() -> list[str]:
            throttled: list[str] = h.services.notifications.send(
                config, {"hello": 1}, subject="s", attributes={}, delivery_id="d-1", log_fields={}
            )
            return throttled

        assert send() == []  # the role's credentials are fetched before the faults
        assert h.metrics.total(Metric.NOTIFICATIONS_FAILED) == 0  # delivered
        h.faults_on()
        try:
            assert send() == ["sns"]  # every attempt throttled: botocore gave up, reported throttled
        finally:
            h.faults_off()
        retried = [point for point in h.metrics.points if point[0] == Metric.THROTTLES_RETRIED.spec.name]
        attempts = h.services.settings.aws_max_attempts
        assert retried == [("ThrottlesRetried", 1.0, {"aws_service": "sns"})] * (attempts - 1)
