"""POST /deployments with template_url, and redeploys when a new version of that S3 object lands.

The bucket lives in the target account, with versioning on, as a tenant would keep its templates; the
"Object Created" events are what S3 sends to EventBridge, given to the app's own handler.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest

from chalicelib.adapters.automation_store import AutomationDynamoStore
from chalicelib.adapters.dynamodb import DynamoDeploymentStore
from chalicelib.domain.model import Deployment
from localaws.environment import LocalAws
from tests.conftest import OTHER_ACCOUNT, TARGET_ACCOUNT, call, guide_profile, register_target, wait_for
from tests.events.conftest import APP_STACK, deploy, events_of, object_created_event
from tests.support.faults import refused_once

BUCKET = "team-a-templates"
KEY = "stacks/app.json"


def template_bucket(aws: LocalAws, region: Literal["us-east-1", "eu-west-1"] = "us-east-1") -> Any:
    s3 = aws.account_session(TARGET_ACCOUNT).client("s3", region_name=region)
    if region == "us-east-1":  # us-east-1 takes no LocationConstraint
        s3.create_bucket(Bucket=BUCKET)
    else:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def with_output(name: str, value: str) -> str:
    template = json.loads(APP_STACK)
    template["Outputs"][name] = {"Value": value}
    return json.dumps(template)


def by_url(target: dict[str, Any], stack_name: str, template_url: str) -> dict[str, Any]:
    """A POST /deployments body for a us-east-1 stack whose template is ``template_url``."""
    return {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": stack_name,
        "template_url": template_url,
    }


def invoke(aws: LocalAws, event: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = aws.host.invoke("TemplateObjectCreated", event)
    return payload


def test_a_new_object_version_redeploys_once_and_identical_content_is_skipped(
    client, tenant, local_aws, aws_calls
):
    s3 = template_bucket(local_aws)
    first = s3.put_object(Bucket=BUCKET, Key=KEY, Body=APP_STACK.encode())["VersionId"]
    target = register_target(client, tenant, local_aws)
    deployment = deploy(client, tenant, target, "app", template_url=f"s3://{BUCKET}/{KEY}")
    deployment_id = deployment["deployment_id"]
    assert deployment["template_url"] == f"s3://{BUCKET}/{KEY}"
    assert "Release" not in deployment["outputs"]

    second = s3.put_object(Bucket=BUCKET, Key=KEY, Body=with_output("Release", "two").encode())["VersionId"]
    assert second != first
    aws_calls.clear()
    event = object_created_event(BUCKET, KEY, second)
    result = invoke(local_aws, event)
    assert list(result["started"]) == [deployment_id], result
    again = invoke(local_aws, object_created_event(BUCKET, KEY, second))  # another delivery, another event id
    assert again["duplicates"] == [deployment_id]
    assert aws_calls.count("stepfunctions", "StartExecution") == 1
    done = wait_for(client, tenant, deployment_id)
    assert done["status"] == "ACTIVE", done
    assert done["outputs"]["Release"] == "two"
    assert any(
        second in e["message"] for e in events_of(client, tenant, deployment_id) if e["status"] == "REDEPLOY"
    )

    # The same content uploaded again is a new version but no change: nothing runs.
    third = s3.put_object(Bucket=BUCKET, Key=KEY, Body=with_output("Release", "two").encode())["VersionId"]
    unchanged = invoke(local_aws, object_created_event(BUCKET, KEY, third))
    assert unchanged["unchanged"] == [deployment_id], unchanged
    assert aws_calls.count("stepfunctions", "StartExecution") == 1


def test_events_for_other_objects_or_malformed_ones_start_nothing(client, tenant, local_aws, aws_calls):
    s3 = template_bucket(local_aws)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=APP_STACK.encode())
    target = register_target(client, tenant, local_aws)
    deploy(client, tenant, target, "app", template_url=f"s3://{BUCKET}/{KEY}")
    aws_calls.clear()

    other = invoke(local_aws, object_created_event(BUCKET, "stacks/other.json", "v1"))
    malformed = invoke(local_aws, {**object_created_event(BUCKET, KEY, "v1"), "detail": {"bucket": "x"}})
    missing_version = invoke(local_aws, object_created_event(BUCKET, KEY, "no-such-version"))

    assert other == {"started": {}, "duplicates": [], "not_found": [], "refused": {}, "unchanged": []}
    assert malformed["dropped"] == "malformed-detail"
    assert list(missing_version["refused"].values()) == ["TEMPLATE_OBJECT_NOT_FOUND"]
    assert aws_calls.count("stepfunctions", "StartExecution") == 0


def test_template_url_rules_on_create(client, tenant, local_aws):
    template_bucket(local_aws)
    target = register_target(client, tenant, local_aws)
    base = {"target_id": target["target_id"], "region": "us-east-1", "stack_name": "app"}

    both = call(
        client,
        "POST",
        "/deployments",
        tenant,
        {**base, "template_body": APP_STACK, "template_url": f"s3://{BUCKET}/{KEY}"},
    )
    neither = call(client, "POST", "/deployments", tenant, base)
    assert both.status_code == neither.status_code == 422

    missing = call(
        client, "POST", "/deployments", tenant, {**base, "template_url": f"s3://{BUCKET}/nothing.json"}
    )
    assert missing.status_code == 404
    assert json.loads(missing.body)["error"]["code"] == "TEMPLATE_OBJECT_NOT_FOUND"


def test_a_template_url_in_another_accounts_bucket_is_refused_even_when_its_policy_lets_anyone_read(
    client, tenant, local_aws
):
    """The bucket must be the target account's: S3's ExpectedBucketOwner refuses any other, whatever
    its policy grants, so one tenant's deployment cannot read another account's templates."""
    s3 = local_aws.account_session(OTHER_ACCOUNT).client("s3")
    s3.create_bucket(Bucket="someone-elses-templates")
    s3.put_object(Bucket="someone-elses-templates", Key=KEY, Body=APP_STACK.encode())
    readable = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": "arn:aws:s3:::someone-elses-templates/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket="someone-elses-templates", Policy=json.dumps(readable))
    target = register_target(client, tenant, local_aws)
    body = by_url(target, "app", f"s3://someone-elses-templates/{KEY}")
    response = call(client, "POST", "/deployments", tenant, body)
    assert response.status_code == 422, response.body
    assert json.loads(response.body)["error"]["code"] == "TEMPLATE_OBJECT_REFUSED"


def test_a_template_larger_than_template_body_allows_is_sent_as_its_url(client, tenant, local_aws, aws_calls):
    """Over 51,200 bytes (TemplateBody's limit) and up to 1 MB (TemplateURL's): CloudFormation reads it
    from S3 itself; the service keeps only its location and version."""
    template = json.loads(with_output("Release", "big"))
    template["Metadata"] = {"Padding": "x" * 80_000}
    body = json.dumps(template)
    assert 51_200 < len(body) < 1_048_576
    s3 = template_bucket(local_aws)
    version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=body.encode())["VersionId"]
    target = register_target(client, tenant, local_aws)
    aws_calls.clear()
    from botocore.client import BaseClient

    sent: list[dict[str, Any]] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(self: Any, operation: str, params: Any) -> Any:
        if operation == "CreateStack":
            sent.append(dict(params))
        return original(self, operation, params)

    BaseClient._make_api_call = recording  # type: ignore[attr-defined]
    try:
        done = deploy(client, tenant, target, "big", template_url=f"s3://{BUCKET}/{KEY}")
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
    assert done["outputs"]["Release"] == "big"
    assert len(sent) == 1
    assert "TemplateBody" not in sent[0]
    assert sent[0]["TemplateURL"] == f"https://s3.us-east-1.amazonaws.com/{BUCKET}/{KEY}?versionId={version}"
    items = local_aws.central_session().client("dynamodb").scan(TableName=local_aws.central.table_name)
    assert "Padding" not in json.dumps(items["Items"])  # the text itself is not kept

    # An update that sends only parameters reuses that template, read again at its version.
    response = call(client, "PUT", f"/deployments/{done['deployment_id']}", tenant, {"tags": {"t": "1"}})
    assert response.status_code == 202, response.body
    assert wait_for(client, tenant, done["deployment_id"])["status"] == "ACTIVE"


def test_a_large_template_in_a_bucket_of_another_region_is_read_through_that_region(
    client, tenant, local_aws
):
    """The bucket in eu-west-1, the stack in us-east-1: TemplateURL names the bucket's region (S3
    answers any other region's endpoint with a redirect that CloudFormation does not follow)."""
    template = json.loads(with_output("Release", "far"))
    template["Metadata"] = {"Padding": "x" * 60_000}
    s3 = template_bucket(local_aws, "eu-west-1")
    version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(template).encode())["VersionId"]
    target = register_target(client, tenant, local_aws)
    from botocore.client import BaseClient

    sent: list[str] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(self: Any, operation: str, params: Any) -> Any:
        if operation in ("CreateStack", "CreateChangeSet"):
            sent.append(str(params.get("TemplateURL")))
        return original(self, operation, params)

    BaseClient._make_api_call = recording  # type: ignore[attr-defined]
    try:
        done = deploy(client, tenant, target, "far", template_url=f"s3://{BUCKET}/{KEY}")
        # A new version lands: the redeploy reads it at that version, through the same region.
        newer = json.loads(with_output("Release", "farther"))
        newer["Metadata"] = template["Metadata"]
        latest = s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(newer).encode())["VersionId"]
        assert list(invoke(local_aws, object_created_event(BUCKET, KEY, latest))["started"]) == [
            done["deployment_id"]
        ]
        redeployed = wait_for(client, tenant, done["deployment_id"])
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
    assert done["outputs"]["Release"] == "far"
    assert redeployed["status"] == "ACTIVE", redeployed
    assert redeployed["outputs"]["Release"] == "farther"
    where = f"https://s3.eu-west-1.amazonaws.com/{BUCKET}/{KEY}"
    assert sent == [f"{where}?versionId={version}", f"{where}?versionId={latest}"]


def test_a_role_without_get_object_version_cannot_deploy_a_large_template_at_its_version(
    client, tenant, local_aws
):
    """CloudFormation reads TemplateURL with the deployment role's permissions, and a versioned read is
    s3:GetObjectVersion: the guide's policy as pasted lacks it (the default profile adds it)."""
    template = json.loads(with_output("Release", "big"))
    template["Metadata"] = {"Padding": "x" * 60_000}
    s3 = template_bucket(local_aws)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(template).encode())
    target = register_target(client, tenant, local_aws, profile=guide_profile())
    response = call(client, "POST", "/deployments", tenant, by_url(target, "big", f"s3://{BUCKET}/{KEY}"))
    assert response.status_code == 202, response.body
    failed = wait_for(client, tenant, json.loads(response.body)["deployment_id"])
    assert failed["status"] == "FAILED", failed
    assert (
        "TemplateURL must reference a valid S3 object to which you have access" in failed["error"]["message"]
    )


def test_a_template_over_one_megabyte_is_refused(client, tenant, local_aws, aws_calls):
    template = json.loads(APP_STACK)
    template["Metadata"] = {"Padding": "x" * 1_100_000}
    s3 = template_bucket(local_aws)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(template).encode())
    target = register_target(client, tenant, local_aws)
    body = {**by_url(target, "huge", f"s3://{BUCKET}/{KEY}"), "parameters": {"Environment": "dev"}}
    aws_calls.clear()
    response = call(client, "POST", "/deployments", tenant, body)
    assert response.status_code == 413, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "TEMPLATE_TOO_LARGE"
    assert error["details"]["limit"] == 1_048_576
    assert aws_calls.count("stepfunctions") == 0
    assert aws_calls.count("cloudformation") == 0


def test_a_throttled_subscription_fails_the_create_with_nothing_written(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """The subscription to the template object is made before the deployment's record: AWS throttling it
    answers 503 with nothing written, so the caller's retry creates the deployment. (Made after the record,
    it left a PENDING deployment that no execution would move, and the retry got 409.)"""
    s3 = template_bucket(local_aws)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=APP_STACK.encode())
    target = register_target(client, tenant, local_aws)
    url = f"s3://{BUCKET}/{KEY}"
    subscribe, refused = refused_once(
        AutomationDynamoStore.subscribe_template,
        lambda store, template_url, tenant_id, deployment_id: template_url if template_url == url else None,
    )
    monkeypatch.setattr(AutomationDynamoStore, "subscribe_template", subscribe)
    body = by_url(target, "app", url)
    first = call(client, "POST", "/deployments", tenant, body)
    assert first.status_code == 503, first.body
    assert refused == [url]
    assert json.loads(call(client, "GET", "/deployments", tenant).body)["items"] == []
    again = call(client, "POST", "/deployments", tenant, body)
    assert again.status_code == 202, again.body
    done = wait_for(client, tenant, json.loads(again.body)["deployment_id"])
    assert done["status"] == "ACTIVE", done
    # Subscribed: a new version of the object redeploys it.
    second = s3.put_object(Bucket=BUCKET, Key=KEY, Body=with_output("Release", "two").encode())["VersionId"]
    result = invoke(local_aws, object_created_event(BUCKET, KEY, second))
    assert list(result["started"]) == [done["deployment_id"]], result


def test_an_object_event_between_the_subscription_and_the_record_does_not_unsubscribe(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch
):
    """The subscription is made before the record; an "Object Created" event handled in between finds no
    deployment and drops it. The create subscribes once more after its record, so the next version of the
    object still redeploys the deployment."""
    s3 = template_bucket(local_aws)
    first = s3.put_object(Bucket=BUCKET, Key=KEY, Body=APP_STACK.encode())["VersionId"]
    target = register_target(client, tenant, local_aws)
    write = DynamoDeploymentStore.create_deployment
    seen: list[dict[str, Any]] = []

    def event_first(store: DynamoDeploymentStore, deployment: Deployment, *args: Any, **kwargs: Any) -> Any:
        if deployment.stack_name == "app" and not seen:  # the record of this create, once
            seen.append(invoke(local_aws, object_created_event(BUCKET, KEY, first)))
        return write(store, deployment, *args, **kwargs)

    monkeypatch.setattr(DynamoDeploymentStore, "create_deployment", event_first)
    done = deploy(client, tenant, target, "app", template_url=f"s3://{BUCKET}/{KEY}")
    assert len(seen) == 1
    assert seen[0]["not_found"] == [done["deployment_id"]]  # the event dropped the first subscription
    second = s3.put_object(Bucket=BUCKET, Key=KEY, Body=with_output("Release", "two").encode())["VersionId"]
    result = invoke(local_aws, object_created_event(BUCKET, KEY, second))
    assert list(result["started"]) == [done["deployment_id"]], result
