"""Permission profiles: what a target's deployment role must be allowed to do, as IAM policy documents.

A target names one profile (``permission_profile``, default ``"default"``). The same profile is
what ``GET /permissions`` shows a portal, what ``POST /targets/{id}/validate`` simulates on the role
and what ``GET /targets/{id}/bootstrap-template`` grants, so the three can never disagree.

Profiles are data, shipped beside the code in ``chalicelib/data`` and read when asked (a few KB of
JSON, not at import):

* ``default``: the product guide's "Minimum Required Permissions", copied verbatim (17 statements,
  148 actions), so a portal can show exactly what the guide tells an administrator to paste.
* ``cloudformation-only``: only what the deployer itself calls in a target account
  (``chalicelib/adapters/cloudformation.py``: stacks, change sets, events) plus
  ``sts:GetCallerIdentity``; 14 actions. For a least-privilege deployment role whose stacks'
  resources are created under a CloudFormation service role that the account's administrator grants
  separately (the bootstrap template creates that service role).

Actions are listed as written: a wildcard stays a wildcard, nothing is expanded. One exception, on
purpose: the guide names three CloudFront actions that IAM does not have (``*OriginAccessIdentity``;
IAM's are ``*CloudFrontOriginAccessIdentity``, as cfn-lint's W3037 and IAM Access Analyzer report).
A role granted the guide's names could not create an origin access identity, so ``default`` serves
the real names (``GUIDE_CORRECTIONS``); the data file stays a verbatim copy of the guide's.
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
        "The product guide's Minimum Required Permissions: CloudFormation and every service its stacks use.",
    ),
    "cloudformation-only": (
        "cloudformation-only-permissions.json",
        "Only the deployer's own CloudFormation calls and sts:GetCallerIdentity; stack resources need a "
        "CloudFormation service role granted separately.",
    ),
}
PROFILE_NAMES: tuple[str, ...] = tuple(_PROFILES)

GUIDE_CORRECTIONS: dict[str, str] = {
    "cloudfront:CreateOriginAccessIdentity": "cloudfront:CreateCloudFrontOriginAccessIdentity",
    "cloudfront:DeleteOriginAccessIdentity": "cloudfront:DeleteCloudFrontOriginAccessIdentity",
    "cloudfront:GetOriginAccessIdentity": "cloudfront:GetCloudFrontOriginAccessIdentity",
}

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
        for statement in _as_list(document.get("Statement")):
            statement["Action"] = [GUIDE_CORRECTIONS.get(a, a) for a in _as_list(statement.get("Action"))]
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
