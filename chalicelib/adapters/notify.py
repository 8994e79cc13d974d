"""Where notifications go: Secrets Manager for webhook secrets, SNS topics, and HTTPS webhooks.

The webhook poster refuses hosts that resolve to private, loopback or link-local addresses (the
Lambda runtime API and instance metadata live there) unless local mode allows them, and never
follows redirects: a webhook answers where it was registered or not at all.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from chalicelib.adapters.errors import aws_call
from chalicelib.service.notifications import NotificationFailed


class SecretsManagerStore:
    # Any: the dev requirements carry no mypy_boto3_secretsmanager stubs.
    def __init__(self, client: Any) -> None:
        self._client = client

    def put(self, name: str, value: str) -> str:
        with aws_call("CreateSecret"):
            self._client.create_secret(
                Name=name, SecretString=value, Description="NexusAI Deployer webhook signing secret"
            )
        return name

    def get(self, reference: str) -> str:
        with aws_call("GetSecretValue"):
            return str(self._client.get_secret_value(SecretId=reference)["SecretString"])


class SnsTopicPublisher:
    """Publishes with the service's own identity, in the topic's region (read from its ARN)."""

    def __init__(self, session: boto3.Session, client_config: Config) -> None:
        self._session = session
        self._config = client_config
        self._clients: dict[str, Any] = {}

    def publish(self, topic_arn: str, subject: str, message: str, attributes: dict[str, str]) -> None:
        region = topic_arn.split(":")[3]
        client = self._clients.get(region)
        if client is None:
            client = self._clients[region] = self._session.client(
                "sns", region_name=region, config=self._config
            )
        with aws_call("Publish"):
            client.publish(
                TopicArn=topic_arn,
                Subject=subject,
                Message=message,
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                },
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibWebhookPoster:
    def __init__(self, *, allow_local: bool = False, timeout_seconds: float = 5.0) -> None:
        self._allow_local = allow_local
        self._timeout = timeout_seconds
        self._opener = urllib.request.build_opener(_NoRedirect)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self._check_host(url)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except (urllib.error.URLError, OSError) as error:
            raise NotificationFailed(f"the webhook did not answer: {type(error).__name__}") from None

    def _check_host(self, url: str) -> None:
        parts = urlsplit(url)
        if self._allow_local:
            return
        if parts.scheme != "https" or not parts.hostname:
            raise NotificationFailed("webhook URLs must be https://")
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError:
            raise NotificationFailed("the webhook host does not resolve") from None
        for info in infos:
            if not ipaddress.ip_address(info[4][0]).is_global:
                raise NotificationFailed("the webhook host resolves to a non-public address")
