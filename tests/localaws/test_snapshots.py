"""The central account copied from an earlier deployment (localaws/snapshots.py) is the deployed one.

Each in-process ``LocalAws`` after the first of a template gets a copy of the central account as the
first deployment left it, instead of deploying the template again. These tests deploy once (the cache
emptied first), then compare what a copy answers with what the deployment answered, read by read over
every kind of resource the template has, and check that nothing one ``LocalAws`` writes reaches the next.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.awslambda.models import lambda_backends

from localaws import environment
from localaws.environment import CENTRAL_ACCOUNT, LocalAws


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    kept = dict(environment._DEPLOYED)
    environment._DEPLOYED.clear()
    try:
        yield
    finally:
        environment._DEPLOYED.clear()
        environment._DEPLOYED.update(kept)


def _without_dates(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: "<date>" if hasattr(v, "isoformat") else str(v)))


def central_account(aws: LocalAws) -> dict[str, Any]:
    """What the central account answers about each kind of resource the service's template creates."""
    session = aws.account_session(CENTRAL_ACCOUNT)
    iam = session.client("iam")
    lam = session.client("lambda")
    sfn = session.client("stepfunctions")
    ddb = session.client("dynamodb")
    events = session.client("events")
    sqs = session.client("sqs")
    sns = session.client("sns")
    s3 = session.client("s3")
    logs = session.client("logs")
    cloudwatch = session.client("cloudwatch")
    apigateway = session.client("apigateway")
    roles = [r for r in iam.list_roles()["Roles"] if r["Path"] == "/" and "nexus" in r["RoleName"]]
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]

    def targets(rule: str) -> list[Any]:
        return sorted((t["Id"], t["Arn"]) for t in events.list_targets_by_rule(Rule=rule)["Targets"])

    rules = events.list_rules()["Rules"]
    answers: dict[str, Any] = _without_dates(
        {
            "roles": {
                r["RoleName"]: {
                    "trust": r["AssumeRolePolicyDocument"],
                    "inline": {
                        name: iam.get_role_policy(RoleName=r["RoleName"], PolicyName=name)["PolicyDocument"]
                        for name in iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]
                    },
                    "attached": iam.list_attached_role_policies(RoleName=r["RoleName"])["AttachedPolicies"],
                }
                for r in roles
            },
            "functions": sorted(
                (f["FunctionName"], f["Role"], f["Handler"], json.dumps(f.get("Environment"), sort_keys=True))
                for f in lam.list_functions()["Functions"]
            ),
            "state_machines": {
                m["name"]: sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])["definition"]
                for m in sfn.list_state_machines()["stateMachines"]
            },
            "tables": {
                name: ddb.describe_table(TableName=name)["Table"]["KeySchema"]
                for name in ddb.list_tables()["TableNames"]
            },
            "rules": sorted(
                (
                    r["Name"],
                    r.get("EventPattern", ""),
                    r.get("ScheduleExpression", ""),
                    str(targets(r["Name"])),
                )
                for r in rules
            ),
            "queues": sorted(sqs.list_queues().get("QueueUrls", [])),
            "topics": sorted(t["TopicArn"] for t in sns.list_topics()["Topics"]),
            "subscriptions": sorted(s["Endpoint"] for s in sns.list_subscriptions()["Subscriptions"]),
            "buckets": {name: s3.get_bucket_policy(Bucket=name)["Policy"] for name in buckets},
            "log_groups": sorted(
                (g["logGroupName"], g.get("retentionInDays")) for g in logs.describe_log_groups()["logGroups"]
            ),
            "alarms": sorted(a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]),
            "apis": sorted(a["name"] for a in apigateway.get_rest_apis()["items"]),
        }
    )
    return answers


def test_a_copied_central_account_answers_as_the_deployed_one(fresh_cache: None) -> None:
    with LocalAws() as deployed:
        expected = central_account(deployed)
    assert len(environment._DEPLOYED) == 1  # the deployment was kept
    with LocalAws() as copied:
        actual = central_account(copied)
    assert actual == expected
    # Every kind of resource is there to compare (an empty read would compare equal too).
    assert all(expected[kind] for kind in expected), [kind for kind in expected if not expected[kind]]


def test_what_one_local_aws_writes_in_the_central_account_the_next_does_not_see(fresh_cache: None) -> None:
    with LocalAws() as first:
        session = first.account_session(CENTRAL_ACCOUNT)
        table = first.central.table_name
        session.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "x"}, "sk": {"S": "y"}})
        session.client("iam").create_role(RoleName="left-behind", AssumeRolePolicyDocument="{}")
        (queue, *_) = session.client("sqs").list_queues()["QueueUrls"]
        session.client("sqs").send_message(QueueUrl=queue, MessageBody="left behind")
    for _ in range(2):  # a copy, and a copy after a copy was written to
        with LocalAws() as later:
            session = later.account_session(CENTRAL_ACCOUNT)
            assert session.client("dynamodb").scan(TableName=table)["Items"] == []
            roles = [r["RoleName"] for r in session.client("iam").list_roles()["Roles"]]
            assert "left-behind" not in roles
            sqs = session.client("sqs")
            assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []
            # Its queue works (a copied queue gets a condition of its own to wait on).
            sqs.send_message(QueueUrl=queue, MessageBody="mine")
            received = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
            assert [m["Body"] for m in received] == ["mine"]
            session.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "b"}})


def test_a_copied_account_keeps_its_bucket_names_and_finds_its_functions_by_arn(fresh_cache: None) -> None:
    """What moto keeps beside the backends: S3's one namespace of bucket names across accounts, and
    Lambda's index of functions by ARN (a weak-valued dict, whose values a deep copy does not copy)."""
    with LocalAws():
        pass  # the deployment, kept
    gc.collect()  # the first LocalAws's objects go: an index still pointing at them would come out empty
    with LocalAws() as copied:
        central = copied.account_session(CENTRAL_ACCOUNT)
        (bucket,) = [b["Name"] for b in central.client("s3").list_buckets()["Buckets"]]
        other = copied.account_session("210987654321").client("s3")
        with pytest.raises(ClientError) as taken:
            other.create_bucket(Bucket=bucket)
        assert taken.value.response["Error"]["Code"] == "BucketAlreadyExists"
        with pytest.raises(ClientError) as not_theirs:
            central.client("s3").head_bucket(Bucket=bucket, ExpectedBucketOwner="210987654321")
        assert not_theirs.value.response["Error"]["Code"] in ("403", "AccessDenied")

        lam = central.client("lambda")
        functions = lam.list_functions()["Functions"]
        backend = lambda_backends[CENTRAL_ACCOUNT][copied.region]
        for each in functions:  # the ARN index (SNS and log deliveries, moto's deletes) finds this copy's
            assert backend.get_function_by_arn(each["FunctionArn"]) is backend.get_function(
                each["FunctionName"]
            )
        function = functions[0]
        # Changed through its ARN, the function read by its name is changed: the one function, not the
        # copy's by name and the kept deployment's by ARN.
        lam.update_function_configuration(FunctionName=function["FunctionArn"], Description="changed")
        assert lam.get_function(FunctionName=function["FunctionName"])["Configuration"]["Description"] == (
            "changed"
        )
        lam.delete_function(FunctionName=function["FunctionArn"])
        assert function["FunctionName"] not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    with LocalAws() as later:  # and the kept deployment is as it was
        lam = later.account_session(CENTRAL_ACCOUNT).client("lambda")
        kept = lam.get_function(FunctionName=function["FunctionArn"])["Configuration"]
        assert kept.get("Description", "") == function.get("Description", "")
