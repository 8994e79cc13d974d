"""The bootstrap template: one CloudFormation stack that sets a target account up exactly as registered.

An administrator of the target account deploys it once (``CAPABILITY_NAMED_IAM``). It creates:

* the deployment role, at the path and name of the target's ``role_arn``, trusting only the
  service's role and only with the target's external ID (the target's own ``trust_policy``, so the
  confused-deputy guard is in the template, not left to the administrator);
* the profile's permissions as customer managed policies, split so that each stays under IAM's
  6,144-character limit, attached to both roles below;
* a CloudFormation service role (trusted by ``cloudformation.amazonaws.com``) with the same
  permissions, which the deployment role may pass to CloudFormation and nothing else;
* on the deployment role, ``iam:SimulatePrincipalPolicy`` on itself, so that
  ``POST /targets/{id}/validate`` can check its permissions without any broader IAM read.

Only resource types the local AWS really creates are used (``AWS::IAM::Role`` and
``AWS::IAM::ManagedPolicy`` with ``Roles``; moto ignores a role's ``ManagedPolicyArns``), so the
same template that passes cfn-lint is proven by deploying it there.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.model import Target
from chalicelib.domain.permissions import PermissionProfile, split_policy

DEPLOYMENT_ROLE = "DeploymentRole"
SERVICE_ROLE = "CloudFormationServiceRole"
CAPABILITIES = ("CAPABILITY_NAMED_IAM",)


def role_path_and_name(role_arn: str) -> tuple[str, str]:
    """``arn:aws:iam::1:role/a/b/Name`` -> ``("/a/b/", "Name")``."""
    resource = role_arn.split(":", 5)[5]
    path_and_name = resource.removeprefix("role")
    path, _, name = path_and_name.rpartition("/")
    return f"{path}/", name


def bootstrap_template(target: Target, profile: PermissionProfile) -> dict[str, Any]:
    path, name = role_path_and_name(target.role_arn)
    documents = split_policy(profile.document)
    resources: dict[str, Any] = {}
    for number, document in enumerate(documents, start=1):
        logical_id = "DeploymentPolicy" if len(documents) == 1 else f"DeploymentPolicy{number}"
        resources[logical_id] = {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": f"NexusAI Deployer permission profile {profile.name} "
                f"(part {number} of {len(documents)})",
                "PolicyDocument": document,
                "Roles": [{"Ref": DEPLOYMENT_ROLE}, {"Ref": SERVICE_ROLE}],
            },
        }
    resources[DEPLOYMENT_ROLE] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": name,
            "Path": path,
            "Description": f"Assumed by NexusAI Deployer for target {target.target_id} ({target.name})",
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": target.trust_policy,
            "Policies": [
                {
                    "PolicyName": "NexusPassCloudFormationServiceRole",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "PassOnlyTheServiceRoleToCloudFormation",
                                "Effect": "Allow",
                                "Action": "iam:PassRole",
                                "Resource": {"Fn::GetAtt": [SERVICE_ROLE, "Arn"]},
                                "Condition": {
                                    "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
                                },
                            }
                        ],
                    },
                },
                {
                    "PolicyName": "NexusSelfCheck",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "SimulateOwnPermissions",
                                "Effect": "Allow",
                                "Action": "iam:SimulatePrincipalPolicy",
                                "Resource": {
                                    "Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{path}{name}"
                                },
                            }
                        ],
                    },
                },
            ],
        },
    }
    resources[SERVICE_ROLE] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Path": path,
            "Description": f"CloudFormation service role for NexusAI Deployer target {target.target_id}",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudformation.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"NexusAI Deployer bootstrap for target {target.target_id} in account "
        f"{target.account_id}: deployment role {target.role_arn} (profile {profile.name}).",
        "Rules": {
            "OnlyInTheTargetAccount": {
                "Assertions": [
                    {
                        "Assert": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, target.account_id]},
                        "AssertDescription": f"Deploy this template in account {target.account_id}.",
                    }
                ]
            }
        },
        "Resources": resources,
        "Outputs": {
            "DeploymentRoleArn": {
                "Description": "Register this ARN as the target's role_arn",
                "Value": {"Fn::GetAtt": [DEPLOYMENT_ROLE, "Arn"]},
            },
            "CloudFormationServiceRoleArn": {
                "Description": "The role CloudFormation may use for this target's stacks",
                "Value": {"Fn::GetAtt": [SERVICE_ROLE, "Arn"]},
            },
        },
    }
