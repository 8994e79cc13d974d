"""Where notifications go: Secrets Manager for webhook secrets, SNS topics, and HTTPS webhooks.

The webhook poster refuses hosts that resolve to private, loopback or link-local addresses (the
Lambda runtime API and instance metadata live there) unless local mode allows them, connects to the
very address it checked (one DNS lookup: no rebinding between check and connect), and never follows
redirects: a webhook answers where it was registered or not at all.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
from botocore.config import Config

from chalicelib.adapters.adfs_http import URL_SAFE, PinnedHttps
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

    def delete(self, reference: str) -> None:
        with aws_call("DeleteSecret"):
            try:
                self._client.delete_secret(SecretId=reference, ForceDeleteWithoutRecovery=True)
            except self._client.exceptions.ResourceNotFoundException:
                return


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
        if self._allow_local:  # local mode: a webhook on this machine, plain HTTP allowed
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with self._opener.open(request, timeout=self._timeout) as response:
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return int(error.code)
            except (urllib.error.URLError, OSError) as error:
                raise NotificationFailed(f"the webhook did not answer: {type(error).__name__}") from None
        return self._post_pinned(url, body, headers)

    def _post_pinned(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """Resolve the host once, refuse it unless every address is public, then connect to that
        checked address (TLS checked against the host name): a second lookup, which DNS could answer
        differently (rebinding), never happens. No redirect is followed (``http.client`` follows none)."""
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
            raise NotificationFailed("webhook URLs must be https://")
        try:
            port = parts.port or 443
            infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
        except (OSError, ValueError):
            raise NotificationFailed("the webhook host does not resolve") from None
        addresses = [str(info[4][0]) for info in infos]
        if not addresses or not all(ipaddress.ip_address(a).is_global for a in addresses):
            raise NotificationFailed("the webhook host resolves to a non-public address")
        path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=URL_SAFE)
        host = parts.hostname if port == 443 else f"{parts.hostname}:{port}"
        context = ssl.create_default_context()
        failure: Exception | None = None
        for address in dict.fromkeys(addresses):  # each checked address in turn (IPv6 first, say)
            connection = PinnedHttps(parts.hostname, port, address, context, self._timeout)
            try:
                connection.request("POST", path, body=body, headers={**headers, "Host": host})
                return int(connection.getresponse().status)
            except ssl.SSLError as error:  # the host's certificate: another address would not help
                raise NotificationFailed(f"the webhook's TLS failed: {type(error).__name__}") from None
            except (OSError, http.client.HTTPException) as error:
                failure = error
            finally:
                connection.close()
        raise NotificationFailed(f"the webhook did not answer: {type(failure).__name__}")
