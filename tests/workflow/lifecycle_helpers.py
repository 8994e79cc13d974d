"""Helpers shared by the stack-lifecycle and plan/apply tests (templates, deploy, settle)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chalice.test import Client

import app as app_module
from chalicelib.adapters.dynamodb import (
    DynamoDeploymentStore,
    DynamoLockStore,
    SharedTable,
    deployment_to_item,
)
from chalicelib.composition import Services
from chalicelib.domain.model import Deployment
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from tests.conftest import (
    TARGET_ACCOUNT,
    Tenant,
    call,
    create_target_role,
    local_aws_for_app,
    register_target,
    wired,
)
from tests.support.polling import until

ENDED = {"SUCCEEDED", "FAILED", "PLANNED", "CANCELLED"}


@dataclass(frozen=True)
class Unforwarded:
    """A local AWS whose target account sends none of its stack events: every event wait times out."""

    aws: LocalAws
    services: Services
    client: Client
    tenant: Tenant
    target: dict[str, Any]


@contextmanager
def events_never_arrive(stack_seconds: float, event_timeout_seconds: int) -> Iterator[Unforwarded]:
    """The app on a local AWS whose stacks take ``stack_seconds``, with event waits of
    ``event_timeout_seconds``, and tenant-a's target registered and bootstrapped without the rule that
    forwards its stack events."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=stack_seconds)) as aws,
        wired(aws, NEXUS_EVENT_TIMEOUT_SECONDS=str(event_timeout_seconds)) as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws, with_role=False)
        create_target_role(aws, target["trust_policy"], forward=False)
        yield Unforwarded(aws, services, client, tenant, target)


QUEUE: dict[str, Any] = {
    "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}}}
}
PROTECTED_TABLE: dict[str, Any] = {
    "Type": "AWS::DynamoDB::Table",
    "Properties": {
        "TableName": "protected-orders",
        "BillingMode": "PAY_PER_REQUEST",
        "DeletionProtectionEnabled": True,
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    },
}
FAILING_SUBNET: dict[str, Any] = {
    "Type": "AWS::EC2::Subnet",
    "Properties": {"VpcId": "vpc-00000000deadbeef0", "CidrBlock": "10.0.0.0/24"},
}


def with_resources(base: dict[str, Any], **resources: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(json.dumps(base))
    template["Resources"].update(json.loads(json.dumps(resources)))
    return template


def create(client: Client, tenant: Tenant, target: dict[str, Any], template: Any, **extra: Any) -> Any:
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": extra.pop("stack_name", "s"),
        "template_body": template if isinstance(template, str) else json.dumps(template),
        **extra,
    }
    return call(client, "POST", "/deployments", tenant, body)


def put(client: Client, tenant: Tenant, deployment_id: str, **body: Any) -> Any:
    if "template" in body:
        body["template_body"] = json.dumps(body.pop("template"))
    return call(client, "PUT", f"/deployments/{deployment_id}", tenant, body)


def settle(client: Client, tenant: Tenant, deployment_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the public API until the current operation has ended (including PLANNED and CANCELLED)."""

    def shown() -> dict[str, Any]:
        body: dict[str, Any] = json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body)
        return body

    return until(
        shown,
        ready=lambda body: body["operation"]["status"] in ENDED,
        timeout=timeout,
        interval=0.02,
        max_interval=0.25,
        what=f"deployment {deployment_id} to settle",
    )


def accepted(response: Any, status: int = 202) -> dict[str, Any]:
    assert response.status_code == status, response.body
    body: dict[str, Any] = json.loads(response.body)
    return body


def cfn(aws: LocalAws, account: str = TARGET_ACCOUNT) -> Any:
    return aws.account_session(account).client("cloudformation", region_name="us-east-1")


def _shared(aws: LocalAws) -> SharedTable:
    return SharedTable(aws.central_session().resource("dynamodb").Table(aws.central.table_name))


def store(aws: LocalAws) -> DynamoDeploymentStore:
    return DynamoDeploymentStore(_shared(aws))


def locks(aws: LocalAws) -> DynamoLockStore:
    return DynamoLockStore(_shared(aws))


def rewrite(aws: LocalAws, deployment: Deployment) -> None:
    """Overwrite a deployment's record as it stands, outside the service (whose writes are conditional)."""
    table = aws.central_session().resource("dynamodb").Table(aws.central.table_name)
    table.put_item(Item=deployment_to_item(deployment))


def stack_events(aws: LocalAws, stack: str) -> list[dict[str, Any]]:
    client = cfn(aws)
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StackName": stack}
    while True:
        page = client.describe_stack_events(**kwargs)
        events.extend(page["StackEvents"])
        if not page.get("NextToken"):
            return events
        kwargs["NextToken"] = page["NextToken"]


def waiting_for_stack_event(aws: LocalAws, execution_arn: str) -> bool:
    """The execution waits in WaitForStackEvent: its AwaitStackEvent Lambda parked the task token."""
    sfn = aws.central_session().client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    names = [e.get("stateEnteredEventDetails", {}).get("name") for e in events]
    if "WaitForStackEvent" not in names:
        return False
    after = events[names.index("WaitForStackEvent") :]
    return any(e["type"] == "TaskSubmitted" for e in after)


def execution_status_event(aws: LocalAws, execution: Any, status: str) -> dict[str, Any]:
    """Step Functions' event for ``execution`` ending with ``status``, as AWS shapes it."""
    sfn = aws.central_session().client("stepfunctions")
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": aws.central.account_id,
        "time": "2026-12-06T00:00:00Z",
        "region": "us-east-1",
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": described["stateMachineArn"],
            "name": described["name"],
            "status": status,
            "startDate": 1796500000000,
            "stopDate": 1796500060000,
            "input": described["input"],
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            "error": "Operator",
            "cause": "stopped",
        },
    }


def rollback_failed(client: Client, tenant: Tenant, aws: LocalAws) -> tuple[str, dict[str, Any]]:
    """A deployment whose update failed and whose rollback could not delete the deletion-protected
    table ``Tab`` the update created: its id, and the deployment as it then is."""
    target = register_target(client, tenant, aws)
    did = accepted(create(client, tenant, target, QUEUE))["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    bad_update = with_resources(QUEUE, Tab=PROTECTED_TABLE, Subnet={**FAILING_SUBNET, "DependsOn": "Tab"})
    accepted(put(client, tenant, did, template=bad_update))
    failed = settle(client, tenant, did)
    assert failed["stack_status"] == "UPDATE_ROLLBACK_FAILED"
    return did, failed
