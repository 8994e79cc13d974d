"""CloudFormation's quick-create link for the IAM Role ARN method, against the local AWS's S3.

The service writes the target's bootstrap template into its bucket and answers the AWS console link
that deploys it with the external ID and the service's role as ``param_`` values. Here the bucket is
the stack's own (``BootstrapTemplatesBucket``, written by the API under ``ApiRole``), the object is read back, linted with cfn-lint, and deployed in the target account
with exactly the link's parameters: the role it creates is then validated by the service for real.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chalice.test import Client

import app as app_module
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from localaws.template import service_template
from tests.api.test_access import assert_lints_clean, validate
from tests.conftest import TARGET_ACCOUNT, Tenant, call, local_aws_for_app, register_target, wired


@pytest.fixture
def bucketed(local_aws: LocalAws) -> Iterator[tuple[Client, Tenant]]:
    """The API as the cloud template configures it (its NEXUS_BOOTSTRAP_BUCKET names the stack's
    BootstrapTemplatesBucket, which ApiRole may write under bootstrap/) and a tenant."""
    with wired(local_aws) as built, Client(app_module.app) as test_client:
        yield test_client, Tenant("tenant-a", built.auth.issue("tenant-a", "tests"))


def bucket_of(local_aws: LocalAws) -> str:
    return local_aws.stack.ref("BootstrapTemplatesBucket")


def link_of(client: Client, tenant: Tenant, target_id: str) -> dict[str, Any]:
    response = call(client, "POST", f"/targets/{target_id}/quick-create-link", tenant)
    assert response.status_code == 200, response.body
    link: dict[str, Any] = json.loads(response.body)
    return link


def template_object(local_aws: LocalAws, template_url: str) -> tuple[str, str]:
    """The object's key and text, read from the bucket the URL names."""
    parts = urlsplit(template_url)
    assert parts.scheme == "https"
    assert parts.netloc == f"{bucket_of(local_aws)}.s3.us-east-1.amazonaws.com"
    key = parts.path.lstrip("/")
    s3 = local_aws.account_session(CENTRAL_ACCOUNT).client("s3")
    return key, s3.get_object(Bucket=bucket_of(local_aws), Key=key)["Body"].read().decode()


def test_the_link_opens_create_stack_with_the_template_and_both_parameters(bucketed, local_aws) -> None:
    bucket_client, bucket_tenant = bucketed
    target = register_target(bucket_client, bucket_tenant, local_aws, with_role=False)
    link = link_of(bucket_client, bucket_tenant, target["target_id"])
    url = urlsplit(link["url"])
    assert len(link["url"]) <= 1024
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "us-east-1.console.aws.amazon.com",
        "/cloudformation/home",
    )
    assert parse_qs(url.query) == {"region": ["us-east-1"]}
    route, _, fragment_query = url.fragment.partition("?")
    assert route == "/stacks/create/review"
    values = {name: v for name, (v,) in parse_qs(fragment_query, strict_parsing=True).items()}
    assert values == {
        "templateURL": link["template_url"],
        "stackName": "nexus-deployer-bootstrap",
        "param_ExternalId": target["external_id"],
        "param_ServiceRoleArn": local_aws.central.service_role_arn,
    }
    assert link["parameters"] == {
        "ExternalId": target["external_id"],
        "ServiceRoleArn": local_aws.central.service_role_arn,
    }
    assert (link["region"], link["stack_name"]) == ("us-east-1", "nexus-deployer-bootstrap")


def test_the_object_takes_both_values_as_parameters_and_lints_clean(bucketed, local_aws, tmp_path) -> None:
    bucket_client, bucket_tenant = bucketed
    target = register_target(bucket_client, bucket_tenant, local_aws, with_role=False)
    link = link_of(bucket_client, bucket_tenant, target["target_id"])
    key, body = template_object(local_aws, link["template_url"])
    assert re.fullmatch(r"bootstrap/[0-9a-f]{64}\.json", key), key
    template = json.loads(body)
    parameters = template["Parameters"]
    assert set(parameters) == {"ExternalId", "ServiceRoleArn"}
    for spec in parameters.values():  # a link can pass neither a NoEcho value nor needs a default
        assert "NoEcho" not in spec
        assert "Default" not in spec
    trust = template["Resources"]["DeploymentRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"AWS": {"Ref": "ServiceRoleArn"}}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    assert target["external_id"] not in body  # only the link carries it
    assert local_aws.central.service_role_arn not in body
    assert_lints_clean(template, tmp_path / "quick-create.json")


def test_asking_again_writes_the_same_object_and_answers_the_same_link(bucketed, local_aws) -> None:
    bucket_client, bucket_tenant = bucketed
    target = register_target(bucket_client, bucket_tenant, local_aws, with_role=False)
    first = link_of(bucket_client, bucket_tenant, target["target_id"])
    second = link_of(bucket_client, bucket_tenant, target["target_id"])
    assert first == second
    s3 = local_aws.account_session(CENTRAL_ACCOUNT).client("s3")
    listed = s3.list_objects_v2(Bucket=bucket_of(local_aws), Prefix="bootstrap/").get("Contents", [])
    assert [o["Key"] for o in listed] == [template_object(local_aws, first["template_url"])[0]]


def test_the_stack_the_link_creates_gives_the_service_a_role_that_passes_every_check(
    bucketed, local_aws
) -> None:
    bucket_client, bucket_tenant = bucketed
    target = register_target(bucket_client, bucket_tenant, local_aws, with_role=False)
    link = link_of(bucket_client, bucket_tenant, target["target_id"])
    _, body = template_object(local_aws, link["template_url"])
    # What CloudFormation's console does with the link in the target account: the template, the
    # link's parameter values as they are, CAPABILITY_NAMED_IAM acknowledged.
    cfn = local_aws.account_session(TARGET_ACCOUNT).client("cloudformation")
    cfn.create_stack(
        StackName=link["stack_name"],
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in link["parameters"].items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    assert cfn.describe_stacks(StackName=link["stack_name"])["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    report = validate(bucket_client, bucket_tenant, target["target_id"])
    assert report["ok"] is True, report["checks"]


def without_bootstrap_bucket() -> dict[str, Any]:
    """The service's template with no NEXUS_BOOTSTRAP_BUCKET in the API's environment."""
    template = service_template()
    del template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"][
        "NEXUS_BOOTSTRAP_BUCKET"
    ]
    return template


def test_without_a_bucket_the_link_is_refused_with_the_cli_command() -> None:
    with (
        local_aws_for_app(template=without_bootstrap_bucket()) as aws,
        wired(aws) as built,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", built.auth.issue("tenant-a", "tests"))
        target = register_target(client, tenant, aws, with_role=False)
        response = call(client, "POST", f"/targets/{target['target_id']}/quick-create-link", tenant)
    assert response.status_code == 409, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "QUICK_CREATE_NOT_AVAILABLE"
    assert f"nexus targets bootstrap {target['target_id']}" in error["hint"]
