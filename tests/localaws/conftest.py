"""Shared by the local AWS's CloudFormation tests (``test_template_realism_*``, ``test_cloudformation_*``):
a CloudFormation client on a fresh moto whose stacks settle at once, a template, and the helpers that
read what it answered (a refusal's message, a stack, its events and status).

A module that defines its own ``cfn`` fixture (``test_lifecycle_patches``) uses its own.

Shared by the STS tests (``test_sts_*``): ``sts_aws``, a fresh moto with the AWS-faithful STS patches
(``localaws.sts``) and IAM authorization installed and the patches' clock reset, which those modules use
for every test, and the helpers that create roles, assume them and check what AWS answered.

Shared by both: ``threaded_moto_server``, the same patched moto served over HTTP, as local mode serves it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from localaws import authorization
from localaws import sts as local_sts
from localaws.cloudformation import StackSimulation, install
from localaws.sts import CLOCK, account_credentials

REGION = "us-east-1"


@contextmanager
def threaded_moto_server() -> Iterator[str]:
    """moto (with whatever patches the test installed) served on a free local port: its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


QUEUE_AND_TOPIC: dict[str, Any] = {
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}},
        "Topic": {"Type": "AWS::SNS::Topic"},
    },
    "Outputs": {
        "QueueUrl": {"Value": {"Ref": "Queue"}, "Export": {"Name": "app-queue-url"}},
        "TopicArn": {"Value": {"Ref": "Topic"}},
    },
}


@pytest.fixture
def cfn() -> Iterator[Any]:
    install(StackSimulation(stack_seconds=0))
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)
    install(StackSimulation(stack_seconds=0))


def body(template: dict[str, Any]) -> str:
    return json.dumps(template)


def refusal(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    assert error.value.response["Error"]["Code"] == "ValidationError"
    return str(error.value.response["Error"]["Message"])


def events(cfn: Any, stack: str) -> list[dict[str, Any]]:
    return list(reversed(cfn.describe_stack_events(StackName=stack)["StackEvents"]))


def resource_events(cfn: Any, stack: str, logical_id: str) -> list[tuple[str, str, str]]:
    return [
        (e["ResourceStatus"], e.get("PhysicalResourceId", ""), e.get("ResourceStatusReason", ""))
        for e in events(cfn, stack)
        if e["LogicalResourceId"] == logical_id
    ]


def status(cfn: Any, stack: str) -> str:
    return str(cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])


def stack_of(cfn: Any, name: str) -> dict[str, Any]:
    stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return stack


def statuses(events: list[dict[str, Any]], logical_id: str) -> list[str]:
    return [e["ResourceStatus"] for e in events if e["LogicalResourceId"] == logical_id]


# ------------------------------------------------------------------------------------------------ STS
TARGET = "111111111111"
OTHER = "222222222222"
DEFAULT_CALLER = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:user/moto"


@pytest.fixture
def sts_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    local_sts.install()
    authorization.install()  # role sessions and IAM users act within their identity policies, as on AWS
    CLOCK.reset()
    with mock_aws():
        yield
    CLOCK.reset()


_make_client: Callable[..., Any] = boto3.client


def client(service: str, credentials: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return _make_client(service, region_name=REGION, **(credentials or {}), **kwargs)


def session_kwargs(credentials: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def trust(principal: Any, condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    statement.update(extra)
    return {"Version": "2012-10-17", "Statement": [statement]}


def create_role(
    name: str,
    policy: dict[str, Any],
    account: str = TARGET,
    path: str = "/",
    allow: tuple[str, ...] = ("sts:AssumeRole",),
    **kwargs: Any,
) -> str:
    """Create a role in ``account`` with credentials that belong to that account; its sessions may call
    ``allow`` (by default assume other roles, which AWS requires of a chaining role's own policies)."""
    iam = client("iam", account_credentials(account).boto3_kwargs())
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy), Path=path, **kwargs)
    if allow:
        grant = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(allow), "Resource": "*"}],
        }
        iam.put_role_policy(RoleName=name, PolicyName="allow", PolicyDocument=json.dumps(grant))
    return str(role["Role"]["Arn"])


def may_assume_roles(iam: Any, *users: str) -> None:
    """Let IAM users assume roles, as AWS requires of their own policies (besides the role's trust)."""
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
    for user in users:
        iam.put_user_policy(UserName=user, PolicyName="assume-roles", PolicyDocument=json.dumps(grant))


def assume(arn: str, credentials: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    response = client("sts", credentials).assume_role(RoleArn=arn, RoleSessionName="deploy", **kwargs)
    return dict(response)


def denied(exc: pytest.ExceptionInfo[ClientError], caller: str, arn: str) -> None:
    error = exc.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert (
        error["Message"] == f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {arn}"
    )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def validation(exc: pytest.ExceptionInfo[ClientError]) -> str:
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(exc.value.response["Error"]["Message"])


def expired(exc: pytest.ExceptionInfo[ClientError], code: str = "ExpiredToken", status: int = 403) -> None:
    error = exc.value.response["Error"]
    assert error["Code"] == code
    assert error["Message"] == "The security token included in the request is expired"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
