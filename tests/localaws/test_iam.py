"""Behaviour of ``localaws.iam``: SimulatePrincipalPolicy / SimulateCustomPolicy on moto."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localaws import iam as local_iam

REGION = "us-east-1"
ACCOUNT = "123456789012"

# What a deployment role needs for a typical stack; the role under test lacks exactly three of them.
REQUIRED_ACTIONS = [
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:CreateChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DescribeChangeSet",
    "s3:CreateBucket",
    "s3:PutBucketPolicy",
    "s3:GetObject",
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:DeleteTable",
    "iam:CreateRole",
    "iam:PassRole",
    "iam:AttachRolePolicy",
    "lambda:CreateFunction",
    "sqs:CreateQueue",
    "sns:CreateTopic",
]
MISSING = ["iam:CreateRole", "iam:PassRole", "iam:AttachRolePolicy"]

_make_client: Callable[..., Any] = boto3.client


@pytest.fixture(autouse=True)
def aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    local_iam.install()
    with mock_aws(config=getattr(request, "param", None)):
        yield


@pytest.fixture
def iam() -> Any:
    return _make_client("iam", region_name=REGION)


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def make_role(iam: Any, name: str = "deployer", **kwargs: Any) -> str:
    trust = doc({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"})
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **kwargs)["Role"]["Arn"])


def decisions(response: dict[str, Any]) -> dict[str, str]:
    return {r["EvalActionName"]: r["EvalDecision"] for r in response["EvaluationResults"]}


def test_role_missing_exactly_three_of_twenty_actions_reports_exactly_those(iam: Any) -> None:
    arn = make_role(iam)
    iam.put_role_policy(
        RoleName="deployer",
        PolicyName="stacks",
        PolicyDocument=doc(allow(["cloudformation:*", "s3:CreateBucket", "s3:PutBucketPolicy"])),
    )
    managed = iam.create_policy(
        PolicyName="data", PolicyDocument=doc(allow(["dynamodb:*Table", "s3:Get*", "lambda:Create*"]))
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="deployer", PolicyArn=managed)
    iam.put_role_policy(
        RoleName="deployer", PolicyName="messaging", PolicyDocument=doc(allow(["sqs:Create*", "sns:Create*"]))
    )

    response = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=REQUIRED_ACTIONS)

    results = response["EvaluationResults"]
    assert [r["EvalActionName"] for r in results] == REQUIRED_ACTIONS
    assert [r["EvalActionName"] for r in results if r["EvalDecision"] != "allowed"] == MISSING
    assert {r["EvalDecision"] for r in results if r["EvalActionName"] in MISSING} == {"implicitDeny"}
    assert all(r["EvalResourceName"] == "*" for r in results)
    by_action = {r["EvalActionName"]: r for r in results}
    assert by_action["iam:CreateRole"]["MatchedStatements"] == []
    assert by_action["dynamodb:CreateTable"]["MatchedStatements"] == [
        {"SourcePolicyId": "data", "SourcePolicyType": "user-managed"}
    ]
    assert by_action["cloudformation:CreateStack"]["MatchedStatements"] == [
        {"SourcePolicyId": "stacks", "SourcePolicyType": "role"}
    ]


def test_explicit_deny_wins_and_is_reported(iam: Any) -> None:
    arn = make_role(iam)
    iam.put_role_policy(RoleName="deployer", PolicyName="all", PolicyDocument=doc(allow("*")))
    iam.put_role_policy(
        RoleName="deployer", PolicyName="guard", PolicyDocument=doc(deny(["iam:*User*", "s3:DeleteBucket"]))
    )

    response = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["iam:CreateUser", "s3:DeleteBucket", "s3:CreateBucket"]
    )

    assert decisions(response) == {
        "iam:CreateUser": "explicitDeny",
        "s3:DeleteBucket": "explicitDeny",
        "s3:CreateBucket": "allowed",
    }
    assert response["EvaluationResults"][0]["MatchedStatements"] == [
        {"SourcePolicyId": "guard", "SourcePolicyType": "role"}
    ]


def test_actions_match_case_insensitively_and_not_action_is_honoured(iam: Any) -> None:
    arn = make_role(iam)
    iam.put_role_policy(
        RoleName="deployer",
        PolicyName="p",
        PolicyDocument=doc(allow("S3:getobject"), {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
    )

    response = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["s3:GetObject", "sqs:SendMessage", "iam:GetRole"]
    )

    assert decisions(response) == {
        "s3:GetObject": "allowed",
        "sqs:SendMessage": "allowed",
        "iam:GetRole": "implicitDeny",
    }


def test_resource_arns_are_matched_against_resource_patterns(iam: Any) -> None:
    arn = make_role(iam)
    iam.put_role_policy(
        RoleName="deployer",
        PolicyName="p",
        PolicyDocument=doc(allow("s3:GetObject", "arn:aws:s3:::artifacts-*/*")),
    )

    response = iam.simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=["s3:GetObject"],
        ResourceArns=["arn:aws:s3:::artifacts-eu/template.json", "arn:aws:s3:::secrets/key"],
    )

    assert [(r["EvalResourceName"], r["EvalDecision"]) for r in response["EvaluationResults"]] == [
        ("arn:aws:s3:::artifacts-eu/template.json", "allowed"),
        ("arn:aws:s3:::secrets/key", "implicitDeny"),
    ]


@pytest.mark.parametrize(
    "aws", [{"iam": {"load_aws_managed_policies": True}}], indirect=True, ids=["aws-policies"]
)
def test_user_policies_include_group_and_aws_managed_policies(aws: None, iam: Any) -> None:
    iam.create_user(UserName="alice")
    user_arn = iam.get_user(UserName="alice")["User"]["Arn"]
    iam.create_group(GroupName="ops")
    iam.add_user_to_group(GroupName="ops", UserName="alice")
    iam.put_group_policy(GroupName="ops", PolicyName="ops-sqs", PolicyDocument=doc(allow("sqs:*")))
    iam.attach_user_policy(UserName="alice", PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    iam.put_user_policy(UserName="alice", PolicyName="no-delete", PolicyDocument=doc(deny("sqs:DeleteQueue")))

    response = iam.simulate_principal_policy(
        PolicySourceArn=user_arn,
        ActionNames=["sqs:SendMessage", "s3:GetObject", "s3:PutObject", "sqs:DeleteQueue"],
    )

    assert decisions(response) == {
        "sqs:SendMessage": "allowed",
        "s3:GetObject": "allowed",
        "s3:PutObject": "implicitDeny",
        "sqs:DeleteQueue": "explicitDeny",
    }
    matched = {r["EvalActionName"]: r["MatchedStatements"] for r in response["EvaluationResults"]}
    assert matched["sqs:SendMessage"] == [{"SourcePolicyId": "ops-sqs", "SourcePolicyType": "group"}]
    assert matched["s3:GetObject"] == [
        {"SourcePolicyId": "AmazonS3ReadOnlyAccess", "SourcePolicyType": "aws-managed"}
    ]
    assert matched["sqs:DeleteQueue"] == [{"SourcePolicyId": "no-delete", "SourcePolicyType": "user"}]


def test_managed_policy_uses_its_default_version(iam: Any) -> None:
    arn = make_role(iam)
    policy = iam.create_policy(PolicyName="p", PolicyDocument=doc(allow("sqs:*")))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="deployer", PolicyArn=policy)
    iam.create_policy_version(PolicyArn=policy, PolicyDocument=doc(allow("sns:*")), SetAsDefault=True)

    response = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["sqs:SendMessage", "sns:Publish"]
    )

    assert decisions(response) == {"sqs:SendMessage": "implicitDeny", "sns:Publish": "allowed"}


def test_permissions_boundary_limits_what_the_role_is_allowed(iam: Any) -> None:
    boundary = iam.create_policy(PolicyName="boundary", PolicyDocument=doc(allow(["s3:*", "sqs:*"])))[
        "Policy"
    ]["Arn"]
    arn = make_role(iam, PermissionsBoundary=boundary)
    iam.put_role_policy(RoleName="deployer", PolicyName="all", PolicyDocument=doc(allow("*")))

    response = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["s3:GetObject", "iam:CreateRole"]
    )

    assert decisions(response) == {"s3:GetObject": "allowed", "iam:CreateRole": "implicitDeny"}


def test_conditions_use_context_entries_and_report_missing_keys(iam: Any) -> None:
    arn = make_role(iam)
    statement = allow("ec2:RunInstances", Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}})
    iam.put_role_policy(RoleName="deployer", PolicyName="p", PolicyDocument=doc(statement))

    without = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["ec2:RunInstances"])
    in_region = iam.simulate_principal_policy(
        PolicySourceArn=arn,
        ActionNames=["ec2:RunInstances"],
        ContextEntries=[
            {
                "ContextKeyName": "aws:RequestedRegion",
                "ContextKeyValues": ["eu-west-1"],
                "ContextKeyType": "string",
            }
        ],
    )

    assert without["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    assert without["EvaluationResults"][0]["MissingContextValues"] == ["aws:RequestedRegion"]
    assert in_region["EvaluationResults"][0]["EvalDecision"] == "allowed"
    assert in_region["EvaluationResults"][0]["MissingContextValues"] == []


def test_policy_input_list_is_added_to_the_principals_policies(iam: Any) -> None:
    arn = make_role(iam)

    response = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["sqs:SendMessage"], PolicyInputList=[doc(allow("sqs:SendMessage"))]
    )

    assert response["EvaluationResults"][0]["EvalDecision"] == "allowed"
    assert response["EvaluationResults"][0]["MatchedStatements"] == [
        {"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none"}
    ]


def test_pagination_with_max_items_and_marker(iam: Any) -> None:
    arn = make_role(iam)
    iam.put_role_policy(RoleName="deployer", PolicyName="p", PolicyDocument=doc(allow("cloudformation:*")))

    first = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=REQUIRED_ACTIONS, MaxItems=8)
    second = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=REQUIRED_ACTIONS, MaxItems=8, Marker=first["Marker"]
    )
    third = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=REQUIRED_ACTIONS, MaxItems=8, Marker=second["Marker"]
    )
    paginated = [
        r["EvalActionName"]
        for page in iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=arn, ActionNames=REQUIRED_ACTIONS, PaginationConfig={"PageSize": 7}
        )
        for r in page["EvaluationResults"]
    ]

    assert (first["IsTruncated"], second["IsTruncated"], third["IsTruncated"]) == (True, True, False)
    assert "Marker" not in third
    names = [r["EvalActionName"] for page in (first, second, third) for r in page["EvaluationResults"]]
    assert names == REQUIRED_ACTIONS
    assert paginated == REQUIRED_ACTIONS


def test_unknown_role_is_no_such_entity(iam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/ghost", ActionNames=["s3:GetObject"]
        )

    assert exc.value.response["Error"]["Code"] == "NoSuchEntity"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_role_in_another_account_is_simulated_from_that_accounts_policies(iam: Any) -> None:
    from localaws.sts import account_credentials

    other = _make_client("iam", region_name=REGION, **account_credentials("111111111111").boto3_kwargs())
    arn = make_role(other)
    other.put_role_policy(RoleName="deployer", PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    make_role(iam)  # same name, no policies, in the default account

    response = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:CreateBucket"])

    assert arn.startswith("arn:aws:iam::111111111111:")
    assert response["EvaluationResults"][0]["EvalDecision"] == "allowed"


def test_simulate_custom_policy(iam: Any) -> None:
    response = iam.simulate_custom_policy(
        PolicyInputList=[doc(allow("s3:*"), deny("s3:DeleteBucket"))],
        ActionNames=["s3:CreateBucket", "s3:DeleteBucket", "sqs:SendMessage"],
    )

    assert decisions(response) == {
        "s3:CreateBucket": "allowed",
        "s3:DeleteBucket": "explicitDeny",
        "sqs:SendMessage": "implicitDeny",
    }


def test_install_is_idempotent() -> None:
    from moto.iam.responses import IamResponse

    before = IamResponse.simulate_principal_policy  # type: ignore[attr-defined]
    local_iam.install()

    assert IamResponse.simulate_principal_policy is before  # type: ignore[attr-defined]


def test_canary_moto_internals_that_the_simulation_relies_on_are_unchanged(iam: Any) -> None:
    """If this fails, moto changed under localaws/iam.py: re-check it before trusting the tests."""
    import moto
    from moto.iam.models import iam_backends

    from localaws.sts import MOTO_VERSION

    assert moto.__version__ == MOTO_VERSION
    local_iam.check_moto_internals()
    make_role(iam)
    iam.put_role_policy(RoleName="deployer", PolicyName="inline", PolicyDocument=doc(allow("s3:*")))
    role = iam_backends[ACCOUNT]["aws"].get_role("deployer")
    assert json.loads(role.policies["inline"]) == json.loads(doc(allow("s3:*"))), (
        "Role.policies: name -> JSON"
    )


def test_canary_reports_a_moto_implementation_of_the_operation(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.iam.responses import IamResponse

    monkeypatch.setattr(IamResponse, "simulate_custom_policy", lambda self: None)

    with pytest.raises(RuntimeError, match=r"IamResponse.simulate_custom_policy now exists in moto"):
        local_iam.check_moto_internals()
