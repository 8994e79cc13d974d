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
  ``POST /targets/{id}/validate`` can check its permissions without any broader IAM read;
* when the service gives its event bus, a rule that forwards CloudFormation's "Stack Status Change"
  events of the deployer's own operations (ClientRequestToken ``nexus-...``) from this account's
  default bus to the service's, through a role EventBridge assumes that may only PutEvents there.
  Those events end the workflow's waits (chalicelib/service/completion.py). EventBridge rules are
  regional: the stack forwards the events of the region it is deployed in, and
  ``region_forwarding_template`` (the rule alone, reusing this stack's forwarder role) covers each
  other region of the target; ``nexus targets bootstrap`` deploys both. In a region without the rule
  the workflow still finishes, by its wait's timeout and one reconcile, after which operations in
  that region poll for an hour (``WorkflowService._completion_for``).

``quick_create_template`` is the same stack for CloudFormation's quick-create link, which opens the
AWS console's "Create stack" page with the template and its parameter values filled in: there, the
trust policy's principal and external ID are ``Parameters`` without defaults (a link can pass only
parameters, and only those that are not NoEcho), and ``quick_create_link`` builds the link that
passes them as ``param_`` values.

Only resource types the local AWS really creates are used (``AWS::IAM::Role``,
``AWS::IAM::ManagedPolicy`` with ``Roles``, as moto ignores a role's ``ManagedPolicyArns``, and
``AWS::Events::Rule``), so the
same template that passes cfn-lint is proven by deploying it there.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from chalicelib.domain.errors import Conflict
from chalicelib.domain.model import REQUEST_TOKEN_PREFIX, Target
from chalicelib.domain.permissions import PermissionProfile, split_policy

DEPLOYMENT_ROLE = "DeploymentRole"
SERVICE_ROLE = "CloudFormationServiceRole"
FORWARDER_ROLE = "StackEventsForwarderRole"
FORWARDING_RULE = "StackStatusForwarding"
FORWARDER_OUTPUT = "StackEventsForwarderRoleArn"
FORWARDER_ROLE_PARAMETER = "ForwarderRoleArn"
CAPABILITIES = ("CAPABILITY_NAMED_IAM",)
# CloudFormation's events of the deployer's own operations: the forwarding rule's pattern here, and the
# pattern of the central StackStatusChanged handler (app.py).
STACK_STATUS_PATTERN: dict[str, Any] = {
    "source": ["aws.cloudformation"],
    "detail-type": ["CloudFormation Stack Status Change"],
    "detail": {"client-request-token": [{"prefix": REQUEST_TOKEN_PREFIX}]},
}


def stack_events_forwarding(event_bus_arn: str) -> dict[str, Any]:
    """The rule (and its role) that forwards this account's stack events of ours to ``event_bus_arn``."""
    return {
        FORWARDER_ROLE: {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "EventBridge forwards NexusAI Deployer's stack events to the service's bus",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "PutEventsOnTheServiceBus",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {"Effect": "Allow", "Action": "events:PutEvents", "Resource": event_bus_arn}
                            ],
                        },
                    }
                ],
            },
        },
        FORWARDING_RULE: _forwarding_rule(event_bus_arn, {"Fn::GetAtt": [FORWARDER_ROLE, "Arn"]}),
    }


def _forwarding_rule(event_bus_arn: str, role_arn: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": "NexusAI Deployer: stack status changes of its operations, to the service",
            "EventPattern": STACK_STATUS_PATTERN,
            "State": "ENABLED",
            "Targets": [{"Id": "NexusDeployerBus", "Arn": event_bus_arn, "RoleArn": role_arn}],
        },
    }


def region_forwarding_template(target: Target, event_bus_arn: str) -> dict[str, Any]:
    """The forwarding rule alone, for each of the target's regions but the bootstrap stack's own.

    EventBridge rules are regional and IAM roles are global: this stack reuses the bootstrap stack's
    forwarder role (its ``StackEventsForwarderRoleArn`` output) and adds the rule in its region, which
    sends that region's stack events of ours to the service's bus (a cross-region target).
    """
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"NexusAI Deployer: forward this region's stack events of target {target.target_id} "
        "to the service (completion without polling).",
        "Parameters": {
            FORWARDER_ROLE_PARAMETER: {
                "Type": "String",
                "Description": "The bootstrap stack's StackEventsForwarderRoleArn output",
                "AllowedPattern": r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
            }
        },
        "Rules": _only_in(target),
        "Resources": {FORWARDING_RULE: _forwarding_rule(event_bus_arn, {"Ref": FORWARDER_ROLE_PARAMETER})},
    }


def _only_in(target: Target) -> dict[str, Any]:
    return {
        "OnlyInTheTargetAccount": {
            "Assertions": [
                {
                    "Assert": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, target.account_id]},
                    "AssertDescription": f"Deploy this template in account {target.account_id}.",
                }
            ]
        }
    }


def role_path_and_name(role_arn: str) -> tuple[str, str]:
    """``arn:aws:iam::1:role/a/b/Name`` -> ``("/a/b/", "Name")``."""
    resource = role_arn.split(":", 5)[5]
    path_and_name = resource.removeprefix("role")
    path, _, name = path_and_name.rpartition("/")
    return f"{path}/", name


def bootstrap_template(
    target: Target, profile: PermissionProfile, event_bus_arn: str | None = None
) -> dict[str, Any]:
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
    outputs: dict[str, Any] = {
        "DeploymentRoleArn": {
            "Description": "Register this ARN as the target's role_arn",
            "Value": {"Fn::GetAtt": [DEPLOYMENT_ROLE, "Arn"]},
        },
        "CloudFormationServiceRoleArn": {
            "Description": "The role CloudFormation may use for this target's stacks",
            "Value": {"Fn::GetAtt": [SERVICE_ROLE, "Arn"]},
        },
    }
    if event_bus_arn:
        resources.update(stack_events_forwarding(event_bus_arn))
        outputs[FORWARDER_OUTPUT] = {
            "Description": "The role of the forwarding rule; the other regions' forwarding stacks use it",
            "Value": {"Fn::GetAtt": [FORWARDER_ROLE, "Arn"]},
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"NexusAI Deployer bootstrap for target {target.target_id} in account "
        f"{target.account_id}: deployment role {target.role_arn} (profile {profile.name}).",
        "Rules": _only_in(target),
        "Resources": resources,
        "Outputs": outputs,
    }


# -- CloudFormation's quick-create link ----------------------------------------------------------------

EXTERNAL_ID_PARAMETER = "ExternalId"
SERVICE_ROLE_PARAMETER = "ServiceRoleArn"
QUICK_CREATE_MAX_URL = 1024  # what CloudFormation's console accepts
QUICK_CREATE_KEY_PREFIX = "bootstrap/"
# The bootstrap stack's name wherever it is deployed: quick-create, nexus targets bootstrap, the console.
BOOTSTRAP_STACK = "nexus-deployer-bootstrap"


def quick_create_template(
    target: Target, profile: PermissionProfile, event_bus_arn: str | None = None
) -> dict[str, Any]:
    """``bootstrap_template`` whose trust policy takes the service's role and the external ID as
    Parameters: the quick-create link passes them, so the object in S3 holds neither value."""
    template = bootstrap_template(target, profile, event_bus_arn)
    trust = json.loads(json.dumps(target.trust_policy))
    statement = trust["Statement"][0]
    statement["Principal"]["AWS"] = {"Ref": SERVICE_ROLE_PARAMETER}
    statement["Condition"]["StringEquals"]["sts:ExternalId"] = {"Ref": EXTERNAL_ID_PARAMETER}
    template["Resources"][DEPLOYMENT_ROLE]["Properties"]["AssumeRolePolicyDocument"] = trust
    parameters = {
        EXTERNAL_ID_PARAMETER: {
            "Type": "String",
            "Description": "The external ID NexusAI Deployer generated for this target (not a secret); "
            "the deployment role refuses AssumeRole without it",
            "AllowedPattern": r"^[\w+=,.@:/-]{2,1224}$",
            "ConstraintDescription": "2 to 1224 letters, digits or +=,.@:/-_",
        },
        SERVICE_ROLE_PARAMETER: {
            "Type": "String",
            "Description": "NexusAI Deployer's service role: the only principal the deployment role trusts",
            "AllowedPattern": r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$",
            "ConstraintDescription": "an IAM role ARN",
        },
    }
    interface = {
        "ParameterGroups": [
            {
                "Label": {"default": "Filled in by NexusAI Deployer's link: leave them as they are"},
                "Parameters": [EXTERNAL_ID_PARAMETER, SERVICE_ROLE_PARAMETER],
            }
        ],
        "ParameterLabels": {
            EXTERNAL_ID_PARAMETER: {"default": "External ID"},
            SERVICE_ROLE_PARAMETER: {"default": "NexusAI Deployer service role"},
        },
    }
    ordered = {
        "AWSTemplateFormatVersion": template.pop("AWSTemplateFormatVersion"),
        "Description": template.pop("Description"),
        "Metadata": {"AWS::CloudFormation::Interface": interface},
        "Parameters": parameters,
    }
    return {**ordered, **template}


def quick_create_body(template: dict[str, Any]) -> tuple[str, str]:
    """The object's text and its key: named by its content's SHA-256, so writing it again is a no-op,
    a changed target or profile gets a new object, and the key cannot be guessed (it covers the
    target's random id)."""
    body = json.dumps(template, indent=2)
    digest = hashlib.sha256(body.encode()).hexdigest()
    return body, f"{QUICK_CREATE_KEY_PREFIX}{digest}.json"


@dataclass(frozen=True)
class QuickCreateLink:
    url: str
    template_url: str
    region: str
    stack_name: str
    parameters: dict[str, str]

    def public(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "template_url": self.template_url,
            "region": self.region,
            "stack_name": self.stack_name,
            "parameters": dict(self.parameters),
        }


def quick_create_link(target: Target, template_url: str) -> QuickCreateLink:
    """The AWS console's "Create stack" page in the target's first region (where ``nexus targets
    bootstrap`` puts the stack), with the template and both parameters filled in."""
    region = target.regions[0]
    statement = target.trust_policy["Statement"][0]
    parameters = {
        EXTERNAL_ID_PARAMETER: target.external_id,
        SERVICE_ROLE_PARAMETER: str(statement["Principal"]["AWS"]),
    }
    fragment = urlencode(
        {
            "templateURL": template_url,
            "stackName": BOOTSTRAP_STACK,
            **{f"param_{name}": value for name, value in parameters.items()},
        },
        quote_via=quote,
        safe="",
    )
    url = (
        f"https://{region}.console.aws.amazon.com/cloudformation/home?region={region}"
        f"#/stacks/create/review?{fragment}"
    )
    if len(url) > QUICK_CREATE_MAX_URL:
        raise Conflict(
            f"The quick-create link would be {len(url)} characters; CloudFormation's console takes "
            f"at most {QUICK_CREATE_MAX_URL}.",
            code="QUICK_CREATE_URL_TOO_LONG",
            hint=f"Deploy the bootstrap template with `nexus targets bootstrap {target.target_id}`, "
            "or download it and create the stack in the AWS console.",
        )
    return QuickCreateLink(url, template_url, region, BOOTSTRAP_STACK, parameters)
