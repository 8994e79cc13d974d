"""Tell a deployment's owner how each operation ended: an SNS message and/or a signed HTTPS webhook.

Why signed: a webhook receiver must be able to tell our messages from anyone's POST. Each delivery
carries ``X-Nexus-Timestamp`` (Unix seconds) and ``X-Nexus-Signature: sha256=<hex>``, the HMAC-SHA256,
keyed with the deployment's webhook secret, of ``<timestamp>.<raw body>``. Signing the timestamp with
the body stops replays: a receiver refuses timestamps older than a few minutes (see
``verify_signature``), and an attacker cannot move the timestamp without the secret.

Where the secret lives: the caller sends it once, with POST /deployments; it goes straight into
Secrets Manager (``SecretStore``) under the service's own prefix, and the deployment record keeps only
that secret's name. It is never logged, never returned and never in DynamoDB or an execution's state.

A notification never fails an operation: every delivery error is logged (without the secret, the
signature or the URL's query string) and dropped.

Fleet rollouts (chalicelib/service/rollouts/) take the same settings and are told through the same
channels, signing and guards: ``check`` refuses a bad request before any I/O, ``configure_fleet``
accepts a topic in any of the rollout's target accounts, and ``send`` delivers a message built by the
caller under a delivery id the caller chooses, so that a receiver can drop a repeat of one announcement.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chalicelib.domain.automation import Notifications, topic_account
from chalicelib.domain.errors import DeployerError, TransientAwsError, UnprocessableRequest
from chalicelib.domain.metrics import Metric
from chalicelib.domain.model import Action, Deployment, OperationStatus, utc_now
from chalicelib.service.event_ports import SecretStore, TopicPublisher, WebhookPoster
from chalicelib.service.ports import Metrics, NoMetrics

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Nexus-Signature"
TIMESTAMP_HEADER = "X-Nexus-Timestamp"
DELIVERY_HEADER = "X-Nexus-Delivery"
MAX_SKEW_SECONDS = 300
MIN_SECRET_CHARS = 16


class NotificationFailed(DeployerError):
    code = "NOTIFICATION_FAILED"
    hint = "Check that the webhook URL answers 2xx and the SNS topic lets the service publish."


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str, body: bytes, timestamp: str, signature: str, now: float, max_skew: int = MAX_SKEW_SECONDS
) -> bool:
    """What a receiver does: constant-time compare, and refuse stale or future timestamps."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    return age <= max_skew and hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True)
class NotificationRequest:
    """As the caller sends it; ``webhook_secret`` is stored by ``configure`` and then forgotten."""

    sns_topic_arn: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class NotificationSettings:
    secret_prefix: str = "nexus-deployer/webhooks/"  # noqa: S105 - a name prefix, not a secret
    # Local mode and tests only: allow http:// and loopback webhook hosts (SSRF guard off).
    allow_local_webhooks: bool = False
    # The role that publishes (the template's NotifierRole, output NotifierRoleArn): what a topic's
    # policy must let publish, so the hints name it.
    publisher_arn: str = ""

    def topic_hint(self, where: str) -> str:
        who = (
            f"{self.publisher_arn} (the stack's NotifierRoleArn output)"
            if self.publisher_arn
            else "the service"
        )
        return f"Use an SNS topic in {where} whose policy grants sns:Publish to {who}."


def check_webhook_url(url: str, allow_local: bool) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts, host = urlsplit(""), ""
    problem = None
    if parts.scheme not in ("https", "http") or not host:
        problem = "must be an https:// URL"
    elif parts.username or parts.password:
        problem = "must not carry credentials"
    elif not allow_local and (parts.scheme != "https" or _is_local(host)):
        problem = "must be https:// to a public host"
    if problem or len(url) > 2048:
        raise UnprocessableRequest(
            f"webhook_url {problem or 'is longer than 2048 characters'}.",
            code="INVALID_WEBHOOK_URL",
            hint="Send an https:// URL on a public host; the service POSTs signed JSON to it.",
            details={"field": "notifications.webhook_url"},
        )


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def outcome_message(deployment: Deployment, outcome: str) -> dict[str, Any]:
    """The JSON every channel sends. No parameters (they may hold secrets), no notification settings."""
    public = deployment.public()
    return {
        "type": f"deployment.{outcome}",
        "sent_at": utc_now(),
        "deployment": {
            key: public[key]
            for key in (
                "deployment_id",
                "target_id",
                "account_id",
                "region",
                "stack_name",
                "status",
                "stack_status",
                "stack_id",
                "outputs",
                "error",
                "operation",
            )
        },
    }


class NotificationService:
    def __init__(
        self,
        secrets_store: SecretStore,
        topics: TopicPublisher,
        webhooks: WebhookPoster,
        settings: NotificationSettings,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or NoMetrics()
        self._secrets = secrets_store
        self._topics = topics
        self._webhooks = webhooks
        self._settings = settings
        self._clock = clock

    def configure(self, tenant_id: str, account_id: str, request: NotificationRequest) -> Notifications:
        """Validate the request and store the webhook secret; the result holds only its reference."""
        self.check_for_account(account_id, request)
        return self.store(tenant_id, request)

    def check_for_account(self, account_id: str, request: NotificationRequest) -> None:
        """Every rule of ``configure`` for a target in ``account_id``, without I/O: callers check it with
        the rest of a request, and ``store`` only once nothing else can refuse it."""
        self.check(request)
        # The service role may publish to many topics; only the target account's own are allowed, so
        # one tenant cannot point the service's messages at a topic of another.
        if request.sns_topic_arn is not None and topic_account(request.sns_topic_arn) != account_id:
            raise UnprocessableRequest(
                "sns_topic_arn must be a topic in the target's account.",
                code="INVALID_SNS_TOPIC",
                hint=self._settings.topic_hint(f"account {account_id}"),
                details={"field": "notifications.sns_topic_arn"},
            )

    def store(self, tenant_id: str, request: NotificationRequest) -> Notifications:
        """Store a checked request's webhook secret; the result holds only its reference."""
        reference = None
        if request.webhook_url is not None and request.webhook_secret is not None:  # both, by check()
            name = f"{self._settings.secret_prefix}{tenant_id}/{secrets.token_hex(12)}"
            reference = self._secrets.put(name, request.webhook_secret)
        return Notifications(request.sns_topic_arn, request.webhook_url, reference)

    def discard(self, notifications: Notifications | None) -> None:
        """Delete the webhook secret ``store`` kept for a record whose write then failed: no record refers
        to it. Never raises over the failure being handled; a secret it cannot delete is logged by name."""
        reference = notifications.webhook_secret_ref if notifications is not None else None
        if reference is None:
            return
        try:
            self._secrets.delete(reference)
        except DeployerError as error:
            logger.warning(
                "webhook secret not deleted", extra={"secret_name": reference, "error_code": error.code}
            )

    def check(self, request: NotificationRequest) -> None:
        """Every rule of ``configure`` that needs no I/O and no target; raises what it raises."""
        if request.sns_topic_arn is not None and topic_account(request.sns_topic_arn) is None:
            raise UnprocessableRequest(
                "sns_topic_arn is not an SNS topic ARN.",
                code="INVALID_SNS_TOPIC",
                hint="Send arn:aws:sns:REGION:ACCOUNT_ID:TOPIC_NAME.",
                details={"field": "notifications.sns_topic_arn"},
            )
        if request.webhook_url is not None:
            check_webhook_url(request.webhook_url, self._settings.allow_local_webhooks)
            if request.webhook_secret is None or len(request.webhook_secret) < MIN_SECRET_CHARS:
                raise UnprocessableRequest(
                    f"webhook_secret of at least {MIN_SECRET_CHARS} characters is required with webhook_url.",
                    code="WEBHOOK_SECRET_REQUIRED",
                    hint="Send a random secret; your receiver uses it to check X-Nexus-Signature.",
                    details={"field": "notifications.webhook_secret"},
                )
        elif request.webhook_secret is not None:
            raise UnprocessableRequest(
                "webhook_secret was sent without webhook_url.",
                code="WEBHOOK_URL_REQUIRED",
                details={"field": "notifications.webhook_secret"},
            )

    def configure_fleet(
        self, tenant_id: str, account_ids: Collection[str], request: NotificationRequest
    ) -> Notifications:
        """``configure`` for a rollout: the topic may be in any account the rollout deploys to."""
        self.check(request)
        owner = topic_account(request.sns_topic_arn) if request.sns_topic_arn is not None else None
        if request.sns_topic_arn is not None and owner not in account_ids:
            shown = ", ".join(sorted(account_ids)[:5]) + (", ..." if len(account_ids) > 5 else "")
            raise UnprocessableRequest(
                "sns_topic_arn must be a topic in one of the rollout's target accounts.",
                code="INVALID_SNS_TOPIC",
                hint=self._settings.topic_hint(f"one of {shown}"),
                details={"field": "notifications.sns_topic_arn"},
            )
        # Checked above; ``configure`` stores the webhook secret (its account only matters for a topic,
        # whose owner is one of the fleet's accounts by now).
        return self.configure(tenant_id, owner or "", request)

    def send(
        self,
        config: Notifications,
        message: dict[str, Any],
        *,
        subject: str,
        attributes: dict[str, str],
        delivery_id: str,
        log_fields: dict[str, str],
    ) -> list[str]:
        """Send ``message`` on every configured channel, signed like ``notify``'s; never raises. The
        channels that failed because AWS was throttling (worth sending again), if any.

        ``delivery_id`` becomes the webhook's ``X-Nexus-Delivery``: the same for every attempt to
        deliver one announcement, so a receiver can recognise a repeat.
        """
        body = json.dumps(message, sort_keys=True).encode("utf-8")
        throttled: list[str] = []
        if config.sns_topic_arn:
            topic = config.sns_topic_arn
            if self._guarded(
                "sns",
                log_fields,
                lambda: self._topics.publish(topic, subject[:100], body.decode("utf-8"), attributes),
            ):
                throttled.append("sns")
        if config.webhook_url and self._guarded(
            "webhook", log_fields, lambda: self._post(config, body, delivery_id)
        ):
            throttled.append("webhook")  # its secret's read was throttled
        return throttled

    def on_saved(self, deployment: Deployment) -> None:
        """Called with every saved deployment: notify when its operation has just ended."""
        operation = deployment.operation
        if deployment.notifications is None or operation.ended_at is None:
            return
        if operation.status is OperationStatus.SUCCEEDED:
            self.notify(deployment, "deleted" if operation.action is Action.DELETE else "succeeded")
        elif operation.status is OperationStatus.FAILED:
            self.notify(deployment, "failed")

    def notify(self, deployment: Deployment, outcome: str) -> None:
        """Send ``deployment.<outcome>`` on every configured channel; never raises."""
        config = deployment.notifications
        if config is None:
            return
        body = json.dumps(outcome_message(deployment, outcome), sort_keys=True).encode("utf-8")
        if config.sns_topic_arn:
            self._deliver(
                deployment,
                "sns",
                lambda: self._topics.publish(
                    config.sns_topic_arn or "",
                    f"NexusAI Deployer: {deployment.stack_name} {outcome}"[:100],
                    body.decode("utf-8"),
                    {"type": f"deployment.{outcome}", "deployment_id": deployment.deployment_id},
                ),
            )
        if config.webhook_url:
            self._deliver(deployment, "webhook", lambda: self._post(config, body))

    def _post(self, config: Notifications, body: bytes, delivery_id: str | None = None) -> None:
        timestamp = str(int(self._clock()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
        headers[DELIVERY_HEADER] = delivery_id or secrets.token_hex(16)
        if config.webhook_secret_ref:
            headers[SIGNATURE_HEADER] = sign(self._secrets.get(config.webhook_secret_ref), timestamp, body)
        status = self._webhooks.post(config.webhook_url or "", body, headers)
        if status >= 300:
            raise NotificationFailed(f"the webhook answered HTTP {status}")

    def _deliver(self, deployment: Deployment, channel: str, send: Callable[[], None]) -> None:
        fields = {
            "deployment_id": deployment.deployment_id,
            "operation_id": deployment.operation.operation_id,
        }
        self._guarded(channel, fields, send)

    def _guarded(self, channel: str, fields: dict[str, str], send: Callable[[], None]) -> bool:
        """Send; a failure is counted and logged, never raised. True when AWS was throttling."""
        try:
            send()
            return False
        except Exception as error:  # noqa: BLE001 - a notification must never fail the operation
            # Our own messages only: a foreign exception's text could carry a URL's query or a header.
            code = error.code if isinstance(error, DeployerError) else type(error).__name__
            detail = error.message if isinstance(error, DeployerError) else ""
            self._metrics.add(Metric.NOTIFICATIONS_FAILED, channel=channel)
            logger.warning(
                "notification dropped",
                extra={"channel": channel, **fields, "error_code": code, "error": detail},
            )
            return isinstance(error, TransientAwsError)
