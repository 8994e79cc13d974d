"""``iam:SimulatePrincipalPolicy`` and ``iam:SimulateCustomPolicy`` for the embedded local AWS (moto 5.2.5).

Why this exists
---------------
The deployer checks, before it deploys, that the role it will use in a target account can perform every
action the template needs (a preflight that names the missing actions instead of failing half-way through a
stack). On AWS that is ``SimulatePrincipalPolicy``; moto does not implement it (``NotImplementedError``
in-process, HTTP 500 from a server). ``install()`` adds both simulation operations to moto's IAM responses,
so they work under ``moto.mock_aws()`` and from a ``ThreadedMotoServer`` in the same process.

What is evaluated
-----------------
For a role: its inline and attached managed policies; for a user: its inline and managed policies and those
of its groups; for a group: its own. ``PolicyInputList`` documents are added to them. Each
``ActionNames`` x ``ResourceArns`` pair (resource default ``*``) is evaluated by :mod:`localaws.policy`,
the evaluator STS and SAML use too, as IAM does for identity policies: an explicit ``Deny`` wins (``explicitDeny``), else an ``Allow`` (``allowed``), else
``implicitDeny``; ``Action``/``NotAction`` and ``Resource``/``NotResource`` wildcards are honoured
(actions case-insensitively); a permissions boundary (the role's or user's, or
``PermissionsBoundaryPolicyInputList``) must also allow. ``Condition`` blocks use its
operators (String*, Arn*, Bool, Null, ...IfExists) against ``ContextEntries`` (first value of each
key); keys a matching statement needs but the request does not give are reported in
``MissingContextValues``. When the simulated resource is ``*`` any ``Resource`` element matches, as the
question is then "is this action allowed on some resource".

Results have AWS's shape (``EvalActionName``, ``EvalResourceName``, ``EvalDecision``, ``MatchedStatements``
with ``SourcePolicyId``/``SourcePolicyType``, ``MissingContextValues``) and are paginated with
``MaxItems``/``Marker``. Not modelled: resource policies (``ResourcePolicy``), SCPs, ``CallerArn``,
statement positions, policy variables (``${aws:username}``) and multi-valued context keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from localaws.patching import Patcher, source
from localaws.policy import PolicySource, as_list, evaluate

__all__ = ["PolicySource", "check_moto_internals", "evaluate", "install", "principal_sources"]

_PATCHER = Patcher("localaws.iam")
DEFAULT_MAX_ITEMS = 100


def _managed_document(policy: Any) -> Any:
    for version in policy.versions:
        if version.is_default:
            return version.document
    return None


def _managed_sources(managed: Mapping[str, Any]) -> list[PolicySource]:
    sources = []
    for arn, policy in managed.items():
        kind = "aws-managed" if ":iam::aws:policy/" in str(arn) else "user-managed"
        sources.append(PolicySource(str(policy.name), kind, _managed_document(policy)))
    return sources


def _inline_sources(entity: Any, kind: str) -> list[PolicySource]:
    return [PolicySource(str(name), kind, doc) for name, doc in entity.policies.items()]


def _boundary(backend: Any, entity: Any) -> list[PolicySource] | None:
    arn = getattr(entity, "permissions_boundary_arn", None)  # moto models boundaries on roles only
    if not arn:
        return None
    policy = backend.get_policy(str(arn))
    return _managed_sources({str(arn): policy})


def principal_sources(backend: Any, arn: str) -> tuple[list[PolicySource], list[PolicySource] | None]:
    """The identity policies of the user, group or role ``arn`` and its permissions boundary, if any."""
    from moto.iam.exceptions import InvalidInput, NotFoundException

    kind, _, path_and_name = arn.split(":", 5)[-1].partition("/")
    name = path_and_name.rsplit("/", 1)[-1]
    if kind == "role":
        role = next((r for r in backend.get_roles() if r.name == name), None)
        if role is None:
            raise NotFoundException(f"Role {name} not found")
        return _inline_sources(role, "role") + _managed_sources(role.managed_policies), _boundary(
            backend, role
        )
    if kind == "user":
        user = backend.get_user(name)  # raises NoSuchEntity
        sources = _inline_sources(user, "user") + _managed_sources(user.managed_policies)
        for group in backend.get_groups_for_user(name):
            sources += _inline_sources(group, "group") + _managed_sources(group.managed_policies)
        return sources, _boundary(backend, user)
    if kind == "group":
        group = backend.get_group(name)
        return _inline_sources(group, "group") + _managed_sources(group.managed_policies), None
    raise InvalidInput(f"Invalid Entity Arn: {arn} does not clearly define entity type and name.")


def _input_sources(documents: object, prefix: str) -> list[PolicySource]:
    return [PolicySource(f"{prefix}.{i}", "none", doc) for i, doc in enumerate(as_list(documents), start=1)]


def _context(entries: object) -> dict[str, str]:
    context: dict[str, str] = {}
    for entry in as_list(entries):
        if isinstance(entry, Mapping) and entry.get("ContextKeyName") and entry.get("ContextKeyValues"):
            context[str(entry["ContextKeyName"]).lower()] = str(as_list(entry["ContextKeyValues"])[0])
    return context


def _simulate(
    response: Any, sources: list[PolicySource], boundary: list[PolicySource] | None
) -> dict[str, Any]:
    actions = [str(a) for a in as_list(response._get_param("ActionNames"))]
    resources = [str(r) for r in as_list(response._get_param("ResourceArns"))] or ["*"]
    context = _context(response._get_param("ContextEntries"))
    extra_boundary = _input_sources(
        response._get_param("PermissionsBoundaryPolicyInputList"), "PermissionsBoundaryPolicyInputList"
    )
    if extra_boundary:
        boundary = (boundary or []) + extra_boundary
    results = []
    for action in actions:
        for resource in resources:
            outcome = evaluate(sources, action, resource, context, boundary)
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": outcome.decision,
                    "MatchedStatements": [
                        {"SourcePolicyId": s.policy_id, "SourcePolicyType": s.policy_type}
                        for s in outcome.matched
                    ],
                    "MissingContextValues": outcome.missing,
                }
            )
    return _page(response, results)


def _page(response: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
    from moto.iam.exceptions import InvalidInput

    marker = response._get_param("Marker")
    max_items = int(response._get_param("MaxItems") or DEFAULT_MAX_ITEMS)
    try:
        start = int(marker) if marker else 0
    except ValueError:
        raise InvalidInput("Invalid Marker.") from None
    end = start + max_items
    page: dict[str, Any] = {"EvaluationResults": results[start:end], "IsTruncated": end < len(results)}
    if end < len(results):
        page["Marker"] = str(end)
    return page


def _simulate_principal_policy(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.iam.models import iam_backends

    arn = str(self._get_param("PolicySourceArn") or "")
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[4]:
        from moto.iam.exceptions import InvalidInput

        raise InvalidInput(f"Invalid Entity Arn: {arn} does not clearly define entity type and name.")
    backend = iam_backends[parts[4]][parts[1]]
    sources, boundary = principal_sources(backend, arn)
    sources += _input_sources(self._get_param("PolicyInputList"), "PolicyInputList")
    return ActionResult(_simulate(self, sources, boundary))


def _simulate_custom_policy(self: Any) -> Any:
    from moto.core.responses import ActionResult

    sources = _input_sources(self._get_param("PolicyInputList"), "PolicyInputList")
    return ActionResult(_simulate(self, sources, None))


_OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "simulate_principal_policy": _simulate_principal_policy,
    "simulate_custom_policy": _simulate_custom_policy,
}


def check_moto_internals() -> None:
    """Raise RuntimeError with a clear message if a moto internal that ``install()`` relies on changed."""
    from moto.core.responses import ActionResult
    from moto.iam.models import Group, IAMBackend, Policy, PolicyVersion, Role, User
    from moto.iam.responses import IamResponse

    for name in _OPERATIONS:
        _PATCHER.expect(
            _PATCHER.lacks(IamResponse, name),
            f"IamResponse.{name} now exists in moto: compare it with localaws/iam.py and drop ours",
        )
    _PATCHER.expect(hasattr(IamResponse, "_get_param"), "IamResponse._get_param")
    _PATCHER.expect(callable(ActionResult), "moto.core.responses.ActionResult")
    for name in ("get_roles", "get_user", "get_group", "get_groups_for_user", "get_policy"):
        _PATCHER.expect(hasattr(IAMBackend, name), f"IAMBackend.{name} is missing")
    for model in (Role, User, Group):
        init = source(model.__init__)
        _PATCHER.expect("self.policies" in init, f"{model.__name__}.policies (inline policies)")
        _PATCHER.expect("self.managed_policies" in init, f"{model.__name__}.managed_policies")
    _PATCHER.expect("self.versions" in source(Policy.__init__), "ManagedPolicy.versions")
    version_init = source(PolicyVersion.__init__)
    _PATCHER.expect(
        "self.document" in version_init and "self.is_default" in version_init, "PolicyVersion fields"
    )


def install() -> None:
    """Add SimulatePrincipalPolicy/SimulateCustomPolicy to moto's IAM (process-wide, idempotent)."""
    with _PATCHER.lock:
        check_moto_internals()
        from moto.iam.responses import IamResponse

        for name, operation in _OPERATIONS.items():
            _PATCHER.add(IamResponse, name, operation)
