"""The template's triggers deliver events to the deployed functions, and nothing else does.

Each event takes the path it takes on AWS: PutEvents on the central bus and the template's rule, a
message on the stack's topic and the template's subscription, an object in a target account's bucket
through the README's one manual step (EventBridge notifications on the bucket and its forwarding rule),
and the drift schedule (``tests/events/test_drift.py``). Each function runs under its own role: the
host records every AWS call with the function and the role that signed it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Hashable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from chalicelib.adapters.automation_store import AutomationDynamoStore
from chalicelib.adapters.stepfunctions import StepFunctionsStarter
from chalicelib.composition import Services
from chalicelib.domain.bootstrap import FORWARDER_ROLE
from chalicelib.service.deployments import START_ROUNDS, DeploymentService
from localaws.environment import LocalAws
from tests.conftest import TARGET_ACCOUNT, call, register_target, wait_for, wired
from tests.events.conftest import APP_STACK, deploy, events_of
from tests.support.faults import refused_once
from tests.support.polling import until

BUCKET = "team-a-templates"
KEY = "stacks/app.json"


def redeployed(client: Any, tenant: Any, deployment: dict[str, Any]) -> dict[str, Any]:
    """The deployment once a new operation (the redeploy) has started and ended."""
    first = deployment["operation"]["operation_id"]

    def restarted() -> bool:
        body = json.loads(call(client, "GET", f"/deployments/{deployment['deployment_id']}", tenant).body)
        return bool(body["operation"]["operation_id"] != first)

    until(restarted, timeout=20, what="a new operation (the redeploy)")
    return wait_for(client, tenant, deployment["deployment_id"])


def calls_of(aws: LocalAws, function: str) -> set[tuple[str, str]]:
    """(role, AWS call) pairs the function made."""
    return {(role, action) for (name, role, action) in aws.host.calls if name == function}


def test_a_redeploy_request_on_the_bus_reaches_its_handler_through_the_templates_rule(
    client, tenant, local_aws
):
    target = register_target(client, tenant, local_aws)
    deployment = deploy(client, tenant, target, "app")
    detail = {"tenant_id": tenant.tenant_id, "deployment_ids": [deployment["deployment_id"]], "reason": "bus"}
    local_aws.central_session().client("events").put_events(
        Entries=[
            {"Source": "nexus.deployer", "DetailType": "Redeploy Requested", "Detail": json.dumps(detail)}
        ]
    )
    assert redeployed(client, tenant, deployment)["status"] == "ACTIVE"
    assert local_aws.host.invocations["RedeployRequested"] == 1
    roles = {role for role, _ in calls_of(local_aws, "RedeployRequested")}
    assert roles == {local_aws.host.role_of("RedeployRequested")}


def test_a_redeploy_that_aws_throttled_is_delivered_again_and_started_once(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """The update behind the redeploy meets a throttled AWS (TransientAwsError past botocore's retries):
    the claim is released and the function fails, so Lambda delivers the event again (1 s later here),
    and that delivery starts the redeploy. Before, the handler answered "refused" and the redeploy was
    lost. The other deployment, started by the first delivery, is a duplicate in the second."""
    target = register_target(client, tenant, local_aws)
    throttled, started = deploy(client, tenant, target, "app"), deploy(client, tenant, target, "web")
    update, refused = refused_once(
        DeploymentService.update,
        lambda service, tenant_id, deployment_id, *_, **__: (
            deployment_id == throttled["deployment_id"] or None
        ),
    )
    monkeypatch.setattr(DeploymentService, "update", update)
    ids = [started["deployment_id"], throttled["deployment_id"]]
    detail = {"tenant_id": tenant.tenant_id, "deployment_ids": ids, "reason": "throttled once"}
    local_aws.central_session().client("events").put_events(
        Entries=[
            {"Source": "nexus.deployer", "DetailType": "Redeploy Requested", "Detail": json.dumps(detail)}
        ]
    )
    assert redeployed(client, tenant, throttled)["status"] == "ACTIVE"
    assert redeployed(client, tenant, started)["status"] == "ACTIVE"
    assert refused == [True]  # the throttled deployment's first update
    assert local_aws.host.invocations["RedeployRequested"] == 2  # the first delivery, and its retry
    for deployment in (throttled, started):  # one redeploy each: the retry found the first one claimed
        statuses = [e["status"] for e in events_of(client, tenant, deployment["deployment_id"])]
        assert statuses.count("REDEPLOY") == 1, statuses


def _short_lease(local_aws: LocalAws) -> AbstractContextManager[Services]:
    """The deployed functions with a redeploy claim lease of 0 s: Lambda's retry comes 1 s later here,
    not after the minute that the 45 s lease is sized for."""
    return wired(local_aws, NEXUS_REDEPLOY_CLAIM_LEASE_SECONDS="0")


def _refuse_release_once(monkeypatch: pytest.MonkeyPatch, deployment_id: str) -> list[Hashable]:
    """Refuse (throttled) the first release of the deployment's redeploy claim, in every function; the
    deployments refused."""
    release, releases = refused_once(
        AutomationDynamoStore.release_revision,
        lambda store, released, revision_key: released if released == deployment_id else None,
    )
    monkeypatch.setattr(AutomationDynamoStore, "release_revision", release)
    return releases


def _request(local_aws: LocalAws, tenant: Any, deployment_ids: list[str], revision: str) -> None:
    detail = {"tenant_id": tenant.tenant_id, "deployment_ids": deployment_ids, "revision": revision}
    local_aws.central_session().client("events").put_events(
        Entries=[
            {"Source": "nexus.deployer", "DetailType": "Redeploy Requested", "Detail": json.dumps(detail)}
        ]
    )


def test_a_redeploy_whose_claim_could_not_be_released_is_taken_over_by_the_retry(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """The update is throttled and so is the release of its claim: the claim stays, and the retry of
    the event found it taken, counted a duplicate and the redeploy was lost. The retry now takes over a
    claim older than its lease whose redeploy never began (no operation since the claim)."""
    target = register_target(client, tenant, local_aws)
    deployment = deploy(client, tenant, target, "app")
    deployment_id = deployment["deployment_id"]
    update, updates = refused_once(
        DeploymentService.update,
        lambda service, tenant_id, updated, *_, **__: updated if updated == deployment_id else None,
    )
    monkeypatch.setattr(DeploymentService, "update", update)
    releases = _refuse_release_once(monkeypatch, deployment_id)
    with _short_lease(local_aws):
        _request(local_aws, tenant, [deployment_id], "rev-7")
        assert redeployed(client, tenant, deployment)["status"] == "ACTIVE"
        assert (updates, releases) == ([deployment_id], [deployment_id])
        assert local_aws.host.invocations["RedeployRequested"] == 2  # the first delivery, and its retry
        statuses = [e["status"] for e in events_of(client, tenant, deployment_id)]
        assert statuses.count("REDEPLOY") == 1, statuses


def test_a_redeploy_whose_workflow_never_started_is_taken_over_by_the_retry(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """StartExecution is throttled through every round: the update's operation is recorded FAILED (it
    never ran) and the claim's release is throttled too. That operation began after the claim, but it
    is not a redeploy that began: the retry takes the claim over and redeploys."""
    target = register_target(client, tenant, local_aws)
    deployment = deploy(client, tenant, target, "app")
    deployment_id = deployment["deployment_id"]
    rounds, names = itertools.count(), []

    def first_three_rounds(
        starter: StepFunctionsStarter, name: str, execution_input: dict[str, Any]
    ) -> int | None:
        """The round of each of the first 3 starts of this deployment's executions (named as it is)."""
        if execution_input.get("deployment_id") != deployment_id or (n := next(rounds)) >= START_ROUNDS:
            return None
        names.append(name)
        return n

    start, refused = refused_once(StepFunctionsStarter.start, first_three_rounds)
    monkeypatch.setattr(StepFunctionsStarter, "start", start)
    releases = _refuse_release_once(monkeypatch, deployment_id)
    with _short_lease(local_aws):
        _request(local_aws, tenant, [deployment_id], "rev-9")

        def shown() -> dict[str, Any]:
            found: dict[str, Any] = json.loads(
                call(client, "GET", f"/deployments/{deployment_id}", tenant).body
            )
            return found

        first = deployment["operation"]["operation_id"]
        done = until(
            shown,
            ready=lambda d: (
                d["operation"]["operation_id"] != first and d["operation"]["status"] == "SUCCEEDED"
            ),
            timeout=30,
            what="the redeploy, run by the retry",
        )
        # All 3 rounds of the first delivery's start, of one operation (recorded FAILED below).
        assert (refused, releases) == ([0, 1, 2], [deployment_id])
        assert len(set(names)) == 1, names
        assert done["status"] == "ACTIVE", done["error"]
        statuses = [e["status"] for e in events_of(client, tenant, deployment_id)]
        assert statuses.count("REDEPLOY") == 1, statuses  # the retry's; the first delivery's never ran:
        assert statuses.count("FAILED") == 1, statuses  # its operation was recorded FAILED, throttled


def test_a_message_on_the_stacks_topic_reaches_its_handler_through_the_subscription(
    client, tenant, local_aws
):
    target = register_target(client, tenant, local_aws)
    deployment = deploy(client, tenant, target, "app")
    topic = local_aws.stack.ref("RedeployRequestTopic")
    assert topic.endswith(":nexus-deployer-local-redeploy-requests")  # named per stack
    message = {
        "tenant_id": tenant.tenant_id,
        "deployment_ids": [deployment["deployment_id"]],
        "reason": "sns",
    }
    local_aws.central_session().client("sns").publish(TopicArn=topic, Message=json.dumps(message))
    assert redeployed(client, tenant, deployment)["status"] == "ACTIVE"
    assert local_aws.host.invocations["RedeployMessage"] == 1


def test_a_new_template_object_redeploys_through_the_documented_forwarding_rule(client, tenant, local_aws):
    """The README's one manual step for S3 redeploys, done as a bucket owner would."""
    s3 = local_aws.account_session(TARGET_ACCOUNT).client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=APP_STACK.encode())
    target = register_target(client, tenant, local_aws)  # the bootstrap's forwarder role exists now
    deployment = deploy(client, tenant, target, "app", template_url=f"s3://{BUCKET}/{KEY}")

    # 1. EventBridge notifications on the bucket; 2. the rule that forwards its "Object Created" events.
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    session = local_aws.account_session(TARGET_ACCOUNT)
    forwarder = session.client("iam").get_role(RoleName=FORWARDER_ROLE)["Role"]["Arn"]
    events = session.client("events")
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [BUCKET]}},
    }
    events.put_rule(Name="NexusTemplateObjectForwarding", EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="NexusTemplateObjectForwarding",
        Targets=[{"Id": "nexus", "Arn": local_aws.event_bus_arn, "RoleArn": forwarder}],
    )

    changed = json.loads(APP_STACK)
    changed["Outputs"]["Release"] = {"Value": "two"}
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(changed).encode())
    done = redeployed(client, tenant, deployment)
    assert done["status"] == "ACTIVE", done
    assert done["outputs"]["Release"] == "two"
    assert local_aws.host.invocations["TemplateObjectCreated"] == 1
    reads = calls_of(local_aws, "TemplateObjectCreated")
    assert (local_aws.host.role_of("TemplateObjectCreated"), "s3:GetObject") in reads
