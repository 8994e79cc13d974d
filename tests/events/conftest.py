"""Helpers for the event-driven automation tests: deployments to redeploy, events as AWS sends them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.composition import Services
from localaws.environment import CENTRAL_ACCOUNT, STACK_NAME, LocalAws
from tests.conftest import Tenant, call, wait_for, wired

APP_STACK = (Path(__file__).resolve().parents[2] / "examples" / "app-stack.json").read_text()
REDEPLOY_TOPIC_ARN = (
    f"arn:aws:sns:us-east-1:{CENTRAL_ACCOUNT}:{STACK_NAME}-redeploy-requests"  # the stack's topic
)


@pytest.fixture
def local_services(local_aws: LocalAws) -> Iterator[Services]:
    """Like ``services``, with webhooks to 127.0.0.1 allowed (local mode's setting)."""
    with wired(local_aws, NEXUS_ALLOW_LOCAL_WEBHOOKS="1") as built:
        yield built


def deploy(
    client: Client, tenant: Tenant, target: dict[str, Any], stack_name: str, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": stack_name,
        "template_body": APP_STACK,
        "parameters": {"Environment": "dev"},
        **extra,
    }
    if "template_url" in extra:
        del body["template_body"]
    response = call(client, "POST", "/deployments", tenant, body)
    assert response.status_code == 202, response.body
    done = wait_for(client, tenant, json.loads(response.body)["deployment_id"])
    assert done["status"] == "ACTIVE", done
    return done


def redeploy_event(
    detail: Any, *, event_id: str | None = None, account: str = CENTRAL_ACCOUNT
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()) if event_id is None else event_id,
        "detail-type": "Redeploy Requested",
        "source": "nexus.deployer",
        "account": account,
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def sns_event(
    message: str, *, topic_arn: str = REDEPLOY_TOPIC_ARN, message_id: str | None = None
) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id or str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": "redeploy",
                    "Message": message,
                    "Timestamp": "2025-01-01T00:00:00.000Z",
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def object_created_event(
    bucket: str, key: str, version_id: str | None, *, event_id: str | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": 1, "etag": "x", "sequencer": "1"}
    if version_id is not None:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "111111111111",
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": obj, "reason": "PutObject"},
    }


def events_of(client: Client, tenant: Tenant, deployment_id: str) -> list[dict[str, Any]]:
    response = call(client, "GET", f"/deployments/{deployment_id}/events?limit=100", tenant)
    items: list[dict[str, Any]] = json.loads(response.body)["items"]
    return items
