"""Redeploys from EventBridge and SNS, debounced per (deployment, revision); bad events are dropped.

Every event is handed to the deployed function (``FunctionHost.invoke``: its handler, under the role and
with the environment the template gives it), and every redeploy runs the real workflow against the local
AWS. ``tests/events/test_triggers.py`` shows the template's rule and subscription deliver them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from chalicelib.adapters.dynamodb import DynamoDeploymentStore
from chalicelib.domain.model import DeploymentEvent
from localaws.environment import LocalAws
from tests.conftest import call, register_target, wait_for, wired
from tests.events.conftest import deploy, events_of, redeploy_event, sns_event
from tests.support.faults import refused_once


def invoke(aws: LocalAws, name: str, event: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = aws.host.invoke(name, event)
    return payload


def test_a_thousand_duplicate_events_start_exactly_one_redeploy(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    deployment = deploy(client, tenant, target, "app")
    deployment_id = deployment["deployment_id"]
    event = redeploy_event(
        {"tenant_id": tenant.tenant_id, "deployment_ids": [deployment_id], "reason": "rotate"}
    )
    aws_calls.clear()

    started = time.perf_counter()
    results = [invoke(local_aws, "RedeployRequested", event) for _ in range(1000)]
    elapsed = time.perf_counter() - started

    assert aws_calls.count("stepfunctions", "StartExecution") == 1
    assert sum(1 for r in results if r.get("started")) == 1
    assert sum(1 for r in results if r.get("duplicates") == [deployment_id]) == 999
    done = wait_for(client, tenant, deployment_id)
    assert done["status"] == "ACTIVE"
    assert done["operation"]["action"] == "update"
    assert done["operation"]["operation_id"] == results[0]["started"][deployment_id]
    redeploys = [e for e in events_of(client, tenant, deployment_id) if e["status"] == "REDEPLOY"]
    assert len(redeploys) == 1
    assert "rotate" in redeploys[0]["message"]
    print(f"\n1000 duplicate events: {elapsed:.2f} s, {elapsed:.2f} ms per event")


def test_with_every_claim_past_its_lease_a_thousand_duplicates_still_start_one_redeploy(
    client, tenant, local_aws, aws_calls
):
    """A claim older than its lease may be taken over, but never one whose redeploy began: the
    deployment has an operation started since the claim. With a lease of 0 s every claim held is past
    it, so only that check keeps the 999 later deliveries duplicates."""
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target, "app")["deployment_id"]
    event = redeploy_event(
        {"tenant_id": tenant.tenant_id, "deployment_ids": [deployment_id], "revision": "r1"}
    )
    with wired(local_aws, NEXUS_REDEPLOY_CLAIM_LEASE_SECONDS="0"):  # every function's claims
        aws_calls.clear()
        results = [invoke(local_aws, "RedeployRequested", event) for _ in range(1000)]
        assert aws_calls.count("stepfunctions", "StartExecution") == 1
        assert sum(1 for r in results if r.get("started")) == 1
        assert sum(1 for r in results if r.get("duplicates") == [deployment_id]) == 999
        done = wait_for(client, tenant, deployment_id)
        assert done["operation"]["operation_id"] == results[0]["started"][deployment_id]
        assert [e["status"] for e in events_of(client, tenant, deployment_id)].count("REDEPLOY") == 1


def test_the_explicit_revision_debounces_across_event_ids_and_a_new_revision_redeploys(
    client, tenant, local_aws, aws_calls
):
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target, "app")["deployment_id"]
    detail = {"tenant_id": tenant.tenant_id, "deployment_ids": [deployment_id], "revision": "build-41"}
    aws_calls.clear()
    for _ in range(5):
        invoke(local_aws, "RedeployRequested", redeploy_event(detail))  # a new event id every time
    assert aws_calls.count("stepfunctions", "StartExecution") == 1
    wait_for(client, tenant, deployment_id)

    result = invoke(local_aws, "RedeployRequested", redeploy_event({**detail, "revision": "build-42"}))
    assert list(result["started"]) == [deployment_id]
    assert aws_calls.count("stepfunctions", "StartExecution") == 2
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"


def test_a_selector_redeploys_the_matching_deployments_with_parameter_overrides(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    web = deploy(client, tenant, target, "web", tags={"tier": "web"})
    deploy(client, tenant, target, "db", tags={"tier": "db"})

    result = invoke(
        local_aws,
        "RedeployRequested",
        redeploy_event(
            {"tenant_id": tenant.tenant_id, "tags": {"tier": "web"}, "parameters": {"Environment": "prod"}}
        ),
    )

    assert list(result["started"]) == [web["deployment_id"]]
    done = wait_for(client, tenant, web["deployment_id"])
    assert done["status"] == "ACTIVE"
    assert done["parameters"] == {"Environment": "prod"}
    assert done["outputs"]["Environment"] == "prod"


def test_an_sns_message_with_the_same_schema_redeploys(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target, "app")["deployment_id"]
    message = json.dumps({"tenant_id": tenant.tenant_id, "deployment_ids": [deployment_id]})
    aws_calls.clear()

    event = sns_event(message)
    first = invoke(local_aws, "RedeployMessage", event)
    again = invoke(local_aws, "RedeployMessage", event)  # SNS retried the same message

    assert list(first["started"]) == [deployment_id]
    assert again["duplicates"] == [deployment_id]
    assert aws_calls.count("stepfunctions", "StartExecution") == 1
    assert wait_for(client, tenant, deployment_id)["operation"]["action"] == "update"


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("detail not an object", lambda t, d: redeploy_event("redeploy please")),
        ("no tenant", lambda t, d: redeploy_event({"deployment_ids": [d]})),
        (
            "ids and selector",
            lambda t, d: redeploy_event({"tenant_id": t, "deployment_ids": [d], "stack_name": "a"}),
        ),
        ("neither ids nor selector", lambda t, d: redeploy_event({"tenant_id": t})),
        ("malformed id", lambda t, d: redeploy_event({"tenant_id": t, "deployment_ids": ["dep-1; drop"]})),
        (
            "unknown field with a secret",
            lambda t, d: redeploy_event(
                {"tenant_id": t, "deployment_ids": [d], "password": "hunter2-secret"}
            ),
        ),
        (
            "non-string parameter",
            lambda t, d: redeploy_event(
                {"tenant_id": t, "deployment_ids": [d], "parameters": {"DbPass": 1234}}
            ),
        ),
        ("another tenant", lambda t, d: redeploy_event({"tenant_id": "tenant-b", "deployment_ids": [d]})),
        (
            "foreign account",
            lambda t, d: redeploy_event({"tenant_id": t, "deployment_ids": [d]}, account="999999999999"),
        ),
        (
            "unknown deployment",
            lambda t, d: redeploy_event({"tenant_id": t, "deployment_ids": ["dep-" + "0" * 24]}),
        ),
        ("no event id", lambda t, d: redeploy_event({"tenant_id": t, "deployment_ids": [d]}, event_id="")),
    ],
)
def test_bad_events_are_logged_and_dropped(client, tenant, local_aws, aws_calls, caplog, name, make):
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target, "app")["deployment_id"]
    aws_calls.clear()
    caplog.set_level(logging.WARNING)

    result = invoke(local_aws, "RedeployRequested", make(tenant.tenant_id, deployment_id))

    assert aws_calls.count("stepfunctions", "StartExecution") == 0, name
    assert result.get("dropped") or (not result.get("started") and result.get("not_found")), result
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, name
    assert all(r.getMessage() == "event dropped" and r.reason for r in warnings), name
    assert "hunter2" not in caplog.text
    assert "1234" not in caplog.text


@pytest.mark.parametrize(
    "event",
    [
        sns_event("{}", topic_arn="arn:aws:sns:us-east-1:999999999999:nexus-deployer-redeploy-requests"),
        sns_event("not json"),
        sns_event(json.dumps(["a", "list"])),
    ],
)
def test_bad_sns_messages_are_dropped(client, tenant, local_aws, aws_calls, event):
    aws_calls.clear()
    result = invoke(local_aws, "RedeployMessage", event)
    assert result.get("dropped"), result
    assert aws_calls.count("stepfunctions") == 0


def test_a_redeploy_refused_by_a_running_operation_can_be_sent_again(client, tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target, "app")["deployment_id"]
    assert (
        call(
            client, "PUT", f"/deployments/{deployment_id}", tenant, {"parameters": {"Environment": "prod"}}
        ).status_code
        == 202
    )
    event = redeploy_event({"tenant_id": tenant.tenant_id, "deployment_ids": [deployment_id]})

    refused = invoke(local_aws, "RedeployRequested", event)
    wait_for(client, tenant, deployment_id)
    retried = invoke(local_aws, "RedeployRequested", event)

    if refused["refused"]:  # the PUT's operation was still running: the claim was released
        assert refused["refused"][deployment_id] in {"OPERATION_IN_PROGRESS", "STACK_LOCKED"}
        assert list(retried["started"]) == [deployment_id]
    else:  # the PUT had already finished: the first delivery redeployed, the second is a duplicate
        assert retried["duplicates"] == [deployment_id]
    assert wait_for(client, tenant, deployment_id)["status"] == "ACTIVE"


def test_a_started_redeploy_whose_history_line_aws_throttled_still_answers_started(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """The redeploy started; only its REDEPLOY line was throttled. The event is answered (not failed:
    its retry would find the claim taken and write no line either), and the redeploy runs to its end."""
    target = register_target(client, tenant, local_aws)
    deployment_id = deploy(client, tenant, target, "app")["deployment_id"]

    def redeploy_line(
        store: DynamoDeploymentStore, deployment_id: str, events: list[DeploymentEvent]
    ) -> str | None:
        return deployment_id if any(e.status == "REDEPLOY" for e in events) else None

    append, refused = refused_once(DynamoDeploymentStore.append_events, redeploy_line)
    monkeypatch.setattr(DynamoDeploymentStore, "append_events", append)
    event = redeploy_event({"tenant_id": tenant.tenant_id, "deployment_ids": [deployment_id]})
    answered = invoke(local_aws, "RedeployRequested", event)
    assert list(answered["started"]) == [deployment_id], answered
    assert refused == [deployment_id]  # its REDEPLOY line
    done = wait_for(client, tenant, deployment_id)
    assert (done["status"], done["operation"]["action"]) == ("ACTIVE", "update")
