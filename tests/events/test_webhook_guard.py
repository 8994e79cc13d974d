"""The webhook SSRF guard, with local webhooks NOT allowed (as deployed): loopback, link-local, private
and metadata addresses are refused, by address and through a DNS name that resolves to them, both when
the URL is registered and when a message is posted, and nothing connects to them."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from chalicelib.adapters.notify import UrllibWebhookPoster
from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.service.notifications import NotificationFailed, check_webhook_url
from tests.conftest import call, deployment_request, register_target

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})


def post_deployment(client: Any, tenant: Any, target: dict[str, Any], template: str, **fields: Any) -> Any:
    """``POST /deployments`` of stack "app" to ``target`` in us-east-1, whatever it answers."""
    return call(
        client,
        "POST",
        "/deployments",
        tenant,
        deployment_request(target["target_id"], "app", template, **fields),
    )


INTERNAL = [
    "https://127.0.0.1/hook",
    "https://127.8.9.10/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://169.254.169.254/latest/meta-data/",  # instance metadata
    "https://[fd00:ec2::254]/latest/meta-data/",  # instance metadata over IPv6
    "https://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "https://192.168.0.10/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://0.0.0.0/hook",
    "https://localhost/hook",
    "https://metadata.internal/hook",
]
# Names an attacker controls whose DNS answers point inside (the test resolves them itself).
REBOUND = {
    "loopback.attacker.example": "127.0.0.1",
    "metadata.attacker.example": "169.254.169.254",
    "private.attacker.example": "10.0.0.7",
    "v6.attacker.example": "::1",
}


@pytest.fixture
def attacker_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in REBOUND:
            address = REBOUND[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection attempt the poster makes, refused and recorded."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError("the guard let a connection through")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize("url", INTERNAL + [f"https://{name}/hook" for name in REBOUND])
def test_posting_to_an_internal_address_is_refused_without_connecting(url, attacker_dns, no_connections):
    poster = UrllibWebhookPoster(allow_local=False)
    with pytest.raises(NotificationFailed):
        poster.post(url, b"{}", {"Content-Type": "application/json"})
    assert no_connections == []


@pytest.mark.parametrize(
    "url", ["http://example.com/hook", "ftp://example.com/x", "https://user:pw@example.com/"]
)
def test_only_plain_https_urls_are_taken(url, no_connections):
    with pytest.raises(UnprocessableRequest):
        check_webhook_url(url, allow_local=False)
    with pytest.raises(NotificationFailed):
        UrllibWebhookPoster(allow_local=False).post(url, b"{}", {})
    assert no_connections == []


@pytest.mark.parametrize("url", INTERNAL)
def test_registering_an_internal_address_is_refused(url):
    with pytest.raises(UnprocessableRequest) as caught:
        check_webhook_url(url, allow_local=False)
    assert caught.value.code == "INVALID_WEBHOOK_URL"


def test_the_api_refuses_an_internal_webhook_before_any_write(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    aws_calls.clear()
    notify = {"webhook_url": "https://169.254.169.254/latest/meta-data/", "webhook_secret": "s" * 32}
    response = post_deployment(client, tenant, target, QUEUE, notifications=notify)
    assert response.status_code == 422, response.body
    assert json.loads(response.body)["error"]["code"] == "INVALID_WEBHOOK_URL"
    assert aws_calls.count("secretsmanager") == 0
    assert aws_calls.count("stepfunctions") == 0


@pytest.mark.parametrize(
    "url", ["https://[hook.example.com/x", "https://hook.example.com:99999/x", "https://hook.example.com/é"]
)
def test_a_malformed_webhook_url_is_a_4xx_before_any_aws_call(client, tenant, local_aws, aws_calls, url):
    target = register_target(client, tenant, local_aws)
    aws_calls.clear()
    body = {
        "stack_name": "fleet",
        "template_body": QUEUE,
        "targets": [{"target_id": target["target_id"]}],
        "notifications": {"webhook_url": url, "webhook_secret": "s" * 32},
    }
    response = call(client, "POST", "/rollouts", tenant, body)
    assert response.status_code == 422, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert "notifications.webhook_url" in json.dumps(error["details"])
    assert aws_calls.count("secretsmanager") == 0
    assert aws_calls.count("stepfunctions") == 0


@pytest.mark.parametrize("url", ["https://[hook.example.com/x", "https://hook.example.com:99999/x"])
def test_check_webhook_url_refuses_what_does_not_parse(url):
    with pytest.raises(UnprocessableRequest) as caught:
        check_webhook_url(url, allow_local=False)
    assert caught.value.code == "INVALID_WEBHOOK_URL"


def test_a_request_refused_after_its_notifications_were_checked_stores_no_webhook_secret(
    client, tenant, local_aws, aws_calls
):
    """The webhook secret is stored last: a deployment refused for its parameter value leaves none."""
    target = register_target(client, tenant, local_aws)
    aws_calls.clear()
    template = {
        "Parameters": {"Env": {"Type": "String", "AllowedValues": ["dev", "prod"]}},
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
    }
    notify = {"webhook_url": "https://hooks.example.com/nexus", "webhook_secret": "s" * 32}
    response = post_deployment(
        client, tenant, target, json.dumps(template), parameters={"Env": "qa"}, notifications=notify
    )
    assert response.status_code == 422, response.body
    assert json.loads(response.body)["error"]["code"] == "PARAMETER_CONSTRAINT"
    assert aws_calls.count("secretsmanager") == 0


def test_the_poster_connects_to_the_address_it_checked_with_one_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: a name that answers a public address to the check and a private one after. The
    poster looks it up once and connects to the checked address, whatever a second answer would be."""
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    lookups: list[str] = []
    connected: list[Any] = []

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    def connect(address: Any, *args: Any, **kwargs: Any) -> Any:
        connected.append(address)
        raise ConnectionRefusedError("no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(NotificationFailed, match="did not answer"):
        UrllibWebhookPoster(allow_local=False).post("https://rebind.attacker.example/hook", b"{}", {})
    assert lookups == ["rebind.attacker.example"]
    assert connected == [("93.184.216.34", 443)]


def test_a_deployment_whose_record_write_fails_leaves_no_webhook_secret(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """The secret is stored just before the deployment's record; when that write fails (AWS still
    throttling after every retry), the secret no record refers to is deleted again (under ApiRole)."""
    from chalicelib.adapters.dynamodb import DynamoDeploymentStore
    from chalicelib.domain.errors import TransientAwsError

    target = register_target(client, tenant, local_aws)

    def throttled(self: Any, *args: Any, **kwargs: Any) -> None:
        raise TransientAwsError("TransactWriteItems failed: ThrottlingException")

    monkeypatch.setattr(DynamoDeploymentStore, "create_deployment", throttled)
    notify = {"webhook_url": "https://hooks.example.com/nexus", "webhook_secret": "s" * 32}
    response = post_deployment(client, tenant, target, QUEUE, notifications=notify)
    assert response.status_code == 503, response.body
    secrets = local_aws.account_session(local_aws.central.account_id).client("secretsmanager")
    names = [s["Name"] for s in secrets.list_secrets()["SecretList"]]
    assert not [n for n in names if "/webhooks/" in n], names
