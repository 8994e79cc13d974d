"""What a request asks IAM for: the actions and resources AWS authorizes it on, for the services the
deployer's own functions call (DynamoDB, Step Functions, Lambda, SNS, Secrets Manager, S3).

Why this exists: ``localaws/authorization.py`` evaluates each request as one action named after its API
operation, on ``*`` with any ``Resource`` element matching. That is right for most calls, but not for the
service's own roles, whose policies are scoped to the stack's table, state machines, secrets and topics:

* some operations are not IAM actions: ``TransactWriteItems`` is authorized as ``PutItem``,
  ``UpdateItem``, ``DeleteItem`` or ``ConditionCheckItem`` on each item's table, ``TransactGetItems`` as
  ``GetItem``; S3 ``GetObject`` of a version is ``s3:GetObjectVersion``;
* a policy scoped to one resource must refuse a call on another (``states:StartExecution`` of another
  state machine, ``sns:Publish`` to a topic the policy does not cover), so each call is evaluated on its
  resource's ARN;
* a policy conditioned on the resource's account (``aws:ResourceAccount``: the service never reads an
  object or publishes to a topic in its own account on a tenant's behalf) needs that account, which an
  S3 ARN does not hold: it is the bucket owner's.

``requested`` answers the (action, resource, context) triples of a request, or None for a request it
does not know (the authorization module's own rules apply). A task token whose execution cannot be found
is evaluated on ``*`` leniently, never more strictly than AWS. ``check_moto_internals`` fails loudly when
the moto internals read here change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from localaws.patching import MotoInternalsChanged, source

__all__ = ["Requested", "check_moto_internals", "requested"]

_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
_STATE_MACHINE_PARAMS = ("stateMachineArn",)
_EXECUTION_PARAMS = ("executionArn",)
_TASK_TOKEN_ACTIONS = frozenset({"SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"})
_SECRET_ACTIONS = frozenset(
    {"CreateSecret", "GetSecretValue", "DeleteSecret", "DescribeSecret", "PutSecretValue", "UpdateSecret"}
)
_FUNCTION_PATH = re.compile(r"/functions/([^/]+)/invocations")


@dataclass(frozen=True)
class Requested:
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)
    any_resource: bool = False  # the resource could not be told: any Resource element matches


def requested(response: Any, prefix: str, operation: str, hinted: str = "*") -> list[Requested] | None:
    """The (action, resource, context) the request needs allowed; None: not a request known here.

    ``hinted``: the resource moto passed to its own authorization hook (S3's object ARN)."""
    where = _Where(str(response.partition), str(response.region), str(response.current_account))
    if prefix == "dynamodb":
        return _dynamodb(response, operation, where)
    if prefix == "states":
        return _states(response, operation, where)
    if prefix == "lambda" and operation == "Invoke":
        match = _FUNCTION_PATH.search(str(getattr(response, "path", "") or ""))
        if match is None:
            return None
        name = match.group(1).replace("%3A", ":")
        arn = name if name.startswith("arn:") else where.arn("lambda", f"function:{name}")
        return [Requested("lambda:InvokeFunction", arn.split(":qualifier")[0])]
    if prefix == "sns" and operation == "Publish":
        topic = str(response._get_param("TopicArn") or response._get_param("TargetArn") or "")
        if not topic.startswith("arn:"):
            return None
        return [Requested("sns:Publish", topic, {"aws:resourceaccount": topic.split(":")[4]})]
    if prefix == "secretsmanager" and operation in _SECRET_ACTIONS:
        name = str(response._get_param("SecretId") or response._get_param("Name") or "")
        if not name:
            return None
        arn = name if name.startswith("arn:") else where.arn("secretsmanager", f"secret:{name}")
        return [Requested(f"secretsmanager:{operation}", arn)]
    if prefix == "s3" and operation in ("GetObject", "HeadObject") and hinted.startswith("arn:"):
        versioned = bool(response._get_param("versionId") or response.querystring.get("versionId"))
        action = "s3:GetObjectVersion" if versioned else "s3:GetObject"
        bucket = hinted.split(":::", 1)[1].split("/", 1)[0]
        owner = _bucket_owner(bucket)
        return [Requested(action, hinted, {"aws:resourceaccount": owner} if owner else {})]
    return None


@dataclass(frozen=True)
class _Where:
    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def table(self, name: str) -> str:
        return name if name.startswith("arn:") else self.arn("dynamodb", f"table/{name}")


def _dynamodb(response: Any, operation: str, where: _Where) -> list[Requested] | None:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        found: list[Requested] = []
        for entry in response._get_param("TransactItems") or []:
            for kind, request in entry.items():
                if kind not in _TRANSACT_ACTIONS:
                    return None
                found.append(Requested(_TRANSACT_ACTIONS[kind], where.table(str(request["TableName"]))))
        return found
    if operation in ("BatchWriteItem", "BatchGetItem"):
        tables = response._get_param("RequestItems") or {}
        return [Requested(f"dynamodb:{operation}", where.table(str(name))) for name in tables]
    table = response._get_param("TableName")
    if not table:
        return None
    arn = where.table(str(table))
    index = response._get_param("IndexName")
    return [Requested(f"dynamodb:{operation}", f"{arn}/index/{index}" if index else arn)]


def _states(response: Any, operation: str, where: _Where) -> list[Requested] | None:
    if operation in _TASK_TOKEN_ACTIONS:
        machine = _machine_of_token(where, str(response._get_param("taskToken") or ""))
        if machine is None:
            return [Requested(f"states:{operation}", "*", any_resource=True)]
        return [Requested(f"states:{operation}", machine)]
    for name in _STATE_MACHINE_PARAMS + _EXECUTION_PARAMS:
        arn = response._get_param(name)
        if arn:
            return [Requested(f"states:{operation}", str(arn))]
    return None


def _machine_of_token(where: _Where, token: str) -> str | None:
    """The state machine whose running execution waits on ``token`` (SendTask* authorizes on it)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[where.account][where.region]
    for machine in list(backend.state_machines):
        for execution in list(machine.executions):
            worker = getattr(execution, "exec_worker", None)
            pool = getattr(getattr(worker, "env", None), "callback_pool_manager", None)
            if pool is not None and pool.get(token) is not None:
                return str(machine.arn)
    return None


def _bucket_owner(bucket: str) -> str | None:
    from localaws.s3 import find_bucket

    found = find_bucket(bucket)
    return found.account_id if found is not None else None


def check_moto_internals() -> None:
    """Fail loudly when the moto internals read here have moved."""

    from moto.s3.models import s3_backends
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    problems = []
    if not isinstance(getattr(s3_backends, "bucket_accounts", None), dict):
        problems.append("moto.s3.models.s3_backends.bucket_accounts")
    if not callable(getattr(CallbackPoolManager, "get", None)):
        problems.append("CallbackPoolManager.get")
    if not issubclass(StepFunctionsParserBackend, StepFunctionBackend) or "self.state_machines" not in (
        source(StepFunctionBackend.__init__)
    ):
        problems.append("StepFunctionBackend.state_machines")
    if problems:
        raise MotoInternalsChanged(
            "localaws.requested reads moto internals that changed: " + ", ".join(problems)
        )
