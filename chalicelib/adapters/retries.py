"""Counting the AWS calls that botocore retried after a throttling error (``ThrottlesRetried``).

Through botocore's event system: every attempt of every call emits ``needs-retry``, whose handler in
``standard`` retry mode (the composition root's) decides whether to retry and, when it does not, marks
the response (``MaxAttemptsReached``, ``RetryQuotaReached``). ``ThrottleCounter`` listens on the same
event of a session, after that handler (botocore calls the service-specific handler first), so it
counts exactly the throttled attempts botocore then retries. Whether an error is a throttle is
botocore's own judgement (``ThrottlingErrorDetector``: the error codes, the service model, HTTP 429).

botocore never retries a DynamoDB transaction that was cancelled (TransactionCanceledException), even
when an item of it was throttled: ``transact_write_items`` (chalicelib/adapters/errors.py) sends such a
transaction again and announces each retry on the client's events (``TRANSACTION_RETRIED``, with the
cancellation reasons). ``ThrottleCounter`` counts those retries whose reasons hold a throttle; one
cancelled only because another transaction held an item is retried but is not a throttle.

A handler registered on a session is copied into every client made from it afterwards: the composition
root observes its session before it makes any client, and the target-account sessions as they are made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector

from chalicelib.adapters.errors import TRANSACTION_RETRIED
from chalicelib.domain.aws_errors import THROTTLE_CANCELLATION_REASONS
from chalicelib.domain.metrics import Metric

if TYPE_CHECKING:
    import boto3

    from chalicelib.service.ports import Metrics


class ThrottleCounter:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._detector = ThrottlingErrorDetector(RetryEventAdapter())

    def observe(self, session: boto3.Session) -> boto3.Session:
        """Count the throttles retried by every client made from ``session`` from now on."""
        session.events.register("needs-retry", self._needs_retry, unique_id="nexus-throttles-retried")
        session.events.register(
            TRANSACTION_RETRIED, self._transaction_retried, unique_id="nexus-transaction-throttles-retried"
        )
        return session

    def _transaction_retried(self, reasons: list[str], **_: Any) -> None:
        if THROTTLE_CANCELLATION_REASONS.intersection(reasons):
            self._metrics.add(Metric.THROTTLES_RETRIED, aws_service="dynamodb")

    def _needs_retry(self, **kwargs: Any) -> None:
        response = kwargs.get("response")
        if response is None:
            return  # no answer at all (a connection error): not a throttle
        http_response, parsed = response
        if http_response.status_code < 400 or not self._detector.is_throttling_error(**kwargs):
            return
        metadata = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        if metadata.get("MaxAttemptsReached") or metadata.get("RetryQuotaReached"):
            return  # botocore gives up here: the throttle reaches the caller
        service = kwargs["operation"].service_model.service_name
        self._metrics.add(Metric.THROTTLES_RETRIED, aws_service=str(service))
