"""The one IAM policy evaluator of the local AWS: trust policies and identity policies.

Why this exists: moto evaluates no trust policy and no identity policy of a role from another account,
and the deployer's security model (an external ID in the trust policy, a least-privilege deployment
role) is only proven when the local AWS refuses what AWS refuses. STS (``AssumeRole``), SAML
(``AssumeRoleWithSAML``) and IAM (``SimulatePrincipalPolicy``/``SimulateCustomPolicy``) all decide through
the functions here, so a simulation and a real call can never disagree.

What is evaluated, as IAM does:

* element matching: ``Action``/``NotAction`` (IAM wildcards ``*``/``?``, case-insensitive),
  ``Resource``/``NotResource`` (wildcards, case-sensitive), ``Principal``/``NotPrincipal`` (``*``, account
  ids, ``arn:aws:iam::<account>:root``, user, role and ``sts`` session ARNs, ``Federated``);
* ``Condition``: ``String*``, ``Arn*``, ``Bool``, ``Null`` and their ``...IfExists`` forms, all keys and
  operators ANDed; a condition that cannot be evaluated here never allows, and (failing closed) a Deny
  with one still denies;
* decisions: an explicit ``Deny`` wins (``explicitDeny``), else an ``Allow`` (``allowed``), else
  ``implicitDeny``; a permissions boundary must also allow.

Not modelled: resource-based policies other than trust policies, SCPs, session policies, policy
variables (``${aws:username}``), ``ForAnyValue:``/``ForAllValues:`` and multi-valued context keys.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

__all__ = [
    "Caller",
    "Evaluation",
    "PolicySource",
    "as_list",
    "conditions_match",
    "evaluate",
    "federated_trust_allows",
    "load_policy",
    "service_trust_allows",
    "trust_policy_allows",
    "wildcard",
]

ACCOUNT_RE = re.compile(r"\d{12}", re.ASCII)
ARN_RE = re.compile(r"arn:([^:]+):([^:]+):[^:]*:(\d{12}):(.+)")


@dataclass(frozen=True)
class Caller:
    """Who signed the request, as STS ``GetCallerIdentity`` would answer, plus what conditions need."""

    user_id: str
    arn: str
    account: str
    kind: str  # "user", "assumed-role", "federated-user", "root" or "unknown"
    name: str  # user name, role name (for assumed-role), or ""
    temporary: bool
    mfa: bool
    role_arn: str | None = None  # for assumed-role callers: the IAM role ARN

    @property
    def principal_arn(self) -> str:
        """``aws:PrincipalArn``: the role ARN for a role session, else the caller ARN."""
        return self.role_arn or self.arn


# ------------------------------------------------------------------------------------------ elements
@functools.lru_cache(maxsize=4096)  # policy evaluation compiles the same few patterns thousands of times
def wildcard(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM wildcard (``*`` any run, ``?`` one character) as a regex for ``fullmatch``."""
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def as_list(value: object) -> list[Any]:
    """A policy element that may be a single value or a list, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def load_policy(document: object) -> dict[str, Any] | None:
    """A policy document as a dict, whether moto stored it as a dict, JSON or URL-encoded JSON."""
    if isinstance(document, Mapping):
        return dict(document)
    if not isinstance(document, str):
        return None
    for text in (document, unquote(document)):
        try:
            loaded = json.loads(text)
        except ValueError:
            continue
        if isinstance(loaded, dict):
            return loaded
    return None


def _statements(document: object) -> list[Mapping[str, Any]]:
    policy = load_policy(document)
    if policy is None:
        return []
    return [s for s in as_list(policy.get("Statement")) if isinstance(s, Mapping)]


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(wildcard(str(p), ignore_case=True).fullmatch(action) for p in as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(
            wildcard(str(p), ignore_case=True).fullmatch(action) for p in as_list(statement["NotAction"])
        )
    return False


def _resource_matches(statement: Mapping[str, Any], resource: str, any_resource: bool = True) -> bool:
    """With ``any_resource``, ``resource == "*"`` asks "on some resource": any ``Resource`` element
    matches it. Without, ``*`` is the resource itself (an action AWS authorizes only on ``*``)."""
    if "Resource" in statement:
        patterns = [str(p) for p in as_list(statement["Resource"])]
        if resource == "*" and any_resource:
            return True
        return any(wildcard(p).fullmatch(resource) for p in patterns)
    if "NotResource" in statement:
        patterns = [str(p) for p in as_list(statement["NotResource"])]
        if resource == "*" and any_resource:
            return "*" not in patterns
        return not any(wildcard(p).fullmatch(resource) for p in patterns)
    return False


def _principal_value_matches(value: str, caller: Caller) -> bool:
    if value == "*":
        return True
    if ACCOUNT_RE.fullmatch(value):
        return value == caller.account
    match = ARN_RE.fullmatch(value)
    if not match or match.group(3) != caller.account:
        return False
    service, resource = match.group(2), match.group(4)
    if service == "sts":
        return value == caller.arn
    if service != "iam":
        return False
    if resource == "root":
        return True
    kind, _, rest = resource.partition("/")
    name = rest.rsplit("/", 1)[-1]
    if kind == "user":
        return caller.kind == "user" and caller.name == name
    if kind == "role":
        return caller.kind == "assumed-role" and caller.name == name
    return False


def _principal_matches(principal: object, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    return any(_principal_value_matches(str(value), caller) for value in as_list(principal.get("AWS")))


def _named_principal_matches(principal: object, kind: str, name: str) -> bool:
    """``principal`` names ``name`` under ``kind`` (``Federated``, ``Service``), or is ``*``."""
    if principal == "*":
        return True
    named = as_list(principal.get(kind)) if isinstance(principal, Mapping) else []
    return name in [str(n) for n in named]


# ---------------------------------------------------------------------------------------- conditions
def _cond_str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_NEGATED_OPERATORS = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
}


def _condition_matches(operator: str, key: str, expected: object, context: Mapping[str, str]) -> bool | None:
    """One condition key: True/False, or None when the operator is not supported here."""
    values = [_cond_str(v) for v in as_list(expected)]
    actual = context.get(key.lower())
    if operator == "Null":
        return any((actual is None) == (v.lower() == "true") for v in values)
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if ":" in base:
        return None  # ForAnyValue:/ForAllValues: set operators
    if actual is None:
        return True if if_exists else base in _NEGATED_OPERATORS
    tests: dict[str, Callable[[], bool]] = {
        "StringEquals": lambda: actual in values,
        "StringNotEquals": lambda: actual not in values,
        "StringEqualsIgnoreCase": lambda: actual.lower() in (v.lower() for v in values),
        "StringNotEqualsIgnoreCase": lambda: actual.lower() not in (v.lower() for v in values),
        "StringLike": lambda: any(wildcard(v).fullmatch(actual) for v in values),
        "StringNotLike": lambda: not any(wildcard(v).fullmatch(actual) for v in values),
        "ArnEquals": lambda: any(wildcard(v).fullmatch(actual) for v in values),
        "ArnLike": lambda: any(wildcard(v).fullmatch(actual) for v in values),
        "ArnNotEquals": lambda: not any(wildcard(v).fullmatch(actual) for v in values),
        "ArnNotLike": lambda: not any(wildcard(v).fullmatch(actual) for v in values),
        "Bool": lambda: actual.lower() in (v.lower() for v in values),
    }
    test = tests.get(base)
    return None if test is None else test()


def conditions_match(block: object, context: Mapping[str, str]) -> bool | None:
    """All operators and keys must match (AND); None when something is not supported."""
    if not block:
        return True
    if not isinstance(block, Mapping):
        return None
    result: bool | None = True
    for operator, keys in block.items():
        if not isinstance(keys, Mapping):
            return None
        for key, expected in keys.items():
            outcome = _condition_matches(str(operator), str(key), expected, context)
            if outcome is False:
                return False
            if outcome is None:
                result = None
    return result


def _condition_keys(block: object) -> list[str]:
    """The keys a condition block needs from the request (``...IfExists`` and ``Null`` need none)."""
    if not isinstance(block, Mapping):
        return []
    keys: list[str] = []
    for operator, entries in block.items():
        if isinstance(entries, Mapping) and not str(operator).endswith("IfExists") and operator != "Null":
            keys.extend(str(key) for key in entries)
    return keys


# ------------------------------------------------------------------------------------ trust policies
def _trust_decision(
    document: object,
    principal_ok: Callable[[Mapping[str, Any]], bool],
    action: str,
    context: Mapping[str, str],
) -> bool:
    allowed = False
    for statement in _statements(document):
        if not principal_ok(statement) or not _action_matches(statement, action):
            continue
        conditions = conditions_match(statement.get("Condition"), context)
        effect = statement.get("Effect")
        if effect == "Deny" and conditions is not False:
            return False
        if effect == "Allow" and conditions is True:
            allowed = True
    return allowed


def trust_policy_allows(
    document: object, caller: Caller, context: Mapping[str, str], action: str = "sts:AssumeRole"
) -> bool:
    """Evaluate a role's trust policy for ``caller``: an explicit Deny wins, else any Allow, else deny.

    ``context`` maps lower-case condition keys (``sts:externalid``, ...) to values. A statement whose
    condition cannot be evaluated here never allows, and (failing closed) always denies.
    """

    def principal_ok(statement: Mapping[str, Any]) -> bool:
        if "Principal" in statement:
            return _principal_matches(statement["Principal"], caller)
        if "NotPrincipal" in statement:
            return not _principal_matches(statement["NotPrincipal"], caller)
        return False

    return _trust_decision(document, principal_ok, action, context)


def federated_trust_allows(
    document: object, provider_arn: str, context: Mapping[str, str], action: str = "sts:AssumeRoleWithSAML"
) -> bool:
    """A role's trust policy for a federated principal (``{"Federated": provider_arn}``), as above."""
    return _trust_decision(
        document,
        lambda statement: _named_principal_matches(statement.get("Principal"), "Federated", provider_arn),
        action,
        context,
    )


def service_trust_allows(
    document: object, service: str, action: str = "sts:AssumeRole", context: Mapping[str, str] | None = None
) -> bool:
    """A role's trust policy for an AWS service principal (``{"Service": "cloudformation.amazonaws.com"}``);
    ``context``: the condition keys the service sends (``aws:SourceAccount``)."""

    def principal_ok(statement: Mapping[str, Any]) -> bool:
        return _named_principal_matches(statement.get("Principal"), "Service", service)

    return _trust_decision(document, principal_ok, action, context or {})


# --------------------------------------------------------------------------------- identity policies
@dataclass(frozen=True)
class PolicySource:
    """One policy document and where it comes from (``SourcePolicyId``/``SourcePolicyType``)."""

    policy_id: str
    policy_type: str  # "user", "group", "role", "aws-managed", "user-managed" or "none"
    document: Any


@dataclass
class Evaluation:
    """``decision`` is ``allowed``, ``explicitDeny`` or ``implicitDeny``, as IAM's simulator answers."""

    decision: str
    matched: list[PolicySource] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    by_boundary: bool = False  # the decision is the permissions boundary's

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"


def evaluate(
    sources: Iterable[PolicySource],
    action: str,
    resource: str = "*",
    context: Mapping[str, str] | None = None,
    boundary: Iterable[PolicySource] | None = None,
    *,
    any_resource: bool = True,
) -> Evaluation:
    """Decide ``action`` on ``resource`` under identity policies ``sources`` (and an optional boundary).

    ``any_resource``: see :func:`_resource_matches` (the simulator's reading of ``*``, the default).
    """
    ctx = {k.lower(): v for k, v in (context or {}).items()}
    allows: list[PolicySource] = []
    denies: list[PolicySource] = []
    missing: list[str] = []
    for source in sources:
        for statement in _statements(source.document):
            if not _action_matches(statement, action) or not _resource_matches(
                statement, resource, any_resource
            ):
                continue
            condition = statement.get("Condition")
            missing.extend(k for k in _condition_keys(condition) if k.lower() not in ctx and k not in missing)
            outcome = conditions_match(condition, ctx)
            if statement.get("Effect") == "Deny" and outcome is not False:
                denies.append(source)
            elif statement.get("Effect") == "Allow" and outcome is True:
                allows.append(source)
    if denies:
        return Evaluation("explicitDeny", _unique(denies), missing)
    if allows and boundary is not None:
        limit = evaluate(boundary, action, resource, context, any_resource=any_resource)
        if limit.decision != "allowed":
            return Evaluation(limit.decision, limit.matched, missing + limit.missing, by_boundary=True)
    if allows:
        return Evaluation("allowed", _unique(allows), missing)
    return Evaluation("implicitDeny", [], missing)


def _unique(sources: list[PolicySource]) -> list[PolicySource]:
    seen: list[PolicySource] = []
    for source in sources:
        if source not in seen:
            seen.append(source)
    return seen
