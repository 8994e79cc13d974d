"""Identity policies enforced on the local AWS's requests, as AWS enforces them (moto 5.2.5).

Why this exists
---------------
moto checks no identity policy (``moto.core.enable_iam_authentication`` checks only same-account keys and
fails on everything cross-account), so a deployment role without ``cloudformation:CreateChangeSet``
updated happily here and failed on AWS. ``install()`` puts the project's one policy evaluator
(:mod:`localaws.policy`) on the path every moto request takes:
``ActionAuthenticatorMixin._authenticate_and_authorize_action``, which ``BaseResponse.call_action`` calls
for every query, JSON and REST-JSON request before it runs the action, and S3's responses call for every
S3 request. A refusal answers with AWS's ``AccessDenied`` text, naming the caller, the action and the
resource, in the shape of the service's protocol (query/XML ``AccessDenied`` 403, SNS's
``AuthorizationError``, JSON ``AccessDeniedException`` 400, S3's XML ``AccessDenied`` 403)::

    User: arn:aws:sts::111111111111:assumed-role/NexusDeploymentRole/nexus-op-1 is not authorized to
    perform: cloudformation:CreateChangeSet on resource: arn:aws:cloudformation:us-east-1:111111111111:
    stack/app/* because no identity-based policy allows the cloudformation:CreateChangeSet action

Who is checked
--------------
The request's access key decides. A key of an assumed-role session (``AssumeRole``,
``AssumeRoleWithSAML``) acts as that role; a key of an IAM user, or a ``GetSessionToken`` session of one,
acts as that user. Their inline and managed policies (and a user's groups') are evaluated, with the
role's permissions boundary: an explicit Deny wins, else an Allow, else the implicit deny. Every other
key (moto's default identity, the ``testing`` keys, ``localaws.sts.account_credentials`` keys, and
unsigned requests, which moto answers as that identity) is the account's root user and is not
restricted, as root is not on AWS without SCPs. Principals of the accounts passed as ``exempt_accounts``
are not checked either (the local AWS exempts none: the service's own functions run under their template
roles in the central account, ``localaws/functions.py``). ``sts:GetCallerIdentity`` and ``sts:GetSessionToken`` need no permission, as on AWS.

Resources: the CloudFormation stack (``arn:...:stack/<name>/*``, or the stack id given) for stack and
change-set actions, ``*`` for the ones AWS authorizes only on ``*`` (``ListStacks``, ``ValidateTemplate``,
``DescribeStackDriftDetectionStatus``, ...), the role for ``sts:AssumeRole``, ``iam:PassRole`` and IAM role
reads, the simulated principal for ``iam:SimulatePrincipalPolicy``. Any other action is evaluated on
``*`` leniently (any ``Resource`` element matches): never stricter than AWS, possibly looser for a policy
scoped to particular resources. ``CreateStack``/``UpdateStack``/``CreateChangeSet`` with ``RoleARN`` also
need ``iam:PassRole`` on that role (``iam:PassedToService`` is ``cloudformation.amazonaws.com``). The services the deployer's own
functions call (DynamoDB, Step Functions, Lambda, SNS, Secrets Manager, S3 reads) are evaluated on each
call's real action and resource, with ``aws:ResourceAccount`` for SNS and S3 (:mod:`localaws.requested`). What a
stack's resources need is checked by :mod:`localaws.cloudformation.handlers`, through :func:`check`.

Not modelled: session policies and session tags, SCPs, resource-based policies other than trust
policies, and condition keys other than ``aws:PrincipalArn``, ``aws:PrincipalAccount``,
``aws:RequestedRegion``, ``aws:MultiFactorAuthPresent``, ``aws:CalledVia`` and ``iam:PassedToService``.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from localaws.patching import Patcher, params, source
from localaws.policy import Evaluation, PolicySource, evaluate
from localaws.requested import check_moto_internals as requested_internals
from localaws.requested import requested

__all__ = [
    "AccessDenied",
    "Principal",
    "check",
    "check_counts",
    "check_moto_internals",
    "current_principal",
    "install",
    "principal_for_key",
    "role_principal",
]

_PATCHER = Patcher("localaws.authorization")
_LOCAL = threading.local()  # the principal of the request this thread is serving
_SETTINGS: dict[str, frozenset[str]] = {"exempt_accounts": frozenset()}
_COUNTS: collections.Counter[tuple[str, str]] = collections.Counter()
_COUNTS_LOCK = threading.Lock()

_CREDENTIAL_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# SigV4 signing names that are not the IAM service prefix.
_IAM_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
# (prefix, operation) -> the IAM action, where the API operation is not the IAM action's name.
_IAM_ACTIONS = {
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "CopyObject"): "s3:PutObject",
}
_NO_PERMISSION_NEEDED = frozenset({"sts:GetCallerIdentity", "sts:GetSessionToken"})
_UNSIGNED = frozenset({"sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity"})

_CFN_STACK_ACTIONS = frozenset(
    {
        "CreateStack", "UpdateStack", "DeleteStack", "DescribeStacks", "DescribeStackEvents",
        "DescribeStackResource", "DescribeStackResources", "ListStackResources", "GetTemplate",
        "GetTemplateSummary", "GetStackPolicy", "SetStackPolicy", "CreateChangeSet", "DescribeChangeSet",
        "ExecuteChangeSet", "DeleteChangeSet", "ListChangeSets", "CancelUpdateStack",
        "ContinueUpdateRollback", "DetectStackDrift", "DetectStackResourceDrift",
        "DescribeStackResourceDrifts", "SignalResource", "UpdateTerminationProtection", "RollbackStack",
    }
)  # fmt: skip
_CFN_PASS_ROLE_ACTIONS = frozenset({"CreateStack", "UpdateStack", "CreateChangeSet"})
CLOUDFORMATION_SERVICE = "cloudformation.amazonaws.com"


# ----------------------------------------------------------------------------------------- principals
@dataclass(frozen=True)
class Principal:
    """A caller whose identity policies apply: a role session or an IAM user."""

    arn: str  # as AWS names the caller: the session ARN (assumed-role) or the user ARN
    entity_arn: str  # the IAM role or user whose policies apply
    account: str
    partition: str
    mfa: bool = False

    def condition_context(self) -> dict[str, str]:
        return {
            "aws:principalarn": self.entity_arn,
            "aws:principalaccount": self.account,
            "aws:multifactorauthpresent": "true" if self.mfa else "false",
        }


def _iam(account: str, partition: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account][partition]


def _role(account: str, partition: str, role_arn: str) -> Any | None:
    name = role_arn.rsplit("/", 1)[-1]
    return next((r for r in _iam(account, partition).get_roles() if r.name == name), None)


def principal_for_key(account: str, partition: str, access_key: str) -> Principal | None:
    """The restricted principal behind ``access_key`` in ``account``, or None for the account's root."""
    from moto.sts.models import sts_backends

    from localaws import sts

    if account in _SETTINGS["exempt_accounts"]:
        return None
    assumed = sts_backends[account][partition].get_assumed_role_from_access_key(access_key)
    if assumed is not None:
        role = _role(account, partition, str(assumed.role_arn))
        role_arn = str(role.arn) if role is not None else str(assumed.role_arn)
        return Principal(str(assumed.arn), role_arn, account, partition, mfa=sts.session_mfa(assumed))
    user = _iam(account, partition).get_user_from_access_key_id(access_key)
    if user is not None:
        return Principal(str(user.arn), str(user.arn), account, partition)
    session = sts.session_of(account, partition, access_key)
    if session is not None:
        users = _iam(account, partition).users.values()
        user = next((u for u in users if str(u.arn) == session.arn), None)
        if user is not None:
            return Principal(str(user.arn), str(user.arn), account, partition, mfa=session.mfa)
    return None


def role_principal(role_arn: str, session_name: str, partition: str = "aws") -> Principal | None:
    """A session of ``role_arn`` (e.g. CloudFormation acting with a stack's service role)."""
    account = role_arn.split(":")[4]
    if account in _SETTINGS["exempt_accounts"]:
        return None
    role = _role(account, partition, role_arn)
    name = role_arn.rsplit("/", 1)[-1]
    session_arn = f"arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}"
    return Principal(session_arn, str(role.arn) if role is not None else role_arn, account, partition)


def current_principal() -> Principal | None:
    """The restricted principal of the request this thread is serving (None: unrestricted)."""
    principal: Principal | None = getattr(_LOCAL, "principal", None)
    return principal


# -------------------------------------------------------------------------------------------- decisions
def _sources(principal: Principal) -> tuple[list[PolicySource], list[PolicySource] | None]:
    from moto.iam.exceptions import NoSuchEntity, NotFoundException

    from localaws.iam import principal_sources

    try:
        return principal_sources(_iam(principal.account, principal.partition), principal.entity_arn)
    except (NotFoundException, NoSuchEntity):
        return [], None  # the role or user is gone: nothing allows


class AccessDenied(Exception):
    """A call the principal's policies do not allow; ``message`` is AWS's text."""

    code = "AccessDenied"

    def __init__(self, principal: Principal, action: str, resource: str, evaluation: Evaluation) -> None:
        self.principal = principal
        self.action = action
        self.resource = resource
        where = "a permissions boundary" if evaluation.by_boundary else "an identity-based policy"
        if evaluation.decision == "explicitDeny":
            why = f"with an explicit deny in {where}"
        elif evaluation.by_boundary:
            why = f"because no permissions boundary allows the {action} action"
        else:
            why = f"because no identity-based policy allows the {action} action"
        self.message = f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource}"
        if action != "sts:AssumeRole":  # STS says no more, whether the trust or the caller's policy refused
            self.message += f" {why}"
        super().__init__(self.message)


def check(
    principal: Principal,
    action: str,
    resource: str = "*",
    *,
    any_resource: bool = False,
    context: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`AccessDenied` unless ``principal``'s policies allow ``action`` on ``resource``.

    ``any_resource``: ``resource`` is ``*`` because the resource is not known here, so any ``Resource``
    element matches (lenient); otherwise ``*`` means what it says (only ``"Resource": "*"`` allows it).
    """
    sources, boundary = _sources(principal)
    full_context = {**principal.condition_context(), **{k.lower(): v for k, v in (context or {}).items()}}
    outcome = evaluate(sources, action, resource, full_context, boundary, any_resource=any_resource)
    with _COUNTS_LOCK:
        _COUNTS[(principal.entity_arn, action)] += 1
    if not outcome.allowed:
        raise AccessDenied(principal, action, resource, outcome)


def check_counts() -> dict[tuple[str, str], int]:
    """How many checks each (role or user ARN, action) had in this process."""
    with _COUNTS_LOCK:
        return dict(_COUNTS)


# --------------------------------------------------------------------------------- requests: resources
def _stack_arn(response: Any, stack: str) -> str:
    if stack.startswith("arn:"):
        return stack
    return f"arn:{response.partition}:cloudformation:{response.region}:{response.current_account}:stack/{stack}/*"


def _change_set_stack(response: Any) -> str | None:
    """The stack a change set named by its ARN belongs to (CloudFormation authorizes on the stack)."""
    from moto.cloudformation.models import cloudformation_backends

    name = str(response._get_param("ChangeSetName") or "")
    backend = cloudformation_backends[response.current_account][response.region]
    change_set = backend.change_sets.get(name)
    return str(change_set.stack_id) if change_set is not None else None


def _resource(response: Any, prefix: str, operation: str) -> tuple[str, bool]:
    """(resource ARN, any_resource) for the request, as AWS authorizes the action."""
    if prefix == "cloudformation":
        if operation in _CFN_STACK_ACTIONS:
            stack = response._get_param("StackName") or (
                _change_set_stack(response) if "ChangeSet" in operation else None
            )
            if stack:
                return _stack_arn(response, str(stack)), False
            if operation not in ("DescribeStacks", "GetTemplateSummary", "ListChangeSets"):
                return "*", True  # a malformed request: CloudFormation itself refuses it next
        return "*", False  # ListStacks, ValidateTemplate, DescribeStackDriftDetectionStatus, ...
    if prefix == "sts" and operation == "AssumeRole":
        return str(response._get_param("RoleArn") or "*"), False
    if prefix == "iam" and operation == "SimulatePrincipalPolicy":
        return str(response._get_param("PolicySourceArn") or "*"), False
    if prefix == "iam" and operation.endswith(("Role", "RolePolicy", "RolePolicies")):
        name = response._get_param("RoleName")
        if name:
            role = _role(response.current_account, response.partition, f"role/{name}")
            arn = (
                role.arn
                if role is not None
                else f"arn:{response.partition}:iam::{response.current_account}:role/{name}"
            )
            return str(arn), False
    return "*", True


def _iam_action(response: Any) -> tuple[str, str] | None:
    """(IAM prefix, operation) of the request, from its SigV4 scope; None when unsigned."""
    match = _CREDENTIAL_RE.search(str(response.headers.get("Authorization") or ""))
    if not match:
        return None
    prefix = _IAM_PREFIX.get(match.group(1), match.group(1))
    operation = response._get_action()
    operation = operation[0] if isinstance(operation, list) else operation
    return (prefix, str(operation)) if operation else None


def _protocol_error(response: Any, denial: AccessDenied, hinted: str = "*") -> Exception:
    from localaws.s3 import bucket_region
    from localaws.sts import AwsHttpError, _protocol_of

    protocol = _protocol_of(response)
    bucket = hinted.split(":s3:::", 1)[1] if ":s3:::" in hinted else ""
    if denial.action == "s3:ListBucket" and bucket and "/" not in bucket:
        # S3 answers HeadBucket with the bucket's region even when it refuses it (botocore's region
        # redirector and the service's TemplateURL rely on it).
        region = bucket_region(bucket)
        headers = {"x-amz-bucket-region": region} if region else None
        return AwsHttpError(403, "AccessDenied", denial.message, protocol, headers)
    if protocol in ("json", "smithy-rpc-v2-cbor"):
        return AwsHttpError(400, "AccessDeniedException", denial.message, "json")
    if protocol == "rest-json":
        return AwsHttpError(403, "AccessDeniedException", denial.message, "json")
    code = "AuthorizationError" if denial.action.lower().startswith("sns:") else "AccessDenied"
    return AwsHttpError(403, code, denial.message, protocol)


def authorize_request(response: Any, hinted: str = "*") -> None:
    """Check one moto request against its caller's identity policies (raises AWS's AccessDenied)."""
    access_key = str(response.get_access_key())
    principal = principal_for_key(str(response.current_account), str(response.partition), access_key)
    _LOCAL.principal = principal
    if principal is None:
        return
    found = _iam_action(response)
    if found is None:
        return
    prefix, operation = found
    action = _IAM_ACTIONS.get((prefix, operation), f"{prefix}:{operation}")
    if action in _NO_PERMISSION_NEEDED or action in _UNSIGNED:
        return
    context = {"aws:requestedregion": str(response.region)}
    precise = requested(
        response, prefix, operation, hinted
    )  # the service's own services: localaws/requested.py
    if precise is not None:
        try:
            for asked in precise:
                check(
                    principal,
                    asked.action,
                    asked.resource,
                    any_resource=asked.any_resource,
                    context={**context, **asked.context},
                )
        except AccessDenied as denial:
            raise _protocol_error(response, denial, hinted) from None
        return
    resource, any_resource = _resource(response, prefix, operation)
    try:
        check(principal, action, resource, any_resource=any_resource, context=context)
        role_arn = response._get_param("RoleARN") if prefix == "cloudformation" else None
        if role_arn and operation in _CFN_PASS_ROLE_ACTIONS:
            passed = {**context, "iam:passedtoservice": CLOUDFORMATION_SERVICE}
            check(principal, "iam:PassRole", str(role_arn), context=passed)
    except AccessDenied as denial:
        raise _protocol_error(response, denial, hinted) from None


# ------------------------------------------------------------------------------------------ installation
def _authenticate_and_authorize_action(original: Any) -> Any:
    def authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        original(self, iam_request_cls, resource)  # moto's own (enable_iam_authentication), unchanged
        authorize_request(self, resource)

    return authenticate_and_authorize_action


def check_moto_internals() -> None:
    """Fail loudly when the request path this module hooks into has changed in moto."""
    import inspect

    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse
    from moto.iam.models import IAMBackend
    from moto.sts.models import STSBackend

    hook = inspect.unwrap(
        inspect.getattr_static(ActionAuthenticatorMixin, "_authenticate_and_authorize_action")
    )
    _PATCHER.expect(
        params(hook)[:3] == ["self", "iam_request_cls", "resource"],
        "ActionAuthenticatorMixin._authenticate_and_authorize_action(self, iam_request_cls, resource)",
    )
    for caller in ("_authenticate_and_authorize_normal_action", "_authenticate_and_authorize_s3_action"):
        text = source(getattr(ActionAuthenticatorMixin, caller))
        _PATCHER.expect("self._authenticate_and_authorize_action(" in text, f"{caller} calls the hook")
    call_action = source(inspect.unwrap(_original_call_action(BaseResponse)))
    _PATCHER.expect(
        call_action.find("self._authenticate_and_authorize_normal_action(")
        < call_action.find("except HTTPException")
        < call_action.find("method_names_from_class"),
        "BaseResponse.call_action authorizes (answering an HTTPException) before it runs the action",
    )
    for name in ("get_access_key", "_get_action", "_get_param"):
        _PATCHER.expect(callable(getattr(BaseResponse, name, None)), f"BaseResponse.{name}")
    _PATCHER.expect(
        callable(getattr(STSBackend, "get_assumed_role_from_access_key", None)),
        "STSBackend.get_assumed_role_from_access_key",
    )
    _PATCHER.expect(
        callable(getattr(IAMBackend, "get_user_from_access_key_id", None)),
        "IAMBackend.get_user_from_access_key_id",
    )
    requested_internals()  # what localaws/requested.py reads to name a request's resources


def _original_call_action(base: type) -> Any:
    """moto's ``call_action``, under localaws.concurrency's wrapper when it is installed."""
    from localaws import concurrency

    return concurrency.original_call_action() or base.call_action  # type: ignore[attr-defined]


def install(exempt_accounts: frozenset[str] = frozenset()) -> None:
    """Enforce identity policies on every request (process-wide, idempotent); see the module docstring."""
    with _PATCHER.lock:
        _SETTINGS["exempt_accounts"] = frozenset(exempt_accounts)
        check_moto_internals()
        from moto.core.authorization import ActionAuthenticatorMixin

        _PATCHER.wrap(
            ActionAuthenticatorMixin, "_authenticate_and_authorize_action", _authenticate_and_authorize_action
        )
