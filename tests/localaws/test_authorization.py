"""Identity policies enforced by the local AWS (``localaws.authorization``), through plain boto3 calls.

Role sessions and IAM users act within their policies, as on AWS: API calls (CloudFormation's query
protocol, JSON services, SNS), and the calls CloudFormation's resource handlers make for them (with the
caller's permissions, or the stack's service role's, after ``iam:PassRole``). The account's root is not
restricted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws import authorization, iam, sts
from localaws.cloudformation import StackSimulation
from localaws.cloudformation import install as install_cloudformation
from localaws.cloudformation.handlers import handler_permissions
from localaws.patching import MotoInternalsChanged
from localaws.sts import account_credentials

TARGET = "111111111111"
REGION = "us-east-1"
QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
STACK_ARN = f"arn:aws:cloudformation:{REGION}:{TARGET}:stack/app/*"
CFN = "cloudformation.amazonaws.com"


@pytest.fixture(autouse=True)
def aws() -> Iterator[None]:
    """moto with the local AWS's patches (the root conftest sets the fake default credentials)."""
    sts.install()
    iam.install()
    authorization.install()
    install_cloudformation(StackSimulation(stack_seconds=0))
    with mock_aws():
        yield


_make_client: Any = boto3.client


def admin(service: str) -> Any:
    """A client of the target account's root (account_credentials): never restricted."""
    return _make_client(service, region_name=REGION, **account_credentials(TARGET).boto3_kwargs())


def allow(*actions: str, resource: Any = "*", effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    statement = {"Effect": effect, "Action": list(actions), "Resource": resource, **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


def role(name: str, *policies: dict[str, Any], trusted: Any = None, boundary: str | None = None) -> str:
    principal = trusted or {"AWS": f"arn:aws:iam::{TARGET}:root"}
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
    }
    kwargs = {"PermissionsBoundary": boundary} if boundary else {}
    arn = str(
        admin("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), **kwargs)["Role"][
            "Arn"
        ]
    )
    for number, policy in enumerate(policies):
        admin("iam").put_role_policy(
            RoleName=name, PolicyName=f"p{number}", PolicyDocument=json.dumps(policy)
        )
    return arn


def session(role_arn: str, name: str = "op") -> boto3.Session:
    credentials = admin("sts").assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def refused(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    error = exc.value.response["Error"]
    return (
        str(error["Code"]),
        str(error["Message"]),
        int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"]),
    )


def resource_events(cfn: Any, stack: str = "app") -> list[tuple[str, str, str]]:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"][::-1]
    return [
        (e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason") or "")
        for e in events
        if e["LogicalResourceId"] != stack
    ]


def failure_reason(cfn: Any, logical_id: str, stack: str = "app") -> str:
    reasons = [
        r
        for name, status, r in resource_events(cfn, stack)
        if name == logical_id and status.endswith("_FAILED")
    ]
    assert reasons, resource_events(cfn, stack)
    return reasons[0]


STACK_ONLY = allow("cloudformation:*")


# ---------------------------------------------------------------------------------------- API calls
def test_a_call_no_policy_allows_is_refused_naming_action_session_and_stack() -> None:
    cfn = session(role("Deployer", allow("cloudformation:CreateStack", "cloudformation:Describe*"))).client(
        "cloudformation"
    )

    with pytest.raises(ClientError) as exc:
        cfn.create_change_set(StackName="app", ChangeSetName="c1", TemplateBody=QUEUE, ChangeSetType="CREATE")

    assert refused(exc) == (
        "AccessDenied",
        f"User: arn:aws:sts::{TARGET}:assumed-role/Deployer/op is not authorized to perform: "
        f"cloudformation:CreateChangeSet on resource: {STACK_ARN} because no identity-based policy allows "
        "the cloudformation:CreateChangeSet action",
        403,
    )
    assert admin("cloudformation").describe_stacks()["Stacks"] == []  # nothing was created


def test_json_and_sns_services_refuse_in_their_own_shape() -> None:
    denied = session(role("Deployer", STACK_ONLY))
    with pytest.raises(ClientError) as dynamodb:
        denied.client("dynamodb").list_tables()
    with pytest.raises(ClientError) as states:
        denied.client("stepfunctions").list_state_machines()
    with pytest.raises(ClientError) as sns:
        denied.client("sns").list_topics()

    code, message, status = refused(dynamodb)
    assert (code, status) == ("AccessDeniedException", 400)
    assert message.endswith(
        "dynamodb:ListTables on resource: * because no identity-based policy allows the dynamodb:ListTables action"
    )
    assert refused(states)[:1] == ("AccessDeniedException",)
    assert "states:ListStateMachines" in refused(states)[1]
    assert refused(sns)[0::2] == ("AuthorizationError", 403)


def test_actions_aws_authorizes_only_on_star_need_a_star_resource() -> None:
    scoped = session(
        role("Scoped", allow("cloudformation:*", resource=f"arn:aws:cloudformation:*:{TARGET}:stack/*"))
    )
    cfn = scoped.client("cloudformation")

    cfn.create_stack(
        StackName="app",
        TemplateBody=json.dumps({"Resources": {"W": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}),
    )
    with pytest.raises(ClientError) as exc:
        cfn.list_stacks()

    assert "cloudformation:ListStacks on resource: *" in refused(exc)[1]


def test_explicit_deny_beats_allow() -> None:
    cfn = session(role("Denied", allow("*"), allow("cloudformation:DeleteStack", effect="Deny"))).client(
        "cloudformation"
    )
    cfn.create_stack(StackName="app", TemplateBody=QUEUE)

    with pytest.raises(ClientError) as exc:
        cfn.delete_stack(StackName="app")

    assert refused(exc)[1].endswith(
        f"cloudformation:DeleteStack on resource: {STACK_ARN} with an explicit deny in an identity-based policy"
    )


def test_a_permissions_boundary_limits_what_the_policies_allow() -> None:
    boundary = admin("iam").create_policy(PolicyName="only-cfn", PolicyDocument=json.dumps(STACK_ONLY))[
        "Policy"
    ]["Arn"]
    bounded = session(role("Bounded", allow("*"), boundary=boundary))

    with pytest.raises(ClientError) as exc:
        bounded.client("sqs").list_queues()
    bounded.client("cloudformation").create_stack(StackName="app", TemplateBody=QUEUE)

    assert refused(exc)[1].endswith("because no permissions boundary allows the sqs:ListQueues action")
    reason = failure_reason(bounded.client("cloudformation"), "Queue")
    assert "because no permissions boundary allows the sqs:CreateQueue action" in reason


def test_iam_users_are_held_to_their_policies_and_root_and_unsigned_callers_are_not() -> None:
    users = admin("iam")
    users.create_user(UserName="ops")
    users.put_user_policy(
        UserName="ops", PolicyName="read", PolicyDocument=json.dumps(allow("cloudformation:Describe*"))
    )
    key = users.create_access_key(UserName="ops")["AccessKey"]
    ops = boto3.client(
        "cloudformation",
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )

    ops.describe_stacks()
    with pytest.raises(ClientError) as exc:
        ops.create_stack(StackName="app", TemplateBody=QUEUE)
    admin("cloudformation").create_stack(StackName="app", TemplateBody=QUEUE)  # the account's root
    unsigned = boto3.client("sqs", region_name=REGION, config=Config(signature_version=UNSIGNED))

    assert refused(exc)[1].startswith(f"User: arn:aws:iam::{TARGET}:user/ops is not authorized to perform")
    assert (
        admin("cloudformation").describe_stacks(StackName="app")["Stacks"][0]["StackStatus"]
        == "CREATE_COMPLETE"
    )
    assert (
        unsigned.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200
    )  # moto's default account: answered


def test_sessions_of_an_exempt_account_are_not_restricted() -> None:
    cfn = session(role("Unrestricted")).client("cloudformation")  # no policy at all
    authorization.install(exempt_accounts=frozenset({TARGET}))
    try:
        cfn.create_stack(StackName="app", TemplateBody=QUEUE)
    finally:
        authorization.install()

    assert (
        admin("cloudformation").describe_stacks(StackName="app")["Stacks"][0]["StackStatus"]
        == "CREATE_COMPLETE"
    )


def test_simulate_principal_policy_answers_what_the_calls_get() -> None:
    arn = role(
        "Deployer", allow("cloudformation:*", "sqs:List*"), allow("cloudformation:DeleteStack", effect="Deny")
    )
    deployer = session(arn)
    results = admin("iam").simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=[
            "cloudformation:ListStacks",
            "cloudformation:DeleteStack",
            "sqs:ListQueues",
            "sns:ListTopics",
        ],
    )["EvaluationResults"]
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in results}

    def outcome(call: Any) -> str:
        try:
            call()
        except ClientError:
            return "refused"
        return "allowed"

    actual = {
        "cloudformation:ListStacks": outcome(deployer.client("cloudformation").list_stacks),
        "cloudformation:DeleteStack": outcome(
            lambda: deployer.client("cloudformation").delete_stack(StackName="x")
        ),
        "sqs:ListQueues": outcome(deployer.client("sqs").list_queues),
        "sns:ListTopics": outcome(deployer.client("sns").list_topics),
    }
    assert decisions == {
        "cloudformation:ListStacks": "allowed",
        "cloudformation:DeleteStack": "explicitDeny",
        "sqs:ListQueues": "allowed",
        "sns:ListTopics": "implicitDeny",
    }
    assert actual == {a: "allowed" if d == "allowed" else "refused" for a, d in decisions.items()}


# --------------------------------------------------------------------------- resource handler calls
def test_a_role_without_sqs_create_queue_ends_create_failed_naming_it() -> None:
    cfn = session(role("Deployer", STACK_ONLY)).client("cloudformation")

    cfn.create_stack(StackName="app", TemplateBody=QUEUE)

    stack = cfn.describe_stacks(StackName="app")["Stacks"][0]
    reason = failure_reason(cfn, "Queue")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert reason.startswith(
        f'Resource handler returned message: "User: arn:aws:sts::{TARGET}:assumed-role/Deployer/op is not '
        f"authorized to perform: sqs:CreateQueue on resource: arn:aws:sqs:{REGION}:{TARGET}:app-Queue-"
    )
    assert (
        "because no identity-based policy allows the sqs:CreateQueue action (Service: Sqs, Status Code: 403"
        in reason
    )
    assert reason.endswith("HandlerErrorCode: AccessDenied)")
    assert admin("sqs").list_queues().get("QueueUrls", []) == []


def test_the_same_stack_completes_once_the_handler_permission_is_granted() -> None:
    cfn = session(role("Deployer", STACK_ONLY, allow("sqs:CreateQueue", "sqs:DeleteQueue"))).client(
        "cloudformation"
    )

    cfn.create_stack(StackName="app", TemplateBody=QUEUE)
    assert cfn.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    cfn.delete_stack(StackName="app")

    assert admin("sqs").list_queues().get("QueueUrls", []) == []


def test_a_delete_the_role_may_not_make_ends_delete_failed() -> None:
    cfn = session(role("Deployer", STACK_ONLY, allow("sqs:CreateQueue"))).client("cloudformation")
    cfn.create_stack(StackName="app", TemplateBody=QUEUE)

    cfn.delete_stack(StackName="app")

    assert cfn.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "DELETE_FAILED"
    assert "sqs:DeleteQueue" in failure_reason(cfn, "Queue")
    assert len(admin("sqs").list_queues()["QueueUrls"]) == 1


def test_handler_permissions_come_from_cloudformations_resource_schemas() -> None:
    assert {"sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:TagQueue"} <= handler_permissions(
        "AWS::SQS::Queue", REGION, "create"
    )
    assert handler_permissions("AWS::SQS::Queue", REGION, "delete") == {
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
    }
    assert "dynamodb:CreateTable" in handler_permissions("AWS::DynamoDB::Table", "eu-west-1", "create")
    assert handler_permissions("AWS::Not::AType", REGION, "create") == frozenset()


# ------------------------------------------------------------------------------------- service roles
def service_role(*policies: dict[str, Any], name: str = "CfnRole") -> str:
    return role(name, *policies, trusted={"Service": CFN})


def pass_role(role_arn: str) -> dict[str, Any]:
    return allow("iam:PassRole", resource=role_arn, Condition={"StringEquals": {"iam:PassedToService": CFN}})


def test_a_stack_with_a_service_role_creates_its_resources_with_the_roles_permissions() -> None:
    service = service_role(allow("sqs:*"))
    cfn = session(role("Deployer", STACK_ONLY, pass_role(service))).client("cloudformation")

    cfn.create_stack(StackName="app", TemplateBody=QUEUE, RoleARN=service)
    created = cfn.describe_stacks(StackName="app")["Stacks"][0]
    cfn.delete_stack(StackName="app")  # the stack keeps its role: the delete uses it too

    assert (created["StackStatus"], created["RoleARN"]) == ("CREATE_COMPLETE", service)
    assert admin("sqs").list_queues().get("QueueUrls", []) == []


def test_passing_a_service_role_needs_iam_pass_role() -> None:
    service = service_role(allow("sqs:*"))
    cfn = session(role("Deployer", STACK_ONLY)).client("cloudformation")

    with pytest.raises(ClientError) as exc:
        cfn.create_stack(StackName="app", TemplateBody=QUEUE, RoleARN=service)

    assert refused(exc) == (
        "AccessDenied",
        f"User: arn:aws:sts::{TARGET}:assumed-role/Deployer/op is not authorized to perform: iam:PassRole on "
        f"resource: {service} because no identity-based policy allows the iam:PassRole action",
        403,
    )


def test_a_service_role_lacking_a_handler_permission_fails_the_resource_in_its_name() -> None:
    service = service_role(allow("sqs:ListQueues"))
    cfn = session(role("Deployer", allow("*"))).client("cloudformation")  # the caller could; the role cannot

    cfn.create_stack(StackName="app", TemplateBody=QUEUE, RoleARN=service)

    reason = failure_reason(cfn, "Queue")
    assert (
        f"User: arn:aws:sts::{TARGET}:assumed-role/CfnRole/AWSCloudFormation is not authorized to perform: sqs:CreateQueue"
        in reason
    )


def test_a_service_role_cloudformation_cannot_assume_is_refused() -> None:
    not_for_cloudformation = role("NotForCfn", allow("*"))

    with pytest.raises(ClientError) as exc:
        admin("cloudformation").create_stack(
            StackName="app", TemplateBody=QUEUE, RoleARN=not_for_cloudformation
        )

    assert refused(exc) == (
        "ValidationError",
        f"Role {not_for_cloudformation} is invalid or cannot be assumed",
        400,
    )


# ------------------------------------------------------------------------------------------- canary
def test_canary_the_request_path_hooked_is_moto_s() -> None:
    """If this fails, moto changed the request path localaws/authorization.py hooks into."""
    authorization.check_moto_internals()
    from moto.core.authorization import ActionAuthenticatorMixin

    layer = ActionAuthenticatorMixin.__dict__["_authenticate_and_authorize_action"]
    layers = []  # localaws.faults may wrap it in turn
    while layer is not None:
        layers.append(layer)
        layer = getattr(layer, "__wrapped__", None)
    assert any(getattr(h, "_localaws_authorization_patched", False) for h in layers), "the hook is installed"


def test_canary_reports_a_changed_internal_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.iam.models import IAMBackend

    monkeypatch.delattr(IAMBackend, "get_user_from_access_key_id")

    with pytest.raises(
        MotoInternalsChanged, match=r"moto internals changed \(IAMBackend.get_user_from_access_key_id"
    ):
        authorization.check_moto_internals()


def test_the_default_profiles_sqs_addition_is_what_the_queue_handlers_declare() -> None:
    from chalicelib.domain.permissions import GUIDE_CORRECTIONS

    (sqs,) = [c for c in GUIDE_CORRECTIONS if c.sid == "SQSPermissions"]
    declared = set().union(
        *(handler_permissions("AWS::SQS::Queue", REGION, h) for h in ("create", "update", "delete"))
    )
    assert set(sqs.actions) == declared
