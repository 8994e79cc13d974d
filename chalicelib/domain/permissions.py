"""Permission profiles: what a target's deployment role must be allowed to do, as IAM policy documents.

A target names one profile (``permission_profile``, default ``"default"``). The same profile is
what ``GET /permissions`` shows a portal, what ``POST /targets/{id}/validate`` simulates on the role
and what ``GET /targets/{id}/bootstrap-template`` grants, so the three can never disagree.

Profiles are data, shipped beside the code in ``chalicelib/data`` and read when asked (a few KB of
JSON, not at import):

* ``default``: the product guide's "Minimum Required Permissions" (17 statements, 148 actions, the data
  file a verbatim copy, so a portal can show exactly what the guide tells an administrator to paste),
  served with ``GUIDE_CORRECTIONS``: the additions without which a role granted exactly the guide's
  policy fails on AWS (each with its reason).
* ``cloudformation-only``: only what the deployer itself calls in a target account
  (``chalicelib/adapters/cloudformation.py`` and ``drift.py``: stacks, change sets, events, cancel,
  continue-rollback, drift) plus ``sts:GetCallerIdentity``; 18 actions. For a least-privilege deployment
  role whose stacks' resources are created under a CloudFormation service role that the account's
  administrator grants separately (the bootstrap template creates that service role).

Both cover every action the deployer calls in a target account (``tests/workflow/test_profile_coverage.py``
records the calls and fails when a profile lacks one), except ``iam:SimulatePrincipalPolicy`` on the role
itself, which the bootstrap template grants the deployment role beside the profile.

Actions are listed as written: a wildcard stays a wildcard, nothing is expanded.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

DEFAULT_PROFILE = "default"

# name -> (data file, one-line description)
_PROFILES: dict[str, tuple[str, str]] = {
    "default": (
        "required-permissions.json",
        "The product guide's Minimum Required Permissions: CloudFormation and every service its stacks use, "
        "with the additions a role needs on AWS (GUIDE_CORRECTIONS).",
    ),
    "cloudformation-only": (
        "cloudformation-only-permissions.json",
        "Only the deployer's own CloudFormation calls and sts:GetCallerIdentity; stack resources need a "
        "CloudFormation service role granted separately.",
    ),
}
PROFILE_NAMES: tuple[str, ...] = tuple(_PROFILES)


@dataclass(frozen=True)
class GuideCorrection:
    """One addition to the guide's policy that the ``default`` profile serves, and why it is needed."""

    sid: str  # the guide's statement it adds to, or a new statement of its own
    actions: tuple[str, ...]
    reason: str
    replaces: tuple[str, ...] = ()  # guide actions that IAM does not have, served as ``actions`` instead


GUIDE_CORRECTIONS: tuple[GuideCorrection, ...] = (
    GuideCorrection(
        "CloudFrontPermissions",
        (
            "cloudfront:CreateCloudFrontOriginAccessIdentity",
            "cloudfront:DeleteCloudFrontOriginAccessIdentity",
            "cloudfront:GetCloudFrontOriginAccessIdentity",
        ),
        "IAM has no cloudfront:*OriginAccessIdentity actions (cfn-lint W3037, IAM Access Analyzer): a role "
        "granted the guide's names cannot create an origin access identity",
        replaces=(
            "cloudfront:CreateOriginAccessIdentity",
            "cloudfront:DeleteOriginAccessIdentity",
            "cloudfront:GetOriginAccessIdentity",
        ),
    ),
    GuideCorrection(
        "CloudFormationPermissions",
        (
            "cloudformation:CreateChangeSet",
            "cloudformation:DescribeChangeSet",
            "cloudformation:ExecuteChangeSet",
            "cloudformation:DeleteChangeSet",
        ),
        "every update and every plan goes through a change set",
    ),
    GuideCorrection(
        "CloudFormationPermissions",
        (
            "cloudformation:CancelUpdateStack",
            "cloudformation:ContinueUpdateRollback",
            "cloudformation:DetectStackDrift",
            "cloudformation:DescribeStackDriftDetectionStatus",
        ),
        "POST /deployments/{id}/cancel and /continue-rollback, and the drift schedule, call them",
    ),
    GuideCorrection(
        "SQSPermissions",
        (
            "sqs:CreateQueue",
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
            "sqs:SetQueueAttributes",
            "sqs:ListQueueTags",
            "sqs:TagQueue",
            "sqs:UntagQueue",
            "sqs:DeleteQueue",
        ),
        "the guide grants no SQS action, yet the example and demo stacks create queues: these are the "
        "permissions of AWS::SQS::Queue's create, update and delete handlers (CloudFormation's resource "
        "provider schema), with which CloudFormation creates a queue for the caller",
    ),
    GuideCorrection(
        "S3Permissions",
        ("s3:GetObjectVersion",),
        "CloudFormation reads a template_url template over 51,200 bytes itself, with the deployment role's "
        "permissions, at the version the service checked (TemplateURL with versionId): S3 authorizes a "
        "versioned read as s3:GetObjectVersion, which the guide does not grant",
    ),
)


def _corrected(document: dict[str, Any]) -> dict[str, Any]:
    """The guide's document with ``GUIDE_CORRECTIONS`` applied (replacements in place, additions after)."""
    statements = _as_list(document.get("Statement"))
    by_sid = {statement.get("Sid"): statement for statement in statements if isinstance(statement, dict)}
    for correction in GUIDE_CORRECTIONS:
        statement = by_sid.get(correction.sid)
        if statement is None:
            statement = {"Sid": correction.sid, "Effect": "Allow", "Action": [], "Resource": "*"}
            statements.append(statement)
            by_sid[correction.sid] = statement
        actions = [str(a) for a in _as_list(statement.get("Action"))]
        renames = (
            dict(zip(correction.replaces, correction.actions, strict=True)) if correction.replaces else {}
        )
        actions = [renames.get(a, a) for a in actions]
        actions += [a for a in correction.actions if a not in actions]
        statement["Action"] = actions
    document["Statement"] = statements
    return document


# IAM counts a managed policy's size without whitespace; AWS refuses more than 6,144 characters.
MANAGED_POLICY_MAX_CHARS = 6144


class UnknownProfile(ValueError):
    """Raised for a profile name that is not in PROFILE_NAMES (request validation catches it first)."""


@dataclass(frozen=True)
class PermissionProfile:
    name: str
    description: str
    document: dict[str, Any]

    def policy(self) -> dict[str, Any]:
        """A copy of the policy document, safe for a caller to change."""
        return copy.deepcopy(self.document)

    def actions(self) -> list[str]:
        return actions_of(self.document)

    def by_service(self) -> list[dict[str, Any]]:
        return group_by_service(self.actions())


def check_profile_name(name: str) -> str:
    if name not in _PROFILES:
        raise UnknownProfile(f"unknown permission profile {name!r}; known: {', '.join(PROFILE_NAMES)}")
    return name


def load_profile(name: str = DEFAULT_PROFILE) -> PermissionProfile:
    file_name, description = _PROFILES[check_profile_name(name)]
    text = resources.files("chalicelib").joinpath("data", file_name).read_text(encoding="utf-8")
    document = json.loads(text)
    if name == DEFAULT_PROFILE:
        document = _corrected(document)
    return PermissionProfile(name, description, document)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def actions_of(document: dict[str, Any]) -> list[str]:
    """Every action the document's Allow statements grant, in order, once each, as written."""
    seen: dict[str, None] = {}
    for statement in _as_list(document.get("Statement")):
        if isinstance(statement, dict) and statement.get("Effect") == "Allow":
            for action in _as_list(statement.get("Action")):
                seen.setdefault(str(action), None)
    return list(seen)


def service_of(action: str) -> str:
    return action.split(":", 1)[0].lower()


_CALLER = re.compile(r"arn:(aws[\w-]*):(sts|iam)::(\d{12}):(.+)")


@dataclass(frozen=True)
class SimulationPrincipal:
    """What ``iam:SimulatePrincipalPolicy`` can be asked about for a caller (GetCallerIdentity's ARN)."""

    arn: str  # an IAM user's own ARN, or the role's ARN without its path (the caller ARN omits it)
    role_name: str | None = None  # set for an assumed-role session: whoever can read IAM may find the path


def simulation_principal(caller_arn: str) -> SimulationPrincipal | None:
    """The IAM user, or the role behind an assumed-role session; None for the root user and federated
    users, which have no IAM entity to simulate."""
    match = _CALLER.fullmatch(caller_arn)
    if not match:
        return None
    partition, service, account, resource = match.groups()
    if service == "iam":
        return SimulationPrincipal(caller_arn) if resource.startswith("user/") else None
    kind, _, rest = resource.partition("/")
    if kind != "assumed-role":
        return None
    name = rest.split("/")[0]
    return SimulationPrincipal(f"arn:{partition}:iam::{account}:role/{name}", name)


def group_by_service(actions: list[str]) -> list[dict[str, Any]]:
    """``[{"service": "ec2", "actions": ["ec2:CreateVpc", ...]}, ...]`` in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for action in actions:
        groups.setdefault(service_of(action), []).append(action)
    return [{"service": service, "actions": names} for service, names in groups.items()]


def policy_chars(document: dict[str, Any]) -> int:
    """The size IAM measures: the JSON without whitespace."""
    return len(json.dumps(document, separators=(",", ":")))


def split_policy(document: dict[str, Any], limit: int = MANAGED_POLICY_MAX_CHARS) -> list[dict[str, Any]]:
    """The document's statements packed, in order, into as few documents of at most ``limit`` chars as fit.

    A statement too large on its own is cut into several with the same Effect, Resource and
    Condition and a numbered Sid. The union of the results grants exactly what the input grants.
    """
    version = document.get("Version", "2012-10-17")

    def wrap(statements: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Version": version, "Statement": statements}

    pieces: list[dict[str, Any]] = []
    for statement in _as_list(document.get("Statement")):
        if policy_chars(wrap([statement])) <= limit:
            pieces.append(statement)
        else:
            pieces.extend(_cut(statement, lambda s: policy_chars(wrap([s])) <= limit))
    documents: list[list[dict[str, Any]]] = []
    for piece in pieces:
        if documents and policy_chars(wrap([*documents[-1], piece])) <= limit:
            documents[-1].append(piece)
        else:
            documents.append([piece])
    return [wrap(statements) for statements in documents]


def _cut(statement: dict[str, Any], fits: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    actions = [str(a) for a in _as_list(statement.get("Action"))]
    if len(actions) < 2:
        raise ValueError(f"statement {statement.get('Sid', '?')} cannot fit a managed policy")
    parts: list[dict[str, Any]] = []
    current: list[str] = []
    base = {k: v for k, v in statement.items() if k != "Action"}
    for action in actions:
        trial = {**base, "Action": [*current, action]}
        if current and not fits(trial):
            parts.append({**base, "Action": current})
            current = [action]
        else:
            current.append(action)
    parts.append({**base, "Action": current})
    sid = statement.get("Sid")
    if sid:
        for number, part in enumerate(parts, start=1):
            part["Sid"] = f"{sid}{number}"
    return parts
