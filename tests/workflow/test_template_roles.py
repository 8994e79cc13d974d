"""The service runs locally as its template deploys it: each function under its own role, nothing more.

The local AWS deploys the service from the transformed cloud template (``localaws/template.py``,
``localaws/stack.py``) and enforces identity policies in the central account too. So a permission the
template lacks fails here as AWS would refuse it, and every AWS call a route, step or event handler
makes is signed by its function's template role and evaluated against that role's policies.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalice.test import Client

import app as app_module
from localaws import authorization
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from localaws.template import service_template
from tests.conftest import (
    OTHER_ACCOUNT,
    TARGET_ACCOUNT,
    Tenant,
    call,
    create_target_role,
    local_aws_for_app,
    register_target,
    wired,
)
from tests.support.polling import until
from tests.workflow.lifecycle_helpers import accepted, create, execution_status_event, settle

QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
TWO_QUEUES = json.dumps(
    {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}, "Other": {"Type": "AWS::SQS::Queue"}}}
)


def without_statement(role: str, sid: str) -> dict[str, Any]:
    """The service's transformed template with one statement taken out of one role's policy."""
    template = service_template()
    document = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    kept = [s for s in document["Statement"] if s.get("Sid") != sid]
    assert len(kept) == len(document["Statement"]) - 1, f"{role} has no statement {sid}"
    document["Statement"] = kept
    return template


@contextmanager
def service(**kwargs: Any) -> Iterator[tuple[Client, Tenant, LocalAws]]:
    with local_aws_for_app(**kwargs) as aws, wired(aws) as built, Client(app_module.app) as client:
        yield client, Tenant("tenant-a", built.auth.issue("tenant-a", "tests")), aws


def deploy(
    client: Client, tenant: Tenant, target: dict[str, Any], stack: str, body: str = QUEUE
) -> dict[str, Any]:
    created = accepted(create(client, tenant, target, body, stack_name=stack))
    return settle(client, tenant, created["deployment_id"])


def test_without_assume_role_in_the_template_deployments_fail_access_denied() -> None:
    """Take sts:AssumeRole out of the role that reaches target accounts: the workflow's AssumeRole is
    refused by the central account's identity policies, as AWS refuses it."""
    with service(template=without_statement("ServiceRole", "AssumeTargetRoles")) as (client, tenant, aws):
        target = register_target(client, tenant, aws)
        failed = deploy(client, tenant, target, "app")
        assert failed["status"] == "FAILED", failed
        assert failed["error"]["code"] == "ACCESS_DENIED", failed["error"]
        role = aws.stack.attribute("ServiceRole", "Arn").rsplit("/", 1)[1]
        assert f"assumed-role/{role}/" in failed["error"]["message"]
        assert "sts:AssumeRole" in failed["error"]["message"]
        assert f"arn:aws:iam::{TARGET_ACCOUNT}:role/NexusDeploymentRole" in failed["error"]["message"]
        # Test Credentials, which runs under the same role (InspectTarget), is refused the same way.
        report = json.loads(call(client, "POST", f"/targets/{target['target_id']}/validate", tenant).body)
        assert report["checks"][0]["name"] == "assume_role"
        assert report["checks"][0]["code"] == "ACCESS_DENIED"


def test_without_start_execution_in_the_template_the_api_is_refused_before_any_workflow() -> None:
    with service(template=without_statement("ApiRole", "StartDeploymentWorkflow")) as (client, tenant, aws):
        target = register_target(client, tenant, aws)
        body = {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": "app",
            "template_body": QUEUE,
        }
        refused = call(client, "POST", "/deployments", tenant, body)
        assert refused.status_code == 502, refused.body
        error = json.loads(refused.body)["error"]
        assert error["code"] == "ACCESS_DENIED"
        assert "states:StartExecution" in error["message"]
        assert "ApiRole" in error["message"]


def _run_everything(client: Client, tenant: Tenant, aws: LocalAws) -> None:
    """Every route family, both workflows and every event handler, once."""
    target = register_target(client, tenant, aws)
    tid = target["target_id"]
    assert call(client, "POST", f"/targets/{tid}/validate", tenant).status_code == 200
    call(client, "GET", f"/targets/{tid}/bootstrap-template", tenant)
    call(client, "GET", "/targets", tenant)
    call(client, "PATCH", f"/targets/{tid}", tenant, {"name": "renamed"})
    call(client, "GET", "/permissions", tenant)

    deployment = deploy(client, tenant, target, "app")
    did = deployment["deployment_id"]
    assert deployment["status"] == "ACTIVE", deployment
    call(client, "GET", f"/deployments/{did}/events", tenant)
    call(client, "GET", "/deployments", tenant)
    accepted(
        call(client, "PUT", f"/deployments/{did}", tenant, {"template_body": TWO_QUEUES, "mode": "plan"})
    )
    assert settle(client, tenant, did)["operation"]["status"] == "PLANNED"
    accepted(call(client, "POST", f"/deployments/{did}/apply", tenant, {}))
    applied = settle(client, tenant, did)
    assert applied["status"] == "ACTIVE", applied["error"]

    # A notification through the notifier role, to a topic of the target account.
    topic = aws.account_session(TARGET_ACCOUNT).client("sns").create_topic(Name="outcomes")["TopicArn"]
    response = create(
        client, tenant, target, QUEUE, stack_name="notified", notifications={"sns_topic_arn": topic}
    )
    assert settle(client, tenant, accepted(response)["deployment_id"])["status"] == "ACTIVE"

    # The event handlers, each through its trigger.
    detail = {"tenant_id": tenant.tenant_id, "deployment_ids": [did], "revision": "r1"}
    central = aws.central_session()
    central.client("events").put_events(
        Entries=[
            {"Source": "nexus.deployer", "DetailType": "Redeploy Requested", "Detail": json.dumps(detail)}
        ]
    )
    message = {**detail, "revision": "r2"}
    central.client("sns").publish(TopicArn=aws.stack.ref("RedeployRequestTopic"), Message=json.dumps(message))
    until(
        lambda: aws.host.invocations,
        ready=lambda calls: calls["RedeployMessage"] >= 1 and calls["RedeployRequested"] >= 1,
        timeout=30,
        what="RedeployMessage and RedeployRequested invoked",
    )
    settle(client, tenant, did, timeout=60)
    aws.fire_schedule("DriftCheckDriftCheckEvent")
    aws.host.invoke(
        "TemplateObjectCreated",
        {"version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3", "account": TARGET_ACCOUNT,
         "time": "2025-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
         "detail": {"bucket": {"name": "nobody"}, "object": {"key": "k", "version-id": "v"}}},
    )  # fmt: skip

    # A rollout over two targets; then the forget and delete of a deployment.
    create_target_role(aws, register_second_target(client, tenant)["trust_policy"], OTHER_ACCOUNT)
    targets = [t["target_id"] for t in json.loads(call(client, "GET", "/targets", tenant).body)["items"]]
    rollout = {"stack_name": "fleet", "template_body": QUEUE, "targets": [{"target_id": t} for t in targets]}
    started = json.loads(call(client, "POST", "/rollouts", tenant, rollout).body)
    until(
        lambda: json.loads(call(client, "GET", f"/rollouts/{started['rollout_id']}", tenant).body)["status"],
        ready=lambda status: status == "SUCCEEDED",
        timeout=90,
        interval=0.1,
        what="the rollout SUCCEEDED",
    )
    call(client, "GET", "/rollouts", tenant)
    # The rollout workflow's two catch-alls, as its Catch invokes them after a step's fault.
    ids = {"tenant_id": tenant.tenant_id, "rollout_id": started["rollout_id"], "wait_seconds": 0}
    fault = {"Error": "States.Timeout", "Cause": "a step timed out"}
    aws.host.invoke("RecordItemFailure", {**ids, "item_id": 0, "error": fault, "resumable": True})
    # WaitForItemEnd's function runs only when an item's first wait ended before its operation did; as
    # its Task state invokes it, for an item that has ended: it releases the (stale) token at once.
    awaited = aws.host.invoke("AwaitItem", {**ids, "item_id": 1, "task_token": "stale-token"})
    assert awaited == {"waiting": False}, awaited
    # PollItem runs only when an item's release did not end it (a wait that timed out, a lost
    # release); as its Task state invokes it, for an item that has ended: done at once.
    polled = aws.host.invoke("PollItem", {**ids, "item_id": 1, "progress": {"wait_seconds": 1}})
    assert polled["done"] is True, polled
    aws.host.invoke("RecordRolloutFailure", {**ids, "error": fault})
    # RolloutExecutionEnded hears of rollout executions that end without succeeding; a late ABORTED
    # event for this one, whose rollout ended, is read and left (DeploymentExecutionEnded likewise below,
    # for the broken deployment's FAILED execution: given the event, not left to the rule's timing).
    (execution,) = (
        aws.central_session()
        .client("stepfunctions")
        .list_executions(stateMachineArn=aws.central.rollout_state_machine_arn)["executions"]
    )
    late = execution_status_event(aws, execution, "ABORTED")
    assert aws.host.invoke("RolloutExecutionEnded", late) == {"reconciled": False}
    assert call(client, "DELETE", f"/deployments/{did}", tenant).status_code == 202
    assert settle(client, tenant, did)["status"] == "DELETED"
    failed = deploy(
        client, tenant, target, "broken", json.dumps({"Resources": {"X": {"Type": "AWS::No::Such"}}})
    )
    assert failed["status"] == "FAILED"
    # The last step recorded FAILED; the execution itself reaches its Fail state a moment later.
    sfn = aws.central_session().client("stepfunctions")
    (broken,) = until(
        lambda: sfn.list_executions(stateMachineArn=aws.central.state_machine_arn, statusFilter="FAILED")[
            "executions"
        ],
        timeout=10,
        what="the broken deployment's execution FAILED",
    )
    ended = execution_status_event(aws, broken, "FAILED")
    assert aws.host.invoke("DeploymentExecutionEnded", ended) == {"reconciled": False}
    # forget looks at the stack through InspectTarget (the rolled-back stack still exists: refused).
    forgot = call(client, "POST", f"/deployments/{failed['deployment_id']}/forget", tenant)
    assert forgot.status_code in (200, 409), forgot.body


def register_second_target(client: Client, tenant: Tenant) -> dict[str, Any]:
    body = {
        "name": "team-b",
        "account_id": OTHER_ACCOUNT,
        "role_arn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/NexusDeploymentRole",
        "regions": ["us-east-1"],
    }
    response = call(client, "POST", "/targets", tenant, body)
    assert response.status_code == 201, response.body
    created: dict[str, Any] = json.loads(response.body)
    return created


def test_every_route_step_and_event_handler_runs_under_its_own_role(capsys: Any) -> None:
    """Each AWS call is signed by the calling function's template role (the host records the signer)
    and the central account evaluated it against that role's policies (the authorization's counts)."""
    with service() as (client, tenant, aws):
        evaluated_before = authorization.check_counts()
        _run_everything(client, tenant, aws)
        aws.drain_executions()
        functions = aws.stack.functions()
        calls = dict(aws.host.calls)
        evaluated = {
            key: count - evaluated_before.get(key, 0) for key, count in authorization.check_counts().items()
        }

    by_function: dict[str, set[str]] = defaultdict(set)
    for (function, role, action), _count in calls.items():
        assert role == functions[function].role_arn, (function, role, action)
        by_function[function].add(action)
    # Every function of the template ran and made AWS calls (the API's routes as APIHandler).
    assert set(by_function) == set(functions), set(functions) - set(by_function)
    # What the central account evaluated under each role covers what each role's functions called.
    for function, actions in by_function.items():
        role = functions[function].role_arn
        seen = {action.split(":")[0] for (arn, action), n in evaluated.items() if arn == role and n > 0}
        assert {a.split(":")[0] for a in actions} <= seen | {"sts"}, (function, actions, seen)
    pairs = sorted((function, action) for function, actions in by_function.items() for action in actions)
    with capsys.disabled():
        print(
            f"\n(function, AWS call) pairs exercised under their own role: {len(pairs)} over {len(by_function)} functions"
        )
    assert len(pairs) >= 60, pairs
    assert CENTRAL_ACCOUNT in next(iter(functions.values())).role_arn
