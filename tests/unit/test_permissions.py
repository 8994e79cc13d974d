"""Permission profiles and the bootstrap template, without AWS: counts, grouping, splitting, shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.domain.bootstrap import (
    QUICK_CREATE_MAX_URL,
    bootstrap_template,
    quick_create_body,
    quick_create_link,
    quick_create_template,
    role_path_and_name,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.model import Target, trust_policy_for
from chalicelib.domain.permissions import (
    GUIDE_CORRECTIONS,
    MANAGED_POLICY_MAX_CHARS,
    PROFILE_NAMES,
    PermissionProfile,
    UnknownProfile,
    actions_of,
    group_by_service,
    load_profile,
    policy_chars,
    simulation_principal,
    split_policy,
)

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT.parent / "shared" / "product" / "required-permissions.json"  # the guide, beside the repository
PRINCIPAL = "arn:aws:iam::123456789012:role/NexusDeployerService"


def target(role_arn: str = "arn:aws:iam::111111111111:role/NexusDeploymentRole") -> Target:
    return Target(
        tenant_id="t",
        target_id="tgt-" + "a" * 24,
        name="team-a",
        account_id="111111111111",
        role_arn=role_arn,
        regions=("us-east-1",),
        external_id="nx-external",
        trust_policy=trust_policy_for(PRINCIPAL, "nx-external"),
        created_at="2026-01-01T00:00:00.000Z",
    )


def test_default_profile_is_the_guides_17_statements_and_148_actions_with_the_corrections():
    profile = load_profile()
    assert profile.name == "default"
    assert len(profile.document["Statement"]) == 18  # the guide's 17, then SQSPermissions
    assert len(profile.actions()) == 148 + 17
    assert [s["Sid"] for s in profile.document["Statement"]][:2] == [
        "CloudFormationPermissions",
        "IAMPermissions",
    ]
    assert profile.document["Statement"][-1]["Sid"] == "SQSPermissions"


def test_data_file_is_a_verbatim_copy_and_the_profile_is_the_guide_plus_the_listed_corrections():
    shipped = (ROOT / "chalicelib/data/required-permissions.json").read_text()
    assert shipped == GUIDE.read_text()
    guide_actions = actions_of(json.loads(shipped))
    served = load_profile().actions()
    renamed = {
        old: new
        for c in GUIDE_CORRECTIONS
        if c.replaces
        for old, new in zip(c.replaces, c.actions, strict=True)
    }
    added = [a for c in GUIDE_CORRECTIONS for a in c.actions if a not in renamed.values()]
    assert renamed == {
        "cloudfront:CreateOriginAccessIdentity": "cloudfront:CreateCloudFrontOriginAccessIdentity",
        "cloudfront:DeleteOriginAccessIdentity": "cloudfront:DeleteCloudFrontOriginAccessIdentity",
        "cloudfront:GetOriginAccessIdentity": "cloudfront:GetCloudFrontOriginAccessIdentity",
    }
    assert sorted(served) == sorted([renamed.get(a, a) for a in guide_actions] + added)
    assert all(c.reason for c in GUIDE_CORRECTIONS)


def test_every_profile_loads_and_is_small_enough_for_iam():
    for name in PROFILE_NAMES:
        profile = load_profile(name)
        assert profile.actions()
        assert all(":" in a for a in profile.actions())
    assert len(load_profile("cloudformation-only").actions()) == 18
    with pytest.raises(UnknownProfile):
        load_profile("root")


def test_policy_is_a_copy():
    profile = load_profile()
    profile.policy()["Statement"].clear()
    assert len(profile.document["Statement"]) == 18


def test_actions_keep_wildcards_and_skip_denies():
    document = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"},
            {"Effect": "Allow", "Action": ["s3:Get*", "EC2:Describe*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
        ]
    }
    assert actions_of(document) == ["s3:Get*", "EC2:Describe*"]
    assert group_by_service(actions_of(document)) == [
        {"service": "s3", "actions": ["s3:Get*"]},
        {"service": "ec2", "actions": ["EC2:Describe*"]},
    ]


def test_default_profile_grouped_by_service():
    groups = load_profile().by_service()
    assert [g["service"] for g in groups][:3] == ["cloudformation", "iam", "ec2"]
    assert len(groups) == 18
    assert sum(len(g["actions"]) for g in groups) == 165


def test_split_keeps_every_statement_under_the_limit_and_grants_the_same():
    profile = load_profile()
    assert policy_chars(profile.document) <= MANAGED_POLICY_MAX_CHARS
    assert split_policy(profile.document) == [profile.document]
    for limit in (3000, 1500, 700):
        parts = split_policy(profile.document, limit)
        assert len(parts) > 1
        assert all(policy_chars(p) <= limit for p in parts)
        assert sorted(a for p in parts for a in actions_of(p)) == sorted(profile.actions())
    sids = [s["Sid"] for p in split_policy(profile.document, 700) for s in p["Statement"]]
    assert "VPCPermissions1" in sids
    assert "VPCPermissions2" in sids


def test_large_profile_becomes_several_managed_policies():
    big = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"S{i}",
                "Effect": "Allow",
                "Action": [f"svc{i}:Action{j:03d}" for j in range(60)],
                "Resource": "*",
            }
            for i in range(6)
        ],
    }
    template = bootstrap_template(target(), PermissionProfile("big", "test", big))
    policies = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::ManagedPolicy"}
    assert len(policies) >= 2
    assert all(
        policy_chars(p["Properties"]["PolicyDocument"]) <= MANAGED_POLICY_MAX_CHARS for p in policies.values()
    )
    granted = [a for p in policies.values() for a in actions_of(p["Properties"]["PolicyDocument"])]
    assert sorted(granted) == sorted(actions_of(big))


def test_role_path_and_name():
    assert role_path_and_name("arn:aws:iam::111111111111:role/NexusDeploymentRole") == (
        "/",
        "NexusDeploymentRole",
    )
    assert role_path_and_name("arn:aws-cn:iam::111111111111:role/a/b/R") == ("/a/b/", "R")


def test_bootstrap_template_shape():
    t = target("arn:aws:iam::111111111111:role/deploy/NexusDeploymentRole")
    template = bootstrap_template(t, load_profile())
    resources = template["Resources"]
    role = resources["DeploymentRole"]["Properties"]
    assert (role["Path"], role["RoleName"]) == ("/deploy/", "NexusDeploymentRole")
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": PRINCIPAL},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "nx-external"}},
        }
    ]
    policy = resources["DeploymentPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "DeploymentRole"}, {"Ref": "CloudFormationServiceRole"}]
    assert len(actions_of(policy["PolicyDocument"])) == 165
    passing = role["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert passing["Action"] == "iam:PassRole"
    assert passing["Resource"] == {"Fn::GetAtt": ["CloudFormationServiceRole", "Arn"]}
    service = resources["CloudFormationServiceRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert service[0]["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    assert set(template["Outputs"]) == {"DeploymentRoleArn", "CloudFormationServiceRoleArn"}
    assert len(json.dumps(template)) < 51_200  # fits CloudFormation's TemplateBody


def test_quick_create_link_refuses_a_url_over_1024_characters():
    fits = quick_create_link(target(), "https://b.s3.us-east-1.amazonaws.com/bootstrap/x.json")
    assert len(fits.url) <= QUICK_CREATE_MAX_URL
    room = QUICK_CREATE_MAX_URL - len(fits.url) + 1  # "x" * room replaces the one "x" above
    longest = quick_create_link(
        target(), "https://b.s3.us-east-1.amazonaws.com/bootstrap/" + "x" * room + ".json"
    )
    assert len(longest.url) == QUICK_CREATE_MAX_URL
    with pytest.raises(Conflict) as refused:
        quick_create_link(
            target(), "https://b.s3.us-east-1.amazonaws.com/bootstrap/" + "x" * (room + 1) + ".json"
        )
    assert refused.value.code == "QUICK_CREATE_URL_TOO_LONG"
    assert "nexus targets bootstrap" in refused.value.hint


def test_quick_create_object_is_named_by_its_content():
    template = quick_create_template(target(), load_profile())
    body, key = quick_create_body(template)
    assert quick_create_body(json.loads(body)) == (body, key)
    other = quick_create_template(target("arn:aws:iam::111111111111:role/Other"), load_profile())
    assert quick_create_body(other)[1] != key


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("arn:aws:iam::111111111111:user/ops/alice", ("arn:aws:iam::111111111111:user/ops/alice", None)),
        (
            "arn:aws-us-gov:sts::111111111111:assumed-role/AdfsAdmin/alice@corp",
            ("arn:aws-us-gov:iam::111111111111:role/AdfsAdmin", "AdfsAdmin"),
        ),
        ("arn:aws:iam::111111111111:root", None),
        ("arn:aws:sts::111111111111:federated-user/bob", None),
        ("not an arn", None),
    ],
)
def test_simulation_principal_of_a_caller(caller, expected):
    found = simulation_principal(caller)
    assert (None if found is None else (found.arn, found.role_name)) == expected
