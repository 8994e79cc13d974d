"""Resource handler permissions: what a stack's resources need, checked as CloudFormation's handlers are.

On AWS, CloudFormation creates, updates and deletes each resource through the resource type's handler,
which calls the service's APIs with the caller's permissions, or with the stack's service role when it
has one (``RoleARN``). A permission missing there ends the resource ``CREATE_FAILED`` (``UPDATE_FAILED``,
``DELETE_FAILED``) with the handler's message::

    Resource handler returned message: "User: arn:aws:sts::111111111111:assumed-role/Deployer/op is not
    authorized to perform: sqs:CreateQueue on resource: arn:aws:sqs:us-east-1:111111111111:app-Queue
    because no identity-based policy allows the sqs:CreateQueue action (Service: Sqs, Status Code: 403,
    Request ID: ...)" (RequestToken: ..., HandlerErrorCode: AccessDenied)

The permissions each handler may use come from the resource provider schemas that cfn-lint ships
(``cfnlint/data/schemas``: ``providers/<region>.json`` names each type's schema in ``resources/``, whose
``handlers.{create,update,delete}.permissions`` list them), read from the installed cfn-lint.

A handler's list is everything it *may* call (a DynamoDB table's create handler lists 45 permissions,
among them ``s3:GetObject`` for imports and ``kms:*`` for encryption); the real handler calls what the
resource's properties need. So a permission is checked when the handler declares it *and* the local
AWS's emulation of the handler performs that call: moto's CloudFormation code creates a queue by calling
``SQSBackend.create_queue``, which is ``sqs:CreateQueue``. Each such backend method (the snake_case
name of a declared permission of the type's own service) is wrapped once, the first time a handler of
that type runs, and checks only while a handler runs on that thread. What AWS's handlers also call and
moto's emulation does not (read-backs such as ``sqs:GetQueueAttributes``, tagging on create) is not
checked: the local AWS may allow a stack AWS refuses, never the other way round.
"""

from __future__ import annotations

import functools
import inspect
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from localaws import authorization
from localaws.cloudformation.schemas import type_schema
from localaws.cloudformation.state import _moto

__all__ = ["acting_for", "handler_message", "handler_permissions", "handling"]

SESSION_NAME = "AWSCloudFormation"  # the session CloudFormation opens with a stack's service role
CALLED_VIA = "cloudformation.amazonaws.com"
_LOCAL = threading.local()  # .identity: whose permissions the handlers use; .scope: the running handler
_UNSET = object()
_WRAP_LOCK = threading.Lock()
_WRAPPED: set[tuple[type, str]] = set()

# moto's package -> the IAM service prefix of its actions, where they differ.
_PREFIXES = {
    "awslambda": "lambda",
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "applicationautoscaling": "application-autoscaling",
    "cognitoidp": "cognito-idp",
    "stepfunctions": "states",
    "kinesisvideo": "kinesisvideo",
}
# The service name and HTTP status AWS's handlers quote from the SDK, where not Capitalized and 403.
_SDK_SERVICES = {
    "dynamodb": ("DynamoDb", 400),
    "logs": ("CloudWatchLogs", 400),
    "events": ("EventBridge", 400),
    "elasticloadbalancing": ("ElasticLoadBalancingV2", 403),
    "states": ("Sfn", 400),
    "lambda": ("Lambda", 403),
}


# ------------------------------------------------------------------------------------------- schemas
def handler_permissions(resource_type: str, region: str, handler: str) -> frozenset[str]:
    """The permissions the ``handler`` (create, update, delete) of ``resource_type`` declares (its
    provider schema, read by :mod:`.schemas` from the installed cfn-lint)."""
    schema = type_schema(resource_type, region)
    return schema.handler_permissions(handler) if schema is not None else frozenset()


# ------------------------------------------------------------------------------------------ identities
@contextmanager
def acting_for(role_arn: str | None) -> Iterator[None]:
    """Whose permissions this operation's handlers use: the stack's service role, else the caller.

    Inside another operation (a nested stack) with no role of its own, the outer identity carries on.
    """
    previous: Any = getattr(_LOCAL, "identity", _UNSET)
    identity: authorization.Principal | None
    if role_arn:
        identity = authorization.role_principal(role_arn, SESSION_NAME)
    elif previous is not _UNSET:
        identity = previous
    else:
        identity = authorization.current_principal()
    _LOCAL.identity = identity
    try:
        yield
    finally:
        if previous is _UNSET:
            del _LOCAL.identity
        else:
            _LOCAL.identity = previous


@dataclass
class _Scope:
    identity: authorization.Principal
    permissions: frozenset[str]
    account: str
    region: str
    checked: set[str] = field(default_factory=set)


@contextmanager
def handling(resource_type: str, handler: str, account: str, region: str) -> Iterator[None]:
    """Run one resource's ``handler`` (create, update, delete): its backend calls are checked meanwhile."""
    identity = getattr(_LOCAL, "identity", None)
    if identity is None or identity is _UNSET:
        yield  # an unrestricted caller (the account's root, an exempt account)
        return
    permissions = handler_permissions(resource_type, region, handler)
    _wrap_backends(resource_type, permissions)
    previous = getattr(_LOCAL, "scope", None)
    _LOCAL.scope = _Scope(identity, permissions, account, region)
    try:
        yield
    finally:
        _LOCAL.scope = previous


# ------------------------------------------------------------------------------------ backend methods
def _backend_classes(resource_type: str) -> tuple[str, list[type]]:
    """(IAM prefix, moto backend classes) of the package that emulates ``resource_type``."""
    import importlib

    from moto.core.base_backend import BaseBackend

    model = _moto().parsing.get_model_map().get(resource_type)
    if model is None:
        return "", []
    package = ".".join(str(model.__module__).split(".")[:2])  # moto.sqs
    if package == "moto.cloudformation":
        return "", []  # nested stacks: their own operation checks itself
    try:
        module = importlib.import_module(f"{package}.models")
    except ImportError:
        return "", []
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseBackend) and value is not BaseBackend
    ]
    short = package.split(".")[1]
    return _PREFIXES.get(short, short), classes


def _wrap_backends(resource_type: str, permissions: frozenset[str]) -> None:
    from moto.core.utils import camelcase_to_underscores

    prefix, classes = _backend_classes(resource_type)
    for permission in permissions:
        service, _, action = permission.partition(":")
        if service.lower() != prefix or not action:
            continue
        name = camelcase_to_underscores(action)
        for cls in classes:
            with _WRAP_LOCK:
                if (cls, name) in _WRAPPED:
                    continue
                current = getattr(cls, name, None)
                if not inspect.isfunction(current):
                    continue
                setattr(cls, name, _checked(permission, current))
                _WRAPPED.add((cls, name))


def _checked(permission: str, original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        scope: _Scope | None = getattr(_LOCAL, "scope", None)
        if scope is not None and permission in scope.permissions and permission not in scope.checked:
            scope.checked.add(permission)
            try:
                arguments = signature.bind_partial(self, *args, **kwargs).arguments
            except TypeError:
                arguments = {}
            resource = _resource(permission, arguments, scope)
            context = {
                "aws:calledvia": CALLED_VIA,
                "aws:calledviafirst": CALLED_VIA,
                "aws:calledvialast": CALLED_VIA,
                "aws:requestedregion": scope.region,
            }
            authorization.check(
                scope.identity, permission, resource or "*", any_resource=resource is None, context=context
            )
        return original(self, *args, **kwargs)

    method.__localaws_handler_check__ = permission  # type: ignore[attr-defined]
    return method


def _resource(permission: str, arguments: dict[str, Any], scope: _Scope) -> str | None:
    """The ARN AWS would authorize ``permission`` on, from the backend call's arguments, when clear."""
    service = permission.split(":", 1)[0]
    region, account = scope.region, scope.account
    partition = scope.identity.partition

    def first(*names: str) -> str | None:
        for name in names:
            value = arguments.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    if service == "sqs":
        queue = first("queue_name", "name") or (first("queue_url") or "").rsplit("/", 1)[-1]
        return f"arn:{partition}:sqs:{region}:{account}:{queue}" if queue else None
    if service == "dynamodb":
        name = first("table_name", "name")
        return f"arn:{partition}:dynamodb:{region}:{account}:table/{name}" if name else None
    if service == "s3":
        name = first("bucket_name")
        return f"arn:{partition}:s3:::{name}" if name else None
    if service == "sns":
        topic = first("topic_arn", "arn")
        topic_name = first("name")
        return topic or (f"arn:{partition}:sns:{region}:{account}:{topic_name}" if topic_name else None)
    if service == "iam":
        name = first("role_name")
        return f"arn:{partition}:iam::{account}:role/{name}" if name else None
    if service == "logs":
        name = first("log_group_name")
        return f"arn:{partition}:logs:{region}:{account}:log-group:{name}" if name else None
    return None


# ------------------------------------------------------------------------------------------ messages
def handler_message(denial: authorization.AccessDenied) -> str:
    """AWS's resource status reason for a handler call the identity's policies refused."""
    service = denial.action.split(":", 1)[0].lower()
    sdk_name, status = _SDK_SERVICES.get(service, (service[:1].upper() + service[1:], 403))
    return (
        f'Resource handler returned message: "{denial.message} (Service: {sdk_name}, Status Code: {status}, '
        f'Request ID: {uuid.uuid4()})" (RequestToken: {uuid.uuid4()}, HandlerErrorCode: AccessDenied)'
    )
