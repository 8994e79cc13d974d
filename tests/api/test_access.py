"""Credentials end to end: permissions, the bootstrap template and validate, against the local AWS.

The target account is 111111111111; its administrator acts through ``local_aws.account_session``.
Every role below is assumed for real through the local STS (trust policy and external ID enforced)
and its permissions are simulated by the local IAM, so these tests prove the checks, not mocks.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.aws_errors import HINT_ASSUME_DENIED, HINT_EXTERNAL_ID_NOT_ENFORCED
from localaws.environment import CENTRAL_ACCOUNT
from tests.conftest import (
    TARGET_ACCOUNT,
    TARGET_ROLE,
    call,
    create_target_role,
    policy_profile,
    register_target,
    stacks_in,
    wait_for,
)

CHECKS = ["assume_role", "external_id_enforced", "caller_identity", "account_match", "permissions"]
KEY_PATTERN = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}")
QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})


def validate(client, tenant, target_id: str) -> dict[str, Any]:
    response = call(client, "POST", f"/targets/{target_id}/validate", tenant)
    assert response.status_code == 200, response.body
    report: dict[str, Any] = json.loads(response.body)
    assert [c["name"] for c in report["checks"]] == CHECKS
    return report


def checks_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def bootstrap(client, tenant, local_aws, target: dict[str, Any]) -> dict[str, Any]:
    """The target account's admin deploys the served bootstrap template with CloudFormation."""
    response = call(client, "GET", f"/targets/{target['target_id']}/bootstrap-template", tenant)
    assert response.status_code == 200, response.body
    template: dict[str, Any] = json.loads(response.body)
    cfn = local_aws.account_session(TARGET_ACCOUNT).client("cloudformation")
    cfn.create_stack(
        StackName="nexus-bootstrap", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    stack = cfn.describe_stacks(StackName="nexus-bootstrap")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["DeploymentRoleArn"] == target["role_arn"]
    return template


def default_policy(client, tenant) -> dict[str, Any]:
    response = call(client, "GET", "/permissions", tenant)
    assert response.status_code == 200
    policy: dict[str, Any] = json.loads(response.body)
    return policy


# -- GET /permissions -------------------------------------------------------------------------------


def test_permissions_default_is_the_guides_policy_with_its_corrections(client, tenant):
    policy = default_policy(client, tenant)
    assert policy["Version"] == "2012-10-17"
    assert len(policy["Statement"]) == 18  # the guide's 17 and SQSPermissions
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    assert len(actions) == 165  # the guide's 148 and 17 additions
    assert len(set(actions)) == 165
    assert "cloudformation:CreateChangeSet" in actions
    assert "cloudformation:CreateStack" in actions
    assert json.loads(call(client, "GET", "/permissions?profile=default", tenant).body) == policy


def test_permissions_other_profiles_and_unknown_ones(client, tenant):
    small = json.loads(call(client, "GET", "/permissions?profile=cloudformation-only", tenant).body)
    actions = [a for s in small["Statement"] for a in s["Action"]]
    assert len(actions) == 18
    assert {a.split(":")[0] for a in actions} == {"cloudformation", "sts"}
    unknown = call(client, "GET", "/permissions?profile=god-mode", tenant)
    assert unknown.status_code == 422
    assert json.loads(unknown.body)["error"]["code"] == "VALIDATION_FAILED"


def test_credential_routes_need_a_token(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    tid = target["target_id"]
    for method, path in [
        ("GET", "/permissions"),
        ("POST", f"/targets/{tid}/validate"),
        ("GET", f"/targets/{tid}/bootstrap-template"),
    ]:
        response = call(client, method, path, None)
        assert response.status_code == 401, path
        assert json.loads(response.body)["error"]["code"] == "MISSING_TOKEN"


def test_another_tenants_target_is_not_found(client, tenant, other_tenant, local_aws, aws_calls):
    target = register_target(client, tenant, local_aws)
    aws_calls.clear()
    for method, path in [
        ("POST", f"/targets/{target['target_id']}/validate"),
        ("GET", f"/targets/{target['target_id']}/bootstrap-template"),
        ("POST", "/targets/tgt-000000000000000000000000/validate"),
        ("POST", "/targets/not-an-id/validate"),
    ]:
        response = call(client, method, path, other_tenant)
        assert response.status_code == 404, path
    assert aws_calls.count("sts") == 0  # nothing assumed for a target the caller does not own


# -- the profile on a target --------------------------------------------------------------------------


def test_target_profile_defaults_is_chosen_and_is_checked(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    assert target["permission_profile"] == "default"
    body = {
        "name": "small",
        "account_id": TARGET_ACCOUNT,
        "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/{TARGET_ROLE}",
        "regions": ["us-east-1"],
        "permission_profile": "cloudformation-only",
    }
    small = json.loads(call(client, "POST", "/targets", tenant, body).body)
    assert small["permission_profile"] == "cloudformation-only"
    fetched = json.loads(call(client, "GET", f"/targets/{small['target_id']}", tenant).body)
    assert fetched["permission_profile"] == "cloudformation-only"
    refused = call(client, "POST", "/targets", tenant, {**body, "permission_profile": "everything"})
    assert refused.status_code == 422
    assert json.loads(refused.body)["error"]["details"][0]["field"] == "permission_profile"


def test_targets_stored_before_profiles_read_as_default(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    table = (
        local_aws.account_session(CENTRAL_ACCOUNT).resource("dynamodb").Table(local_aws.central.table_name)
    )
    item = table.get_item(Key={"pk": "TENANT#tenant-a", "sk": f"TARGET#{target['target_id']}"})["Item"]
    assert item["permission_profile"] == "default"
    del item["permission_profile"]
    table.put_item(Item=item)
    fetched = json.loads(call(client, "GET", f"/targets/{target['target_id']}", tenant).body)
    assert fetched["permission_profile"] == "default"


# -- the bootstrap template ---------------------------------------------------------------------------


def test_bootstrap_template_trusts_only_the_service_with_the_external_id(client, tenant, local_aws, tmp_path):
    target = register_target(client, tenant, local_aws, with_role=False)
    template = bootstrap(client, tenant, local_aws, target)
    role = template["Resources"]["DeploymentRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"] == target["trust_policy"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "AWS": local_aws.central.service_role_arn
    }
    iam = local_aws.account_session(TARGET_ACCOUNT).client("iam")
    created = iam.get_role(RoleName=TARGET_ROLE)["Role"]
    assert created["Arn"] == target["role_arn"]
    assert created["AssumeRolePolicyDocument"] == target["trust_policy"]
    attached = iam.list_attached_role_policies(RoleName=TARGET_ROLE)["AttachedPolicies"]
    assert len(attached) == 1
    inline = iam.list_role_policies(RoleName=TARGET_ROLE)["PolicyNames"]
    assert sorted(inline) == ["NexusPassCloudFormationServiceRole", "NexusSelfCheck"]
    # The CloudFormation service role exists, trusts CloudFormation and holds the same policy.
    service_roles = [r for r in iam.list_roles()["Roles"] if "CloudFormationServiceRole" in r["RoleName"]]
    assert len(service_roles) == 1
    trust = service_roles[0]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    service_attached = iam.list_attached_role_policies(RoleName=service_roles[0]["RoleName"])
    assert service_attached["AttachedPolicies"] == attached
    assert_lints_clean(template, tmp_path / "bootstrap.json")


def assert_lints_clean(template: dict[str, Any], path: Path) -> None:
    """cfn-lint finds nothing in ``template``, warnings included."""
    path.write_text(json.dumps(template, indent=2))
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-1000:]


def test_region_forwarding_template_is_the_rule_alone_and_lints_clean(client, tenant, local_aws, tmp_path):
    target = register_target(client, tenant, local_aws, with_role=False)
    path = f"/targets/{target['target_id']}/bootstrap-template"
    account = json.loads(call(client, "GET", path, tenant).body)
    response = call(client, "GET", f"{path}?part=region", tenant)
    assert response.status_code == 200, response.body
    template: dict[str, Any] = json.loads(response.body)
    (rule,) = template["Resources"].values()
    assert rule["Type"] == "AWS::Events::Rule"
    # The same rule as the bootstrap stack's, with the role that stack outputs as a parameter.
    own = account["Resources"]["StackStatusForwarding"]["Properties"]
    assert rule["Properties"]["EventPattern"] == own["EventPattern"]
    assert rule["Properties"]["Targets"][0]["Arn"] == own["Targets"][0]["Arn"] == local_aws.event_bus_arn
    assert rule["Properties"]["Targets"][0]["RoleArn"] == {"Ref": "ForwarderRoleArn"}
    assert "StackEventsForwarderRoleArn" in account["Outputs"]
    assert_lints_clean(template, tmp_path / "region.json")
    refused = call(client, "GET", f"{path}?part=everything", tenant)
    assert refused.status_code == 422, refused.body
    assert json.loads(refused.body)["error"]["details"][0]["field"] == "part", refused.body


# -- validate -----------------------------------------------------------------------------------------


def test_bootstrapped_role_passes_every_check(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    bootstrap(client, tenant, local_aws, target)
    report = validate(client, tenant, target["target_id"])
    assert report["ok"] is True, report
    assert report["target_id"] == target["target_id"]
    assert report["account_id"] == TARGET_ACCOUNT
    assert report["missing_actions"] == []
    checks = checks_of(report)
    assert all(c["ok"] and c["code"] is None and c["hint"] is None for c in report["checks"])
    assert checks["caller_identity"]["detail"].startswith(
        f"arn:aws:sts::{TARGET_ACCOUNT}:assumed-role/{TARGET_ROLE}/"
    )
    assert checks["permissions"]["detail"] == "all 165 actions of profile default are allowed"


def test_role_missing_three_actions_lists_exactly_those(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    policy = default_policy(client, tenant)
    removed = {"ec2:CreateNatGateway", "s3:PutBucketCORS", "ec2:DeleteVpc"}
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a not in removed]
    create_target_role(local_aws, target["trust_policy"], profile=policy_profile(policy))
    report = validate(client, tenant, target["target_id"])
    assert report["ok"] is False
    assert report["missing_actions"] == [
        {"service": "ec2", "actions": ["ec2:DeleteVpc", "ec2:CreateNatGateway"]},
        {"service": "s3", "actions": ["s3:PutBucketCORS"]},
    ]
    checks = checks_of(report)
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["permissions"]
    assert checks["permissions"]["code"] == "MISSING_PERMISSIONS"
    assert checks["permissions"]["detail"] == "3 of 165 actions of profile default are refused"
    assert "explicit Deny" in checks["permissions"]["hint"]


def test_explicit_deny_is_reported(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)
    policy = default_policy(client, tenant)
    policy["Statement"].append({"Effect": "Deny", "Action": "iam:PassRole", "Resource": "*"})
    iam = local_aws.account_session(TARGET_ACCOUNT).client("iam")
    iam.put_role_policy(RoleName=TARGET_ROLE, PolicyName="deploy", PolicyDocument=json.dumps(policy))
    report = validate(client, tenant, target["target_id"])
    assert report["missing_actions"] == [{"service": "iam", "actions": ["iam:PassRole"]}]
    assert "(1 by an explicit Deny)" in checks_of(report)["permissions"]["detail"]


def test_trust_policy_without_external_id_fails_the_confused_deputy_check(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    loose = json.loads(json.dumps(target["trust_policy"]))
    del loose["Statement"][0]["Condition"]
    create_target_role(local_aws, loose)
    report = validate(client, tenant, target["target_id"])
    checks = checks_of(report)
    assert report["ok"] is False
    assert checks["assume_role"]["ok"] is True
    assert checks["external_id_enforced"]["ok"] is False
    assert checks["external_id_enforced"]["code"] == "EXTERNAL_ID_NOT_ENFORCED"
    assert checks["external_id_enforced"]["hint"] == HINT_EXTERNAL_ID_NOT_ENFORCED
    assert "sts:ExternalId" in checks["external_id_enforced"]["hint"]
    assert checks["caller_identity"]["ok"] is True
    assert checks["account_match"]["ok"] is True


def test_wrong_external_id_fails_assume_role_and_skips_the_rest(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, with_role=False)
    wrong = json.loads(json.dumps(target["trust_policy"]))
    wrong["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] = "somebody-elses-external-id"
    create_target_role(local_aws, wrong)
    report = validate(client, tenant, target["target_id"])
    assume = report["checks"][0]
    assert report["ok"] is False
    assert assume["ok"] is False
    assert assume["code"] == "ACCESS_DENIED"
    assert assume["hint"] == HINT_ASSUME_DENIED
    assert "not authorized to perform: sts:AssumeRole" in assume["detail"]
    for check in report["checks"][1:]:
        assert check["ok"] is False
        assert check["code"] == "SKIPPED"
        assert check["detail"] == "skipped: assume_role failed (ACCESS_DENIED)"
        assert check["hint"] == HINT_ASSUME_DENIED
    assert report["missing_actions"] == []

    # The workflow's failure for the same target says the same thing: one translation table.
    body = {
        "target_id": target["target_id"],
        "region": "us-east-1",
        "stack_name": "s",
        "template_body": QUEUE,
    }
    created = call(client, "POST", "/deployments", tenant, body)
    assert created.status_code == 202, created.body
    done = wait_for(client, tenant, json.loads(created.body)["deployment_id"])
    assert done["status"] == "FAILED"
    assert (done["error"]["code"], done["error"]["hint"]) == (assume["code"], assume["hint"])
    assert stacks_in(local_aws, TARGET_ACCOUNT) == []


def test_missing_role_is_access_denied_as_aws_says(client, tenant, local_aws):
    """AWS answers a missing role exactly as a refusing trust policy; the report does not guess."""
    target = register_target(client, tenant, local_aws, with_role=False)
    report = validate(client, tenant, target["target_id"])
    assume = report["checks"][0]
    assert assume["code"] == "ACCESS_DENIED"
    assert assume["hint"] == HINT_ASSUME_DENIED
    assert "check that it exists" in assume["hint"]
    assert assume["detail"].endswith(
        f"is not authorized to perform: sts:AssumeRole on resource: {target['role_arn']}"
    )
    assert [c["code"] for c in report["checks"][1:]] == ["SKIPPED"] * 4


def test_cloudformation_only_profile_checks_only_its_actions(client, tenant, local_aws):
    body = {
        "name": "small",
        "account_id": TARGET_ACCOUNT,
        "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/{TARGET_ROLE}",
        "regions": ["us-east-1"],
        "permission_profile": "cloudformation-only",
    }
    target = json.loads(call(client, "POST", "/targets", tenant, body).body)
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "cloudformation:*", "Resource": "*"}],
    }
    create_target_role(local_aws, target["trust_policy"], profile=policy_profile(grant))
    report = validate(client, tenant, target["target_id"])
    assert report["permission_profile"] == "cloudformation-only"
    assert report["missing_actions"] == [{"service": "sts", "actions": ["sts:GetCallerIdentity"]}]
    assert checks_of(report)["permissions"]["detail"] == (
        "1 of 18 actions of profile cloudformation-only are refused"
    )


def test_validate_writes_only_the_external_id_check_and_leaks_no_credential(
    client, tenant, local_aws, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from botocore.client import BaseClient

    target = register_target(client, tenant, local_aws, with_role=False)
    bootstrap(client, tenant, local_aws, target)
    issued: list[str] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(self: Any, operation: str, params: Any) -> Any:
        result = original(self, operation, params)
        if operation == "AssumeRole":
            creds = result["Credentials"]
            issued.extend([creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]])
        return result

    table = (
        local_aws.account_session(CENTRAL_ACCOUNT).resource("dynamodb").Table(local_aws.central.table_name)
    )
    before = table.scan()["Items"]
    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    with caplog.at_level(logging.DEBUG):
        response = call(client, "POST", f"/targets/{target['target_id']}/validate", tenant)
    monkeypatch.undo()
    assert response.status_code == 200
    assert json.loads(response.body)["ok"] is True
    assert len(issued) == 3  # one session, with the external ID; the one without it was refused
    after = table.scan()["Items"]
    # The one write: the external-ID check's outcome on the target (it gates deployments).
    written = [item for item in after if item not in before]
    assert [(i["sk"], i["external_id_enforced"]) for i in written] == [
        (f"TARGET#{target['target_id']}", True)
    ]
    assert sorted(map(str, [i for i in after if i not in written])) == sorted(
        map(str, [i for i in before if i["sk"] != f"TARGET#{target['target_id']}"])
    )
    stored = json.dumps(after, default=str)
    # The service's own log records at every level; botocore's DEBUG wire dump is botocore's, not ours.
    ours = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("botocore", "boto3", "urllib3"))
    )
    for text in (response.body.decode(), stored, ours):
        assert not KEY_PATTERN.search(text)
        for secret in issued:
            assert secret not in text
