"""Make moto's CloudFormation behave like AWS where the deployer's users can tell the difference.

Why this exists: the local AWS is moto 5.2.5, and its CloudFormation differs from AWS in ways that hide
exactly the behaviour the deployer has to handle (see ``/work/shared/notes/local-aws-facts.md``):

* stacks reach ``*_COMPLETE`` inside the API call and only stack-level events exist;
* a failing resource makes ``CreateStack`` itself raise (often a raw ``KeyError``/``AttributeError``) and
  leaves the stack ``CREATE_IN_PROGRESS`` forever, instead of ``CREATE_FAILED`` + rollback;
* resource types moto does not emulate are silently dropped;
* ``ClientRequestToken`` is ignored, identical updates succeed, deleted stacks stay describable by name;
* ``CancelUpdateStack`` and ``ContinueUpdateRollback`` do not exist, ``RetainResources`` is ignored,
  ``DescribeStackEvents`` never paginates and change sets carry no ``Replacement`` (see the "Stack
  lifecycle" section at the end: those are added here, each with a canary in
  ``tests/localaws/test_lifecycle_patches.py``).

:func:`install` patches moto once per process (classes and module functions, so it covers ``mock_aws`` and
a ``moto.server.ThreadedMotoServer`` running in the same process alike). The real work is still done by
moto, synchronously, inside the API call; what changes is what callers *see*: every operation is recorded
as a timeline of AWS-shaped events and stack statuses spread over :attr:`StackSimulation.stack_seconds`,
and reads reveal the part of the timeline that has elapsed. Nothing runs in the background, so a read right
after the call with ``stack_seconds=0`` already shows the final state, and tests are deterministic.

Limits (kept honest in the events rather than hidden): moto's resources exist as soon as the call returns,
even while the stack still shows ``CREATE_IN_PROGRESS``; an update rollback re-applies the previous
definition of modified resources with moto's own update code, which for some types cannot undo changes.

Everything moto-internal this module relies on is listed in :data:`_REQUIRED_INTERNALS` and checked by
:func:`check_moto_internals`, which :func:`install` calls first, so a moto upgrade fails loudly.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from localaws import eventbridge

__all__ = ["StackSimulation", "check_moto_internals", "install"]

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class StackSimulation:
    """How the local CloudFormation simulates AWS timing and unsupported resources."""

    stack_seconds: float = 3.0  # how long create/update/delete stay *_IN_PROGRESS
    skip_unsupported: bool = False  # NEXUS_LOCAL_SKIP_UNSUPPORTED=1

    def __post_init__(self) -> None:
        if self.stack_seconds < 0:
            raise ValueError(f"stack_seconds must be >= 0, got {self.stack_seconds}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StackSimulation:
        """Read ``NEXUS_LOCAL_STACK_SECONDS`` (default 3) and ``NEXUS_LOCAL_SKIP_UNSUPPORTED``."""
        raw_seconds = environ.get("NEXUS_LOCAL_STACK_SECONDS", "").strip()
        try:
            seconds = float(raw_seconds) if raw_seconds else cls.stack_seconds
        except ValueError:
            raise ValueError(
                f"NEXUS_LOCAL_STACK_SECONDS must be a number of seconds, got {raw_seconds!r}"
            ) from None
        skip = environ.get("NEXUS_LOCAL_SKIP_UNSUPPORTED", "").strip().lower() in _TRUE_WORDS
        return cls(stack_seconds=seconds, skip_unsupported=skip)


# --------------------------------------------------------------------------------------------------------
# Process-wide state
# --------------------------------------------------------------------------------------------------------

_LOCK = threading.RLock()  # every patched operation that mutates CloudFormation state holds it
_LOCAL = threading.local()  # per-thread: current ClientRequestToken and the stack of running operations
_SETTINGS: dict[str, StackSimulation] = {"simulation": StackSimulation()}
_ORIGINALS: dict[str, Any] = {}

_TOKEN_PATTERN = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]{0,127}$")
_STACK_TYPE = "AWS::CloudFormation::Stack"
_NOT_UPDATABLE_STATES = frozenset(
    {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_COMPLETE"}
)
_NO_CHANGES_REASON = (
    "The submitted information didn't contain changes. Submit different information to create a change set."
)

# name -> (module, dotted attribute, parameter names that must be present, or None for "not callable")
_REQUIRED_INTERNALS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    (
        "moto.cloudformation.parsing",
        "parse_and_create_resource",
        ("logical_id", "resource_json", "resources_map"),
    ),
    (
        "moto.cloudformation.parsing",
        "parse_and_update_resource",
        ("logical_id", "resource_json", "resources_map", "account_id", "region_name"),
    ),
    ("moto.cloudformation.parsing", "get_model_map", ()),
    ("moto.cloudformation.parsing", "clean_json", ("resource_json", "resources_map")),
    ("moto.cloudformation.parsing", "NULL_MODELS", None),
    ("moto.cloudformation.parsing", "Export", ("exporting_stack_id", "name", "value")),
    ("moto.cloudformation.parsing", "ResourceMap._ResourceMap__get_resources_in_dependency_order", ("self",)),
    (
        "moto.cloudformation.parsing",
        "ResourceMap._delete_resource",
        ("self", "parsed_resource", "resource_json"),
    ),
    ("moto.cloudformation.parsing", "ResourceMap.load_mapping", ("self",)),
    ("moto.cloudformation.parsing", "ResourceMap.load_parameters", ("self",)),
    ("moto.cloudformation.parsing", "ResourceMap.load_conditions", ("self",)),
    ("moto.cloudformation.parsing", "ResourceMap.validate_outputs", ("self",)),
    ("moto.cloudformation.custom_model", "CustomModel", None),
    (
        "moto.cloudformation.models",
        "Stack.__init__",
        (
            "self",
            "stack_id",
            "name",
            "template",
            "parameters",
            "account_id",
            "region_name",
            "notification_arns",
        ),
    ),
    ("moto.cloudformation.models", "Stack._parse_template", ("self",)),
    ("moto.cloudformation.models", "Stack.parse_template", ("template",)),
    ("moto.cloudformation.models", "Stack._create_resource_map", ("self",)),
    ("moto.cloudformation.models", "Stack._create_output_map", ("self",)),
    ("moto.cloudformation.models", "Stack.outputs", None),
    ("moto.cloudformation.models", "Stack.exports", None),
    ("moto.cloudformation.models", "Stack.stack_resources", None),
    (
        "moto.cloudformation.models",
        "Event.__init__",
        ("self", "stack_id", "stack_name", "logical_resource_id", "physical_resource_id", "resource_type"),
    ),
    ("moto.cloudformation.models", "Change", ("action", "logical_resource_id", "resource_type")),
    ("moto.cloudformation.models", "Event.sendToSns", ("self", "account_id", "region", "sns_topic_arns")),
    (
        "moto.cloudformation.models",
        "CloudFormationBackend.create_stack",
        ("self", "name", "template", "parameters", "notification_arns", "tags", "role_arn"),
    ),
    (
        "moto.cloudformation.models",
        "CloudFormationBackend.update_stack",
        ("self", "name", "template", "role_arn", "parameters", "tags"),
    ),
    ("moto.cloudformation.models", "CloudFormationBackend.delete_stack", ("self", "name_or_stack_id")),
    (
        "moto.cloudformation.models",
        "CloudFormationBackend.execute_change_set",
        ("self", "change_set_name", "stack_name"),
    ),
    (
        "moto.cloudformation.models",
        "CloudFormationBackend.create_change_set",
        ("self", "stack_name", "change_set_name", "template", "parameters", "description", "change_set_type"),
    ),
    ("moto.cloudformation.models", "CloudFormationBackend.describe_stacks", ("self", "name_or_stack_id")),
    ("moto.cloudformation.models", "CloudFormationBackend.list_stacks", ("self", "status_filter")),
    ("moto.cloudformation.models", "CloudFormationBackend.get_stack", ("self", "name_or_stack_id")),
    ("moto.cloudformation.models", "CloudFormationBackend.describe_stack_events", ("self", "stack_name")),
    ("moto.cloudformation.models", "generate_stack_id", ("stack_name", "region", "account")),
    ("moto.cloudformation.responses", "CloudFormationResponse.create_stack", ("self",)),
    ("moto.cloudformation.responses", "CloudFormationResponse.update_stack", ("self",)),
    ("moto.cloudformation.responses", "CloudFormationResponse.delete_stack", ("self",)),
    ("moto.cloudformation.responses", "CloudFormationResponse.execute_change_set", ("self",)),
    (
        "moto.cloudformation.responses",
        "CloudFormationResponse._validate_different_update",
        ("self", "incoming_params", "stack_body", "old_stack"),
    ),
    ("moto.cloudformation.exceptions", "ValidationError", ("name_or_id", "message")),
    ("moto.cloudformation.exceptions", "AlreadyExistsException", None),
    ("moto.cloudformation.exceptions", "CloudFormationError", None),
    ("moto.ec2.models.core", "TaggedEC2Resource", None),
    ("moto.ec2.models", "ec2_backends", None),
    ("moto.ec2.models", "EC2Backend.get_route_table", ("self", "route_table_id")),
    ("moto.ec2.models", "EC2Backend.disassociate_route_table", ("self", "association_id")),
    ("moto.ec2.models", "EC2Backend.delete_route", ("self", "route_table_id", "destination_cidr_block")),
    ("moto.ec2.models", "EC2Backend.delete_route_table", ("self", "route_table_id")),
    ("moto.ec2.models", "EC2Backend.detach_internet_gateway", ("self", "internet_gateway_id", "vpc_id")),
    ("moto.ec2.models", "EC2Backend.detach_vpn_gateway", ("self", "vpn_gateway_id", "vpc_id")),
    ("moto.ec2.models", "EC2Backend.delete_internet_gateway", ("self", "internet_gateway_id")),
    ("moto.ec2.models", "EC2Backend.delete_nat_gateway", ("self", "nat_gateway_id")),
    ("moto.core.utils", "utcnow", ()),
)


def check_moto_internals() -> None:
    """Fail loudly when a moto internal this module patches or calls has moved or changed signature."""
    import importlib

    problems: list[str] = []
    for module_name, dotted, params in _REQUIRED_INTERNALS:
        try:
            obj: Any = importlib.import_module(module_name)
            for part in dotted.split("."):
                obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{module_name}.{dotted} is missing ({exc})")
            continue
        if params is None:
            continue
        target = obj.__func__ if isinstance(obj, staticmethod | classmethod) else obj
        target = getattr(target, "__nexus_original__", target)
        try:
            names = list(inspect.signature(target).parameters)
        except (TypeError, ValueError) as exc:
            problems.append(f"{module_name}.{dotted} has no inspectable signature ({exc})")
            continue
        if names[: len(params)] != list(params):
            problems.append(
                f"{module_name}.{dotted} signature changed: expected {params}, found {tuple(names)}"
            )
    problems.extend(_check_instance_attributes())
    if problems:
        raise RuntimeError(
            "localaws.cloudformation relies on moto internals that changed (pin moto==5.2.5 or update the "
            "patch): " + "; ".join(problems)
        )


_INSTANCE_ATTRIBUTES = {
    "CloudFormationBackend": ("stacks", "deleted_stacks", "exports", "change_sets", "region_name", "account_id"),
    "Stack": (
        "stack_id", "name", "account_id", "region_name", "template", "template_dict", "parameters", "tags",
        "events", "resource_map", "output_map", "notification_arns", "description", "role_arn",
    ),
    "ResourceMap": (
        "_parsed_resources", "_resource_json_map", "_template", "input_parameters", "resolved_parameters",
        "tags", "stack_id", "_account_id", "_region_name", "lazy_condition_map", "no_echo_parameter_keys",
    ),
}  # fmt: skip


def _check_instance_attributes() -> list[str]:
    """Build a throw-away backend and stack and check the instance attributes this module reads."""
    from moto.cloudformation import models

    backend_cls: Any = models.CloudFormationBackend
    stack_cls: Any = models.Stack
    try:
        backend = backend_cls("us-east-1", "123456789012")
        stack = stack_cls(
            stack_id="arn:aws:cloudformation:us-east-1:123456789012:stack/canary/1",
            name="canary",
            template='{"Resources": {}}',
            parameters={},
            account_id="123456789012",
            region_name="us-east-1",
        )
    except Exception as exc:  # noqa: BLE001 - the constructors themselves changed
        return [f"cannot build a CloudFormationBackend/Stack any more ({type(exc).__name__}: {exc})"]
    objects = {"CloudFormationBackend": backend, "Stack": stack, "ResourceMap": stack.resource_map}
    return [
        f"{kind} instances no longer have attribute {attribute!r}"
        for kind, attributes in _INSTANCE_ATTRIBUTES.items()
        for attribute in attributes
        if not hasattr(objects[kind], attribute)
    ]


def install(simulation: StackSimulation) -> None:
    """Patch moto's CloudFormation process-wide; calling again only replaces the simulation settings."""
    with _LOCK:
        _SETTINGS["simulation"] = simulation
        if _ORIGINALS:
            return
        check_moto_internals()
        _patch()


# --------------------------------------------------------------------------------------------------------
# Typed access to moto (imported lazily: moto.cloudformation.parsing imports most of moto)
# --------------------------------------------------------------------------------------------------------


def _moto() -> Any:
    """The moto modules this module uses, as one namespace."""
    import types

    from moto.cloudformation import custom_model, exceptions, models, parsing, responses
    from moto.core import utils as core_utils
    from moto.ec2 import models as ec2_models
    from moto.ec2.models import core as ec2_core

    return types.SimpleNamespace(
        parsing=parsing,
        models=models,
        responses=responses,
        exceptions=exceptions,
        custom_model=custom_model,
        core_utils=core_utils,
        ec2_models=ec2_models,
        ec2_core=ec2_core,
    )


def _now() -> datetime:
    from moto.core.utils import utcnow

    now: datetime = utcnow()
    return now


def _validation_error(message: str) -> Exception:
    from moto.cloudformation.exceptions import ValidationError

    error: Exception = ValidationError(message=message)
    return error


_ERRORS: dict[str, type[Exception]] = {}


# --------------------------------------------------------------------------------------------------------
# Timeline model
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phase:
    """One stack-level status, visible from ``at`` on."""

    at: datetime
    status: str
    reason: str | None
    outputs: list[dict[str, Any]] | None


@dataclass
class _Step:
    """One event to publish: a resource or stack status change."""

    logical_id: str
    physical_id: str
    resource_type: str
    status: str
    reason: str | None = None
    properties: str | None = None
    stack_level: bool = False
    outputs: list[dict[str, Any]] | None = None


@dataclass
class _Op:
    """A CloudFormation operation in progress on this thread (collects resource events)."""

    resource_map: Any
    simulation: StackSimulation
    steps: list[_Step] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)


class _ResourceFailure(Exception):
    """A logical resource failed; its *_FAILED event has already been recorded."""

    def __init__(self, logical_id: str, resource_type: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


class _NestedStackFailed(Exception):
    """A nested stack created by a parent template ended in rollback."""


def _ops() -> list[_Op]:
    ops: list[_Op] | None = getattr(_LOCAL, "ops", None)
    if ops is None:
        ops = []
        _LOCAL.ops = ops
    return ops


@contextlib.contextmanager
def _active(op: _Op) -> Iterator[_Op]:
    _ops().append(op)
    try:
        yield op
    finally:
        _ops().pop()


def _find_op(resource_map: Any) -> _Op | None:
    for op in reversed(_ops()):
        if op.resource_map is resource_map:
            return op
    return None


def _token() -> str | None:
    token: str | None = getattr(_LOCAL, "token", None)
    return token


def _stack_step(stack: Any, status: str, reason: str | None = None, outputs: Any = None) -> _Step:
    return _Step(stack.name, stack.stack_id, _STACK_TYPE, status, reason, stack_level=True, outputs=outputs)


def _phases(stack: Any) -> list[_Phase]:
    phases: list[_Phase] = stack.__dict__.get("_nexus_phases") or []
    return phases


def _current_phase(stack: Any) -> _Phase | None:
    phases = _phases(stack)
    if not phases:
        return None
    now = _now()
    current = phases[0]
    for phase in phases:
        if phase.at > now:
            break
        current = phase
    return current


def _final_outputs(stack: Any) -> list[dict[str, Any]] | None:
    phases = _phases(stack)
    return phases[-1].outputs if phases else None


def _tokens(stack_or_change_set: Any) -> set[tuple[str, str]]:
    tokens: set[tuple[str, str]] = stack_or_change_set.__dict__.setdefault("_nexus_tokens", set())
    return tokens


def _schedule(stack: Any, steps: list[_Step], token: str | None, seconds: float) -> None:
    """Publish ``steps`` as events spread over ``seconds``, after anything already scheduled."""
    models = _moto().models
    phases = _phases(stack)
    start = max([_now(), *(p.at for p in phases[-1:])])
    count = len(steps)
    new_phases = list(phases)
    for index, step in enumerate(steps):
        at = start + timedelta(seconds=seconds * index / (count - 1)) if count > 1 else start
        event = models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=step.logical_id,
            physical_resource_id=step.physical_id,
            resource_type=step.resource_type,
            resource_status=step.status,
            resource_status_reason=step.reason,
            resource_properties=step.properties,
        )
        event.timestamp = at
        event.client_request_token = token
        stack.events.append(event)
        with contextlib.suppress(Exception):  # a missing notification topic must not break the stack
            event.sendToSns(stack.account_id, stack.region_name, stack.notification_arns)
        if step.stack_level:
            phase = _Phase(at, step.status, step.reason, step.outputs)
            new_phases.append(phase)
            eventbridge.stack_status_changed(
                stack, at, step.status, step.reason, token, _still_scheduled(stack, phase)
            )
    stack.__dict__["_nexus_phases"] = new_phases


def _still_scheduled(stack: Any, phase: _Phase) -> Callable[[], bool]:
    """For the event of ``phase``: false once the timeline dropped it (CancelUpdateStack truncates it)."""

    def check() -> bool:
        with _LOCK:
            return any(p is phase for p in _phases(stack))

    return check


# --------------------------------------------------------------------------------------------------------
# Resource classification and error text
# --------------------------------------------------------------------------------------------------------


def _is_emulated(resource_type: str) -> bool:
    """True when moto really creates this type (its model map knows it and it can finish locally)."""
    m = _moto()
    if resource_type.startswith("Custom::") or resource_type in m.parsing.NULL_MODELS:
        return False
    model = m.parsing.get_model_map().get(resource_type)
    return model is not None and not issubclass(model, m.custom_model.CustomModel)


def _unsupported_reason(resource_type: str) -> str:
    return f"resource type {resource_type} is not emulated by the local AWS"


def _describe(exc: BaseException) -> str:
    """A readable, AWS-like reason for an exception raised by moto while handling a resource."""
    if isinstance(exc, _ResourceFailure):
        return exc.reason
    if isinstance(exc, _NestedStackFailed | _OutputFailure):
        return str(exc)
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):  # botocore ClientError
        error = response["Error"]
        return f'Resource handler returned message: "{error.get("Message")}" (HandlerErrorCode: {error.get("Code")})'
    code = getattr(exc, "error_type", None) or getattr(exc, "code", None)
    message = getattr(exc, "message", None)
    if isinstance(code, str) and message:  # moto ServiceException / RESTError
        return f'Resource handler returned message: "{message}" (HandlerErrorCode: {code})'
    return (
        f"The local AWS failed on this resource ({type(exc).__name__}: {exc}); the template probably uses "
        "a property or reference that moto does not handle"
    )


def _is_service_error(exc: BaseException) -> bool:
    return isinstance(getattr(exc, "error_type", None) or getattr(exc, "code", None), str) or hasattr(
        exc, "response"
    )


def _physical_id(resource: Any) -> str:
    try:
        value = resource.physical_resource_id
    except Exception:  # noqa: BLE001 - moto models compute this lazily; never let it break an event
        return ""
    return "" if value is None else str(value)


def _properties(resource_json: Mapping[str, Any]) -> str | None:
    try:
        return json.dumps(resource_json.get("Properties") or {}, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return None


def _in_progress(logical_id: str, resource_type: str, verb: str, resource_json: Mapping[str, Any]) -> _Step:
    return _Step(logical_id, "", resource_type, f"{verb}_IN_PROGRESS", properties=_properties(resource_json))


# --------------------------------------------------------------------------------------------------------
# Patched parsing: per-resource events and failures
# --------------------------------------------------------------------------------------------------------


def _create_resource(
    logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
) -> Any:
    """Replacement for ``parsing.parse_and_create_resource`` (called lazily by ``ResourceMap[...]``)."""
    original = _ORIGINALS["parse_and_create_resource"]
    op = _find_op(resources_map)
    if op is None:
        return original(logical_id, resource_json, resources_map, account_id, region_name)
    condition = resource_json.get("Condition")
    if condition and not resources_map.lazy_condition_map[condition]:
        return None
    resource_type = str(resource_json.get("Type"))
    if not _is_emulated(resource_type):
        reason = _unsupported_reason(resource_type)
        if op.simulation.skip_unsupported:
            if logical_id not in op.skipped:
                op.skipped.add(logical_id)
                op.steps.append(
                    _Step(logical_id, "", resource_type, "CREATE_COMPLETE", f"WARNING: skipped: {reason}")
                )
            return None
        op.steps.append(_in_progress(logical_id, resource_type, "CREATE", resource_json))
        op.steps.append(_Step(logical_id, "", resource_type, "CREATE_FAILED", reason))
        raise _ResourceFailure(logical_id, resource_type, reason)
    properties_json = copy.deepcopy(resource_json)
    try:
        resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        if resource is None:
            raise RuntimeError("moto returned no resource")
    except _ResourceFailure:
        raise  # a resource this one refers to failed: this one never started
    except Exception as exc:
        reason = _describe(exc)
        op.steps.append(_in_progress(logical_id, resource_type, "CREATE", properties_json))
        op.steps.append(_Step(logical_id, "", resource_type, "CREATE_FAILED", reason))
        raise _ResourceFailure(logical_id, resource_type, reason) from exc
    op.steps.append(_in_progress(logical_id, resource_type, "CREATE", properties_json))
    op.created.append(logical_id)
    if not resource.is_created():
        reason = f"{_unsupported_reason(resource_type)} (it never finishes creating)"
        op.steps.append(_Step(logical_id, _physical_id(resource), resource_type, "CREATE_FAILED", reason))
        raise _ResourceFailure(logical_id, resource_type, reason)
    op.steps.append(_Step(logical_id, _physical_id(resource), resource_type, "CREATE_COMPLETE"))
    return resource


def _validate_outputs(self: Any) -> None:
    """``ResourceMap.validate_outputs`` that ignores outputs on types moto does not know.

    moto's version crashes with AttributeError on ``Fn::GetAtt`` of an unknown type; the resource itself
    fails (or is skipped) when the stack is created, which is where AWS-like reporting happens.
    """
    template = self._template
    outputs = template.get("Outputs") or {}
    kept = {}
    for key, output in outputs.items():
        target = (output or {}).get("Value") if isinstance(output, dict) else None
        get_att = target.get("Fn::GetAtt") if isinstance(target, dict) else None
        if isinstance(get_att, str):
            get_att = get_att.split(".", 1)
        if isinstance(get_att, list) and get_att:
            resource = self._resource_json_map.get(get_att[0])
            if not isinstance(resource, dict) or not _is_emulated(str(resource.get("Type"))):
                continue
        kept[key] = output
    self._template = {**template, "Outputs": kept}
    try:
        _ORIGINALS["validate_outputs"](self)
    finally:
        self._template = template


# --------------------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------------------


def _mentions(value: Any, names: set[str]) -> bool:
    text = json.dumps(value, default=str)
    return any(f'"{name}"' in text or f'"{name}.' in text for name in names)


def _as_output_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _compute_outputs(stack: Any, op: _Op) -> tuple[list[dict[str, Any]], list[Any]]:
    """Resolve outputs and exports now, once (moto resolves them lazily and can re-create resources)."""
    m = _moto()
    rm = stack.resource_map
    declared = stack.template_dict.get("Outputs") or {}
    outputs: list[dict[str, Any]] = []
    exports: list[Any] = []
    for key, output_json in declared.items():
        try:
            output = stack.output_map[key]
            export_json = (output_json or {}).get("Export")
            export_name = m.parsing.clean_json(export_json.get("Name"), rm) if export_json else None
        except Exception as exc:
            if op.skipped and _mentions(output_json, op.skipped):
                continue  # refers to a skipped resource: already reported by its WARNING event
            raise _OutputFailure(f"Output {key} could not be resolved: {_describe(exc)}") from exc
        if output is None:
            continue
        if output.value is None and op.skipped and _mentions(output_json, op.skipped):
            continue
        entry: dict[str, Any] = {"OutputKey": key, "OutputValue": _as_output_value(output.value)}
        if output.description:
            entry["Description"] = output.description
        if export_name:
            entry["ExportName"] = str(export_name)
            exports.append(m.parsing.Export(stack.stack_id, str(export_name), entry["OutputValue"]))
        outputs.append(entry)
    return outputs, exports


class _OutputFailure(Exception):
    """An output or export could not be resolved after the resources were created."""


def _register_exports(backend: Any, stack: Any, exports: list[Any]) -> None:
    """Replace ``stack``'s exports in the backend; raise _OutputFailure on a name clash (as AWS fails)."""
    for export in exports:
        existing = backend.exports.get(export.name)
        if existing is not None and existing.exporting_stack_id != stack.stack_id:
            raise _OutputFailure(
                f"Export with name {export.name} is already exported by stack {existing.exporting_stack_id}"
            )
    _drop_exports(backend, stack)
    for export in exports:
        backend.exports[export.name] = export
    stack.__dict__["_nexus_exports"] = list(exports)


def _drop_exports(backend: Any, stack: Any) -> None:
    for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
        backend.exports.pop(name, None)
    stack.__dict__["_nexus_exports"] = []


def _dependency_order(rm: Any) -> list[str]:
    order: list[str] = rm._ResourceMap__get_resources_in_dependency_order()
    return order


def _disassociate_subnet(ec2: Any, association: Any) -> None:
    route_table = ec2.get_route_table(association.route_table_id)
    for association_id, subnet_id in list(route_table._associations.items()):
        if subnet_id == association.subnet_id:
            ec2.disassociate_route_table(association_id)


def _delete_route(ec2: Any, route: Any) -> None:
    ec2.delete_route(
        route_table_id=route.route_table.id,
        destination_cidr_block=route.destination_cidr_block,
        destination_ipv6_cidr_block=getattr(route, "destination_ipv6_cidr_block", None),
    )


def _detach_gateway(ec2: Any, attachment: Any) -> None:
    if str(attachment.gateway_id).startswith("igw-"):
        ec2.detach_internet_gateway(internet_gateway_id=attachment.gateway_id, vpc_id=attachment.vpc_id)
    else:
        ec2.detach_vpn_gateway(vpn_gateway_id=attachment.gateway_id, vpc_id=attachment.vpc_id)


# moto cannot delete these networking types from CloudFormation, and the VPC then refuses to go away
# (DependencyViolation): delete them through the EC2 backend's API-level methods instead.
_EC2_DELETERS: dict[str, Callable[[Any, Any], None]] = {
    "AWS::EC2::SubnetRouteTableAssociation": _disassociate_subnet,
    "AWS::EC2::Route": _delete_route,
    "AWS::EC2::RouteTable": lambda ec2, table: ec2.delete_route_table(table.id),
    "AWS::EC2::VPCGatewayAttachment": _detach_gateway,
    "AWS::EC2::InternetGateway": lambda ec2, gateway: ec2.delete_internet_gateway(gateway.id),
    "AWS::EC2::NatGateway": lambda ec2, gateway: ec2.delete_nat_gateway(gateway.id),
}


def _moto_can_delete(resource_type: str) -> bool:
    model = _moto().parsing.get_model_map().get(resource_type)
    if model is None:
        return False
    concrete = not hasattr(model.delete_from_cloudformation_json, "__isabstractmethod__")
    return concrete or callable(getattr(model, "delete", None))


def _delete_one(rm: Any, resource: Any, resource_json: dict[str, Any]) -> str | None:
    """Delete one resource; returns a WARNING reason when the local AWS had to leave it in place."""
    resource_type = str(resource_json.get("Type"))
    deleter = _EC2_DELETERS.get(resource_type)
    if deleter is not None:
        deleter(_moto().ec2_models.ec2_backends[rm._account_id][rm._region_name], resource)
        return None
    rm._delete_resource(resource, resource_json)
    if _moto_can_delete(resource_type):
        return None
    return f"WARNING: the local AWS cannot delete resource type {resource_type}; it was left in place"


def _delete_resources(
    rm: Any, items: list[tuple[str, Any, dict[str, Any]]]
) -> tuple[list[_Step], list[str], list[str]]:
    """Delete (logical id, moto object, resource json) in order, retrying dependency failures.

    Returns the events, the logical ids that failed with an AWS-like error (DELETE_FAILED), and the ids
    that are gone from the stack (deleted, or skipped because moto crashed on them).
    """
    pending = list(items)
    errors: dict[str, Exception] = {}
    steps: list[_Step] = []
    gone: list[str] = []
    progress = True
    while pending and progress:
        progress = False
        for item in list(pending):
            name, resource, resource_json = item
            try:
                warning = _delete_one(rm, resource, resource_json)
            except Exception as exc:  # noqa: BLE001 - retried: another resource may still depend on it
                errors[name] = exc
                continue
            pending.remove(item)
            gone.append(name)
            progress = True
            resource_type = str(resource_json.get("Type"))
            steps.append(_Step(name, _physical_id(resource), resource_type, "DELETE_IN_PROGRESS"))
            steps.append(_Step(name, _physical_id(resource), resource_type, "DELETE_COMPLETE", warning))
    failed: list[str] = []
    for name, resource, resource_json in pending:
        resource_type = str(resource_json.get("Type"))
        error = errors[name]
        steps.append(_Step(name, _physical_id(resource), resource_type, "DELETE_IN_PROGRESS"))
        if _is_service_error(error):
            steps.append(
                _Step(name, _physical_id(resource), resource_type, "DELETE_FAILED", _describe(error))
            )
            failed.append(name)
        else:  # a moto crash, not something AWS would do: report it, do not strand the stack
            reason = (
                f"WARNING: the local AWS could not delete this resource and dropped it: {_describe(error)}"
            )
            steps.append(_Step(name, _physical_id(resource), resource_type, "DELETE_SKIPPED", reason))
            gone.append(name)
    return steps, failed, gone


def _live_resources(rm: Any, names: list[str]) -> list[tuple[str, Any, dict[str, Any]]]:
    items = []
    for name in names:
        resource = rm._parsed_resources.get(name)
        resource_json = rm._resource_json_map.get(name)
        if resource is None or isinstance(resource, str | int | float | list | dict) or resource_json is None:
            continue
        if getattr(resource, "logical_resource_id", name) != name:
            continue
        items.append((name, resource, resource_json))
    return items


def _created_order(stack: Any) -> list[str]:
    order: list[str] = stack.__dict__.setdefault("_nexus_created", [])
    return order


def _failure_reason(verb: str, failure: Exception) -> str:
    if isinstance(failure, _ResourceFailure):
        return (
            f"The following resource(s) failed to {verb}: [{failure.logical_id}]. "
            f"({failure.logical_id}: {failure.reason})"
        )
    return f"Stack operation failed: {_describe(failure)}"


def _run_create(backend: Any, stack: Any, token: str | None) -> bool:
    """Create every resource of ``stack`` now and schedule the AWS-like timeline. True on success."""
    m = _moto()
    simulation = _SETTINGS["simulation"]
    rm = stack.resource_map
    op = _Op(rm, simulation)
    steps = [_stack_step(stack, "CREATE_IN_PROGRESS", "User Initiated")]
    failure: Exception | None = None
    outputs: list[dict[str, Any]] = []
    with _active(op):
        try:
            template = stack.template_dict
            rm._template = template
            rm._resource_json_map = template.get("Resources") or {}
            rm.tags.update(
                {"aws:cloudformation:stack-name": stack.name, "aws:cloudformation:stack-id": stack.stack_id}
            )
            stack.description = template.get("Description")
            for name in _dependency_order(rm):
                instance = rm[name]
                if isinstance(instance, m.ec2_core.TaggedEC2Resource):
                    tags = {**rm.tags, "aws:cloudformation:logical-id": name}
                    ec2 = m.ec2_models.ec2_backends[stack.account_id][stack.region_name]
                    try:
                        ec2.create_tags([instance.physical_resource_id], tags)
                    except Exception as exc:
                        resource_type = str(rm._resource_json_map[name].get("Type"))
                        op.steps.append(
                            _Step(
                                name, _physical_id(instance), resource_type, "CREATE_FAILED", _describe(exc)
                            )
                        )
                        raise _ResourceFailure(name, resource_type, _describe(exc)) from exc
            outputs, exports = _compute_outputs(stack, op)
            _register_exports(backend, stack, exports)
        except Exception as exc:  # noqa: BLE001 - never let moto's exception escape: AWS reports it on the stack
            failure = exc
    steps.extend(op.steps)
    _created_order(stack).extend(op.created)
    if failure is None:
        steps.append(_stack_step(stack, "CREATE_COMPLETE", outputs=outputs or None))
        _schedule(stack, steps, token, simulation.stack_seconds)
        return True
    reason = _failure_reason("create", failure) + (
        " Rollback requested by user." if isinstance(failure, _ResourceFailure) else ""
    )
    steps.append(_stack_step(stack, "ROLLBACK_IN_PROGRESS", reason))
    items = _live_resources(rm, list(reversed(op.created)))
    delete_steps, failed, gone = _delete_resources(rm, items)
    for name in gone:
        rm._parsed_resources.pop(name, None)
    steps.extend(delete_steps)
    _drop_exports(backend, stack)
    steps.append(_stack_step(stack, "ROLLBACK_FAILED" if failed else "ROLLBACK_COMPLETE", reason))
    _schedule(stack, steps, token, simulation.stack_seconds)
    return False


def _effective_parameters(template_dict: Any, parameters: Mapping[str, Any] | None) -> dict[str, str]:
    """Declared parameters with their defaults, overridden by the given values, all as text."""

    def norm(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, default=str)

    declared = (template_dict or {}).get("Parameters") or {}
    defaults = {k: norm((v or {}).get("Default")) for k, v in declared.items()}
    return {**defaults, **{k: norm(v) for k, v in (parameters or {}).items()}}


def _pristine_template(stack: Any) -> dict[str, Any]:
    """The stack's template as submitted (moto mutates ``template_dict`` while creating resources)."""
    try:
        return _parse_template(stack.template)
    except Exception:  # noqa: BLE001 - fall back to moto's copy
        template: dict[str, Any] = stack.template_dict
        return template


def _noop(
    stack: Any, template_dict: Any, parameters: Mapping[str, Any], tags: Mapping[str, str] | None
) -> bool:
    """True when an update would change nothing (same template, effective parameters and tags)."""
    old_template = _pristine_template(stack)
    if old_template != template_dict:
        return False
    if _effective_parameters(old_template, stack.parameters) != _effective_parameters(
        template_dict, parameters
    ):
        return False
    return tags is None or dict(tags) == dict(stack.tags or {})


def _refers_to(value: Any, names: set[str]) -> bool:
    text = json.dumps(value, default=str)
    return any(f'"Ref": "{n}"' in text or "${" + n + "}" in text for n in names)


def _resource_diff(
    stack: Any, template_dict: dict[str, Any], parameters: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Add/Modify/Remove by logical id, comparing with the template as submitted (not moto's mutated copy)."""
    old_template = _pristine_template(stack)
    old = old_template.get("Resources") or {}
    new = template_dict.get("Resources") or {}
    before = _effective_parameters(old_template, stack.parameters)
    after = _effective_parameters(template_dict, parameters)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return {
        "Add": [n for n in new if n not in old],
        "Modify": [
            n for n in new if n in old and (new[n] != old[n] or (changed and _refers_to(new[n], changed)))
        ],
        "Remove": [n for n in old if n not in new],
    }


def _check_updatable(stack: Any) -> None:
    status = stack.status
    if status.endswith("_IN_PROGRESS") or status in _NOT_UPDATABLE_STATES:
        raise _validation_error(f"Stack:{stack.stack_id} is in {status} state and can not be updated.")


@dataclass
class _MapSnapshot:
    """What an update rollback restores on the stack and its ResourceMap."""

    template: Any
    resource_json_map: dict[str, Any]
    input_parameters: Any
    resolved_parameters: Any
    parsed: dict[str, Any]
    condition_map: Any
    no_echo: Any
    stack_template: Any
    stack_template_dict: Any
    stack_parameters: Any
    output_map: Any
    description: Any

    @classmethod
    def take(cls, stack: Any) -> _MapSnapshot:
        rm = stack.resource_map
        return cls(
            template=rm._template,
            resource_json_map=copy.deepcopy(rm._resource_json_map),
            input_parameters=rm.input_parameters,
            resolved_parameters=dict(rm.resolved_parameters),
            parsed=dict(rm._parsed_resources),
            condition_map=getattr(rm, "lazy_condition_map", None),
            no_echo=list(getattr(rm, "no_echo_parameter_keys", [])),
            stack_template=stack.template,
            stack_template_dict=stack.template_dict,
            stack_parameters=stack.parameters,
            output_map=stack.output_map,
            description=stack.description,
        )

    def restore(self, stack: Any) -> None:
        rm = stack.resource_map
        rm._template = self.template
        rm._resource_json_map = copy.deepcopy(self.resource_json_map)
        rm.input_parameters = self.input_parameters
        rm.resolved_parameters = dict(self.resolved_parameters)
        rm._parsed_resources = dict(self.parsed)
        rm.lazy_condition_map = self.condition_map
        rm.no_echo_parameter_keys = list(self.no_echo)
        stack.template = self.stack_template
        stack.template_dict = self.stack_template_dict
        stack.parameters = self.stack_parameters
        stack.output_map = self.output_map
        stack.description = self.description


def _update_modified(op: _Op, rm: Any, names: list[str]) -> list[str]:
    """Apply moto's update to ``names`` (multi-pass, as moto does). Returns the names updated."""
    original = _ORIGINALS["parse_and_update_resource"]
    pending = list(names)
    errors: dict[str, Exception] = {}
    updated: list[str] = []
    for _attempt in range(5):
        if not pending:
            break
        for name in list(pending):
            resource_json = rm._resource_json_map[name]
            resource_type = str(resource_json.get("Type"))
            if not _is_emulated(resource_type):
                errors[name] = _ResourceFailure(name, resource_type, _unsupported_reason(resource_type))
                continue
            previous = rm._parsed_resources.get(name)
            properties = _properties(resource_json)
            try:
                new = original(name, copy.deepcopy(resource_json), rm, rm._account_id, rm._region_name)
            except Exception as exc:  # noqa: BLE001 - retried in the next pass, as moto does for dependency order
                errors[name] = exc
                continue
            pending.remove(name)
            updated.append(name)
            reason = None
            if new is None:  # moto has no update for this type: keep the resource rather than drop it
                new = previous
                reason = f"WARNING: the local AWS cannot update resource type {resource_type}; left unchanged"
            rm._parsed_resources[name] = new
            op.steps.append(
                _Step(name, _physical_id(new), resource_type, "UPDATE_IN_PROGRESS", properties=properties)
            )
            op.steps.append(_Step(name, _physical_id(new), resource_type, "UPDATE_COMPLETE", reason))
    if pending:
        name = pending[0]
        resource_type = str(rm._resource_json_map[name].get("Type"))
        reason = _describe(errors[name])
        op.steps.append(_Step(name, "", resource_type, "UPDATE_IN_PROGRESS"))
        op.steps.append(_Step(name, "", resource_type, "UPDATE_FAILED", reason))
        raise _ResourceFailure(name, resource_type, reason)
    return updated


def _run_update(
    backend: Any,
    stack: Any,
    template: str,
    template_dict: dict[str, Any],
    parameters: dict[str, Any],
    role_arn: str | None,
    tags: dict[str, str] | None,
    token: str | None,
) -> bool:
    """Update ``stack`` now and schedule the AWS-like timeline (with rollback on failure)."""
    simulation = _SETTINGS["simulation"]
    rm = stack.resource_map
    snapshot = _MapSnapshot.take(stack)
    old_outputs = _final_outputs(stack)
    if "Resources" not in template_dict:
        raise _validation_error("Template format error: At least one Resources member must be defined.")
    diff = _resource_diff(stack, template_dict, parameters)
    try:  # parameter and condition errors are rejected synchronously, as AWS validates them first
        rm._template = template_dict
        rm.input_parameters = parameters
        rm.resolved_parameters = {}
        rm.load_mapping()
        rm.load_parameters()
        rm.load_conditions()
    except Exception as exc:
        snapshot.restore(stack)
        if isinstance(exc, _ERRORS["CloudFormationError"]):
            raise
        raise _validation_error(f"Template error: {type(exc).__name__}: {exc}") from exc
    rm._resource_json_map = template_dict["Resources"]
    op = _Op(rm, simulation)
    steps = [_stack_step(stack, "UPDATE_IN_PROGRESS", "User Initiated", old_outputs)]
    failure: Exception | None = None
    updated: list[str] = []
    outputs: list[dict[str, Any]] = []
    with _active(op):
        try:
            order = _dependency_order(rm)
            for name in [n for n in order if n in diff["Add"]]:
                _ = rm[name]
            updated = _update_modified(op, rm, [n for n in order if n in diff["Modify"]])
            stack.template = template
            stack.template_dict = template_dict
            stack.description = template_dict.get("Description")
            stack.output_map = stack._create_output_map()
            outputs, exports = _compute_outputs(stack, op)
            _register_exports(backend, stack, exports)
        except Exception as exc:  # noqa: BLE001 - reported on the stack, never raised out of UpdateStack
            failure = exc
    steps.extend(op.steps)
    if failure is None:
        steps.append(_stack_step(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", outputs=outputs or None))
        removed = [n for n in reversed(_created_order(stack)) if n in diff["Remove"]]
        removed += [n for n in diff["Remove"] if n not in removed]
        items = [
            (name, snapshot.parsed[name], snapshot.resource_json_map[name])
            for name in removed
            if snapshot.parsed.get(name) is not None and not isinstance(snapshot.parsed.get(name), str)
        ]
        delete_steps, _failed, gone = _delete_resources(rm, items)
        for name in diff["Remove"]:
            rm._parsed_resources.pop(name, None)
        steps.extend(delete_steps)
        order = _created_order(stack)
        order[:] = [n for n in order if n not in gone and n not in diff["Remove"]] + op.created
        steps.append(_stack_step(stack, "UPDATE_COMPLETE", outputs=outputs or None))
        stack.__dict__["_nexus_last_update"] = _UpdateRecord(
            snapshot, updated, list(op.created), dict(rm._parsed_resources), dict(rm._resource_json_map),
            old_outputs, dict(stack.tags or {}),
        )  # fmt: skip
        stack.role_arn = role_arn
        stack.parameters = parameters
        if tags is not None:
            stack.tags = tags
        _schedule(stack, steps, token, simulation.stack_seconds)
        return True

    reason = _failure_reason(_verb(op, failure), failure)
    steps.append(_stack_step(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason, old_outputs))
    current = dict(rm._parsed_resources)
    new_json = dict(rm._resource_json_map)
    snapshot.restore(stack)
    rollback_op = _Op(rm, simulation)
    for name in updated:
        rm._parsed_resources[name] = current.get(name)
    with _active(rollback_op), contextlib.suppress(_ResourceFailure):
        _update_modified(rollback_op, rm, [n for n in updated if n in rm._resource_json_map])
    steps.extend(rollback_op.steps)
    steps.append(_stack_step(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", outputs=old_outputs))
    items = [
        (n, current[n], new_json[n])
        for n in reversed(op.created)
        if current.get(n) is not None and n in new_json
    ]
    delete_steps, failed, _gone = _delete_resources(rm, items)
    steps.extend(delete_steps)
    stack.__dict__["_nexus_rollback_pending"] = [item for item in items if item[0] in failed]
    steps.append(
        _stack_step(
            stack, "UPDATE_ROLLBACK_FAILED" if failed else "UPDATE_ROLLBACK_COMPLETE", reason, old_outputs
        )
    )
    _schedule(stack, steps, token, simulation.stack_seconds)
    return False


def _verb(op: _Op, failure: Exception) -> str:
    """'create' when the failed resource was being added by the update, else 'update'."""
    if not isinstance(failure, _ResourceFailure):
        return "update"
    added = any(s.logical_id == failure.logical_id and s.status == "CREATE_FAILED" for s in op.steps)
    return "create" if added else "update"


def _run_delete(backend: Any, stack: Any, token: str | None) -> None:
    simulation = _SETTINGS["simulation"]
    rm = stack.resource_map
    outputs = _final_outputs(stack)
    steps = [_stack_step(stack, "DELETE_IN_PROGRESS", "User Initiated", outputs)]
    known = [n for n in reversed(_created_order(stack)) if n in rm._resource_json_map]
    try:
        everything = list(reversed(_dependency_order(rm)))
    except Exception:  # noqa: BLE001 - e.g. a DependsOn cycle: any order will do, deletion is retried
        everything = list(rm._resource_json_map)
    others = [n for n in everything if n not in known]
    items = []
    retain = set(getattr(_LOCAL, "retain", None) or ())
    for name, resource, resource_json in _live_resources(rm, known + others):
        if name in retain:
            steps.append(
                _Step(name, _physical_id(resource), str(resource_json.get("Type")), "DELETE_SKIPPED",
                      "Resource retained (RetainResources)")
            )  # fmt: skip
            rm._parsed_resources.pop(name, None)
            continue
        if resource_json.get("DeletionPolicy") == "Retain":
            steps.append(
                _Step(name, _physical_id(resource), str(resource_json.get("Type")), "DELETE_SKIPPED")
            )
            continue
        items.append((name, resource, resource_json))
    delete_steps, failed, gone = _delete_resources(rm, items)
    for name in gone:
        rm._parsed_resources.pop(name, None)
    steps.extend(delete_steps)
    if failed:
        reason = f"The following resource(s) failed to delete: [{', '.join(failed)}]. "
        steps.append(_stack_step(stack, "DELETE_FAILED", reason, outputs))
    else:
        _drop_exports(backend, stack)
        steps.append(_stack_step(stack, "DELETE_COMPLETE"))
    _schedule(stack, steps, token, simulation.stack_seconds)


def _settle(backend: Any) -> None:
    """Move stacks whose delete has completed (by now) out of the live stacks, as AWS does."""
    for stack_id, stack in list(backend.stacks.items()):
        if stack.status == "DELETE_COMPLETE":
            backend.stacks.pop(stack_id, None)
            backend.deleted_stacks[stack_id] = stack


# --------------------------------------------------------------------------------------------------------
# Replacement backend methods
# --------------------------------------------------------------------------------------------------------


def _backend_create_stack(
    self: Any,
    name: str,
    template: str,
    parameters: dict[str, Any],
    notification_arns: list[str] | None = None,
    tags: dict[str, str] | None = None,
    role_arn: str | None = None,
    enable_termination_protection: bool | None = False,
    timeout_in_mins: int | None = None,
    stack_policy_body: str | None = None,
) -> Any:
    m = _moto()
    with _LOCK:
        _settle(self)
        nested = bool(_ops())
        token = None if nested else _token()
        for existing in self.stacks.values():
            if existing.name == name:
                if token and ("CreateStack", token) in _tokens(existing):
                    return existing
                raise m.exceptions.AlreadyExistsException(f"Stack [{name}] already exists")
        stack_id = m.models.generate_stack_id(name, self.region_name, self.account_id)
        try:
            stack = m.models.Stack(
                stack_id=stack_id,
                name=name,
                template=template,
                parameters=parameters,
                account_id=self.account_id,
                region_name=self.region_name,
                notification_arns=notification_arns,
                tags=tags,
                role_arn=role_arn,
                cross_stack_resources=self.exports,
                enable_termination_protection=enable_termination_protection,
                timeout_in_mins=timeout_in_mins,
                stack_policy_body=stack_policy_body,
            )
        except m.exceptions.CloudFormationError:
            raise
        except Exception as exc:  # AWS rejects a broken template with a ValidationError
            raise _validation_error(f"Template format error: {type(exc).__name__}: {exc}") from exc
        self.stacks[stack_id] = stack
        if token:
            _tokens(stack).add(("CreateStack", token))
        if not _run_create(self, stack, token) and nested:
            raise _NestedStackFailed(
                f"Embedded stack {stack_id} was not successfully created: {stack.status}"
            )
        return stack


def _backend_update_stack(
    self: Any,
    name: str,
    template: str,
    role_arn: str | None,
    parameters: list[dict[str, Any]],
    tags: dict[str, str] | None,
) -> Any:
    with _LOCK:
        stack = self.get_stack(name)
        token = _token()
        if token and ("UpdateStack", token) in _tokens(stack):
            return stack  # a retry of an update that was already accepted
        _check_updatable(stack)
        resolved = _resolve_parameters(stack, parameters)
        template_dict = _parse_template(template)
        if _noop(stack, template_dict, resolved, tags):
            raise _validation_error("No updates are to be performed.")
        if token:
            _tokens(stack).add(("UpdateStack", token))
        _run_update(self, stack, template, template_dict, resolved, role_arn, tags, token)
        return stack


def _param_str(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return value if isinstance(value, str) else str(value)


def _resolve_parameters(stack: Any, incoming: list[dict[str, Any]]) -> dict[str, str]:
    """UpdateStack parameters as AWS resolves them (UsePreviousValue works for defaulted parameters too)."""
    resolved: dict[str, str] = {}
    previous = {**stack.resource_map.resolved_parameters, **(stack.parameters or {})}
    for parameter in incoming:
        key = parameter["ParameterKey"]
        if parameter.get("UsePreviousValue"):
            if key not in previous:
                raise _validation_error(
                    f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true for a "
                    "parameter key not in the previous template"
                )
            resolved[key] = _param_str(previous[key])
        elif "ParameterValue" in parameter:
            resolved[key] = _param_str(parameter["ParameterValue"])
    return resolved


def _parse_template(template: Any) -> dict[str, Any]:
    if isinstance(template, dict):
        return template
    try:
        parsed = _moto().models.Stack.parse_template(template)
    except Exception as exc:
        raise _validation_error(f"Template format error: {type(exc).__name__}: {exc}") from exc
    if not isinstance(parsed, dict):
        raise _validation_error("Template format error: the template is not a JSON or YAML object")
    return parsed


def _backend_delete_stack(self: Any, name_or_stack_id: str) -> None:
    with _LOCK:
        _settle(self)
        stack = self.stacks.get(name_or_stack_id)
        if stack is None:
            stack = next((s for s in self.stacks.values() if s.name == name_or_stack_id), None)
        if stack is None:
            return  # AWS: deleting a stack that does not exist (any more) succeeds
        token = _token()
        phases = _phases(stack)
        if phases and phases[-1].status in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
            return  # already being deleted: a retry
        if getattr(_LOCAL, "retain", None) and stack.status != "DELETE_FAILED":
            raise _validation_error(
                f"Invalid operation on stack [{stack.stack_id}]. RetainResources can only be specified "
                "when the stack is in the DELETE_FAILED state"
            )
        if token:
            _tokens(stack).add(("DeleteStack", token))
        _run_delete(self, stack, token)


def _find_change_set(backend: Any, change_set_name: str, stack_name: str | None) -> Any:
    change_set = backend.change_sets.get(change_set_name)
    if change_set is None:
        for candidate in backend.change_sets.values():
            if candidate.change_set_name == change_set_name and (
                not stack_name or stack_name in (candidate.stack_name, candidate.stack_id)
            ):
                change_set = candidate
    if change_set is None:
        raise _ERRORS["ChangeSetNotFound"](f"ChangeSet [{change_set_name}] does not exist")
    return change_set


def _backend_execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
    with _LOCK:
        _settle(self)
        change_set = _find_change_set(self, change_set_name, stack_name)
        token = _token()
        if token and ("ExecuteChangeSet", token) in _tokens(change_set):
            return
        if change_set.execution_status != "AVAILABLE":
            raise _ERRORS["InvalidChangeSetStatus"](
                f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status "
                f"of [{change_set.execution_status}]"
            )
        stack = self.stacks.get(change_set.stack_id)
        if stack is None:
            raise _validation_error(f"Stack with id {change_set.stack_id} does not exist")
        if token:
            _tokens(change_set).add(("ExecuteChangeSet", token))
        if change_set.change_set_type == "CREATE":
            stack.template = change_set.template
            stack.parameters = change_set.parameters
            try:
                stack._parse_template()
                stack.resource_map = stack._create_resource_map()
                stack.output_map = stack._create_output_map()
            except _ERRORS["CloudFormationError"]:
                raise
            except Exception as exc:
                raise _validation_error(f"Template format error: {type(exc).__name__}: {exc}") from exc
            ok = _run_create(self, stack, token)
        else:
            _check_updatable(stack)
            ok = _run_update(
                self,
                stack,
                change_set.template,
                _parse_template(change_set.template),
                {k: _param_str(v) for k, v in (change_set.parameters or {}).items()},
                change_set.role_arn,
                change_set.tags or None,
                token,
            )
        change_set.execution_status = "EXECUTE_COMPLETE" if ok else "EXECUTE_FAILED"


def _backend_create_change_set(self: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    with _LOCK:
        _settle(self)
        review = _review_stack(self, kwargs)
        change_set_id, stack_id = _ORIGINALS["create_change_set"](self, *args, **kwargs)
        change_set = self.change_sets[change_set_id]
        if review is not None:  # AWS reuses a stack in REVIEW_IN_PROGRESS; moto made a second one
            self.stacks.pop(stack_id, None)
            change_set.stack, change_set.stack_id = review, review.stack_id
            stack_id = review.stack_id
        if change_set.change_set_type != "UPDATE":
            return str(change_set_id), str(stack_id)
        stack = change_set.stack
        parameters = {k: _param_str(v) for k, v in (change_set.parameters or {}).items()}
        diff = _resource_diff(stack, change_set.template_dict, parameters)
        old_resources = _pristine_template(stack).get("Resources") or {}
        new_resources = change_set.template_dict.get("Resources") or {}
        change_set.changes = [
            _moto().models.Change(
                action=action,
                logical_resource_id=name,
                resource_type=(new_resources if action != "Remove" else old_resources)[name].get("Type"),
            )
            for action in ("Add", "Modify", "Remove")
            for name in diff[action]
        ]
        before = _effective_parameters(_pristine_template(stack), stack.parameters)
        after = _effective_parameters(change_set.template_dict, parameters)
        for change in change_set.changes:
            if change.action == "Modify":
                name = change.logical_resource_id
                change.replacement = _replacement(
                    old_resources[name], new_resources[name], before, after, set(new_resources)
                )
        if change_set.status != "FAILED" and _noop(stack, change_set.template_dict, parameters, None):
            change_set.status = "FAILED"
            change_set.execution_status = "UNAVAILABLE"
            change_set.status_reason = _NO_CHANGES_REASON
        return str(change_set_id), str(stack_id)


def _review_stack(backend: Any, kwargs: Mapping[str, Any]) -> Any:
    """For a CREATE change set: the stack of that name left in REVIEW_IN_PROGRESS by an earlier one."""
    if kwargs.get("change_set_type") != "CREATE":
        return None
    for stack in backend.stacks.values():
        if stack.name == kwargs.get("stack_name"):
            if stack.status != "REVIEW_IN_PROGRESS":
                raise _moto().exceptions.AlreadyExistsException(
                    f"Stack [{stack.name}] already exists and cannot be created again with the changeSet"
                )
            return stack
    return None


def _settling(name: str) -> Callable[..., Any]:
    original = _ORIGINALS[name]

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            _settle(self)
            return original(self, *args, **kwargs)

    method.__name__ = name
    method.__nexus_original__ = original  # type: ignore[attr-defined]
    return method


def _backend_describe_stack_events(self: Any, stack_name: str) -> list[Any]:
    with _LOCK:
        stack = self.get_stack(stack_name)
        now = _now()
        return [event for event in stack.events if event.timestamp <= now]


# --------------------------------------------------------------------------------------------------------
# Replacement Stack properties (time-based view)
# --------------------------------------------------------------------------------------------------------


def _status_get(self: Any) -> str:
    phase = _current_phase(self)
    if phase is not None:
        return phase.status
    raw: str = self.__dict__.get("_nexus_raw_status", self.__dict__.get("status", "CREATE_PENDING"))
    return raw


def _status_set(self: Any, value: str) -> None:
    self.__dict__["_nexus_raw_status"] = value
    phases = _phases(self)
    if phases:  # moto code changed the status directly: it takes effect now
        at = max(_now(), phases[-1].at)
        self.__dict__["_nexus_phases"] = [*phases, _Phase(at, value, None, phases[-1].outputs)]


def _status_reason_get(self: Any) -> str | None:
    phase = _current_phase(self)
    return phase.reason if phase is not None else None


def _outputs_get(self: Any) -> list[dict[str, Any]] | None:
    phase = _current_phase(self)
    if phase is None:
        outputs: list[dict[str, Any]] | None = _ORIGINALS["Stack.outputs"].fget(self)
        return outputs
    return [dict(o) for o in phase.outputs] if phase.outputs else None


def _exports_get(self: Any) -> list[Any]:
    if "_nexus_exports" in self.__dict__:
        exports: list[Any] = list(self.__dict__["_nexus_exports"])
        return exports
    original: list[Any] = _ORIGINALS["Stack.exports"].fget(self)
    return original


def _stack_resources_get(self: Any) -> list[Any]:
    """Only resources that exist: never lazily create one, never return the None of a dropped one."""
    rm = self.resource_map
    return [resource for _name, resource, _json in _live_resources(rm, list(rm._resource_json_map))]


# --------------------------------------------------------------------------------------------------------
# Replacement response methods (ClientRequestToken reaches the backend through a thread-local)
# --------------------------------------------------------------------------------------------------------


def _with_token(name: str) -> Callable[[Any], Any]:
    original = _ORIGINALS[f"response.{name}"]

    def method(self: Any) -> Any:
        token = self._get_param("ClientRequestToken")
        if token is not None and not _TOKEN_PATTERN.match(str(token)):
            raise _validation_error(
                f"1 validation error detected: Value '{token}' at 'clientRequestToken' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9][-a-zA-Z0-9]*"
            )
        previous = getattr(_LOCAL, "token", None)
        _LOCAL.token = token
        try:
            return original(self)
        finally:
            _LOCAL.token = previous

    method.__name__ = name
    method.__nexus_original__ = original  # type: ignore[attr-defined]
    return method


def _skip_moto_update_check(self: Any, incoming_params: Any, stack_body: Any, old_stack: Any) -> None:
    """moto's string comparison is replaced by the backend's own no-op check (see :func:`_noop`)."""


# --------------------------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------------------------


def _patch() -> None:
    m = _moto()
    parsing, models, responses, exceptions = m.parsing, m.models, m.responses, m.exceptions
    backend_cls, stack_cls, response_cls = (
        models.CloudFormationBackend,
        models.Stack,
        responses.CloudFormationResponse,
    )

    base: type[Exception] = exceptions.CloudFormationError
    _ERRORS.update(
        InvalidChangeSetStatus=type(
            "InvalidChangeSetStatusError", (base,), {"code": "InvalidChangeSetStatus"}
        ),
        ChangeSetNotFound=type("ChangeSetNotFoundError", (base,), {"code": "ChangeSetNotFound"}),
        CloudFormationError=exceptions.CloudFormationError,
    )
    _ORIGINALS.update(
        parse_and_create_resource=parsing.parse_and_create_resource,
        parse_and_update_resource=parsing.parse_and_update_resource,
        validate_outputs=parsing.ResourceMap.validate_outputs,
        create_change_set=backend_cls.create_change_set,
        get_stack=backend_cls.get_stack,
        describe_stacks=backend_cls.describe_stacks,
        list_stacks=backend_cls.list_stacks,
    )
    _ORIGINALS["Stack.outputs"] = inspect.getattr_static(stack_cls, "outputs")
    _ORIGINALS["Stack.exports"] = inspect.getattr_static(stack_cls, "exports")
    for name in ("create_stack", "update_stack", "delete_stack", "execute_change_set"):
        _ORIGINALS[f"response.{name}"] = getattr(response_cls, name)
    replacements = {
        _backend_create_stack: backend_cls.create_stack,
        _backend_update_stack: backend_cls.update_stack,
        _backend_delete_stack: backend_cls.delete_stack,
        _backend_execute_change_set: backend_cls.execute_change_set,
        _backend_create_change_set: backend_cls.create_change_set,
        _backend_describe_stack_events: backend_cls.describe_stack_events,
        _validate_outputs: parsing.ResourceMap.validate_outputs,
        _skip_moto_update_check: response_cls._validate_different_update,
    }
    for replacement, replaced in replacements.items():
        replacement.__nexus_original__ = replaced  # type: ignore[attr-defined]

    _create_resource.__nexus_original__ = parsing.parse_and_create_resource  # type: ignore[attr-defined]
    parsing.parse_and_create_resource = _create_resource
    parsing.ResourceMap.validate_outputs = _validate_outputs

    stack_cls.status = property(_status_get, _status_set)
    stack_cls.stack_status_reason = property(_status_reason_get)
    stack_cls.outputs = property(_outputs_get)
    stack_cls.exports = property(_exports_get)
    stack_cls.stack_resources = property(_stack_resources_get)

    backend_cls.create_stack = _backend_create_stack
    backend_cls.update_stack = _backend_update_stack
    backend_cls.delete_stack = _backend_delete_stack
    backend_cls.execute_change_set = _backend_execute_change_set
    backend_cls.create_change_set = _backend_create_change_set
    backend_cls.describe_stack_events = _backend_describe_stack_events
    for name in ("get_stack", "describe_stacks", "list_stacks"):
        setattr(backend_cls, name, _settling(name))

    for name in ("create_stack", "update_stack", "delete_stack", "execute_change_set"):
        setattr(response_cls, name, _with_token(name))
    response_cls._validate_different_update = _skip_moto_update_check
    _patch_lifecycle(backend_cls, response_cls)


# --------------------------------------------------------------------------------------------------------
# Stack lifecycle: CancelUpdateStack, ContinueUpdateRollback, RetainResources, paginated events, and
# Replacement in change sets (moto has none of them). Canaries: tests/localaws/test_lifecycle_patches.py.
# --------------------------------------------------------------------------------------------------------

_EVENTS_PAGE = 100  # DescribeStackEvents page size on AWS

# Properties whose change replaces the resource (AWS's resource reference, "Update requires: Replacement"),
# for the types moto emulates. A type not listed here is answered "Conditional": the local AWS does not
# know, and "Conditional" is what a reviewer should then treat with care.
_REPLACING_PROPERTIES: dict[str, frozenset[str]] = {
    "AWS::DynamoDB::Table": frozenset({"TableName", "KeySchema", "LocalSecondaryIndexes"}),
    "AWS::SQS::Queue": frozenset({"QueueName", "FifoQueue"}),
    "AWS::SNS::Topic": frozenset({"TopicName", "FifoTopic"}),
    "AWS::S3::Bucket": frozenset({"BucketName", "ObjectLockEnabled"}),
    "AWS::IAM::Role": frozenset({"RoleName", "Path"}),
    "AWS::IAM::Policy": frozenset(),
    "AWS::IAM::ManagedPolicy": frozenset({"ManagedPolicyName", "Path"}),
    "AWS::Logs::LogGroup": frozenset({"LogGroupName"}),
    "AWS::ECR::Repository": frozenset({"RepositoryName", "EncryptionConfiguration"}),
    "AWS::ECS::Cluster": frozenset({"ClusterName"}),
    "AWS::ECS::Service": frozenset({"ServiceName", "Cluster", "LaunchType", "Role", "LoadBalancers"}),
    "AWS::EC2::VPC": frozenset({"CidrBlock", "Ipv4IpamPoolId", "Ipv4NetmaskLength"}),
    "AWS::EC2::Subnet": frozenset({"VpcId", "CidrBlock", "AvailabilityZone", "AvailabilityZoneId"}),
    "AWS::EC2::SecurityGroup": frozenset({"GroupDescription", "GroupName", "VpcId"}),
    "AWS::EC2::InternetGateway": frozenset(),
    "AWS::EC2::RouteTable": frozenset({"VpcId"}),
    "AWS::EC2::NatGateway": frozenset({"SubnetId", "AllocationId", "ConnectivityType"}),
    "AWS::Route53::RecordSet": frozenset({"Name", "HostedZoneId", "HostedZoneName"}),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": frozenset({"Name", "Scheme", "Type"}),
    "AWS::Lambda::Function": frozenset({"FunctionName"}),
}
_ALWAYS_REPLACED = frozenset({"AWS::ECS::TaskDefinition"})  # every property change makes a new revision


def _resolve_static(value: Any, parameters: Mapping[str, str], resources: set[str]) -> tuple[bool, Any]:
    """(known, value) with parameter Refs resolved; unknown when it depends on a resource or a function."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name in resources or name not in parameters:
                return False, value
            return True, parameters[name]
        if any(key.startswith("Fn::") for key in value):
            return False, value
        resolved = {}
        for key, item in value.items():
            known, resolved[key] = _resolve_static(item, parameters, resources)
            if not known:
                return False, value
        return True, resolved
    if isinstance(value, list):
        items = []
        for item in value:
            known, resolved_item = _resolve_static(item, parameters, resources)
            if not known:
                return False, value
            items.append(resolved_item)
        return True, items
    return True, value


def _replacement(
    old_json: Mapping[str, Any],
    new_json: Mapping[str, Any],
    before: Mapping[str, str],
    after: Mapping[str, str],
    resources: set[str],
) -> str:
    """AWS's ``Replacement`` for a modified resource: "True", "False" or "Conditional"."""
    resource_type = str(new_json.get("Type"))
    if resource_type != str(old_json.get("Type")) or resource_type in _ALWAYS_REPLACED:
        return "True"
    replacing = _REPLACING_PROPERTIES.get(resource_type)
    if replacing is None:
        return "Conditional"
    old_props = old_json.get("Properties") or {}
    new_props = new_json.get("Properties") or {}
    answer = "False"
    for name in replacing:
        old_known, old_value = _resolve_static(old_props.get(name), before, resources)
        new_known, new_value = _resolve_static(new_props.get(name), after, resources)
        if old_known and new_known:
            if old_value != new_value:
                return "True"
        elif old_props.get(name) != new_props.get(name):
            answer = "Conditional"  # depends on a value only known while the update runs
    return answer


@dataclass
class _UpdateRecord:
    """What the last successful update changed, so a CancelUpdateStack can roll it back."""

    snapshot: _MapSnapshot
    updated: list[str]
    created: list[str]
    parsed_after: dict[str, Any]
    json_after: dict[str, Any]
    old_outputs: list[dict[str, Any]] | None
    old_tags: dict[str, str]


def _truncate_future(stack: Any) -> None:
    """Forget the scheduled, not yet visible part of the timeline (a cancel interrupts it)."""
    now = _now()
    stack.events[:] = [event for event in stack.events if event.timestamp <= now]
    stack.__dict__["_nexus_phases"] = [phase for phase in _phases(stack) if phase.at <= now]


def _backend_cancel_update_stack(self: Any, stack_name: str) -> None:
    with _LOCK:
        stack = self.get_stack(stack_name)
        token = _token()
        if token and ("CancelUpdateStack", token) in _tokens(stack):
            return
        record: _UpdateRecord | None = stack.__dict__.get("_nexus_last_update")
        if stack.status != "UPDATE_IN_PROGRESS" or record is None:
            raise _validation_error(
                f"CancelUpdateStack cannot be called from current stack status {stack.status}"
            )
        if token:
            _tokens(stack).add(("CancelUpdateStack", token))
        _truncate_future(stack)
        simulation = _SETTINGS["simulation"]
        rm = stack.resource_map
        reason = "Stack update cancelled"
        steps = [_stack_step(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason, record.old_outputs)]
        record.snapshot.restore(stack)
        stack.tags = record.old_tags
        rollback_op = _Op(rm, simulation)
        for name in record.updated:
            rm._parsed_resources[name] = record.parsed_after.get(name)
        with _active(rollback_op), contextlib.suppress(_ResourceFailure):
            _update_modified(rollback_op, rm, [n for n in record.updated if n in rm._resource_json_map])
        steps.extend(rollback_op.steps)
        steps.append(
            _stack_step(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", outputs=record.old_outputs)
        )
        items = [
            (n, record.parsed_after[n], record.json_after[n])
            for n in reversed(record.created)
            if record.parsed_after.get(n) is not None and n in record.json_after
        ]
        delete_steps, failed, _gone = _delete_resources(rm, items)
        steps.extend(delete_steps)
        stack.__dict__["_nexus_rollback_pending"] = [item for item in items if item[0] in failed]
        stack.__dict__.pop("_nexus_last_update", None)
        final = "UPDATE_ROLLBACK_FAILED" if failed else "UPDATE_ROLLBACK_COMPLETE"
        steps.append(_stack_step(stack, final, reason, record.old_outputs))
        _schedule(stack, steps, token, simulation.stack_seconds)


def _backend_continue_update_rollback(self: Any, stack_name: str, resources_to_skip: list[str]) -> None:
    with _LOCK:
        stack = self.get_stack(stack_name)
        token = _token()
        if token and ("ContinueUpdateRollback", token) in _tokens(stack):
            return
        if stack.status != "UPDATE_ROLLBACK_FAILED":
            raise _validation_error(
                f"Stack {stack.stack_id} is in {stack.status} state and can not continue update rollback."
            )
        pending: list[tuple[str, Any, dict[str, Any]]] = stack.__dict__.get("_nexus_rollback_pending") or []
        unknown = sorted(set(resources_to_skip) - {name for name, _r, _j in pending})
        if unknown:
            raise _validation_error(
                f"Resources {unknown} cannot be skipped: they are not in a failed state in the rollback"
            )
        if token:
            _tokens(stack).add(("ContinueUpdateRollback", token))
        simulation = _SETTINGS["simulation"]
        outputs = _final_outputs(stack)
        steps = [_stack_step(stack, "UPDATE_ROLLBACK_IN_PROGRESS", "User Initiated", outputs)]
        retry = []
        for name, resource, resource_json in pending:
            if name in resources_to_skip:
                steps.append(
                    _Step(name, _physical_id(resource), str(resource_json.get("Type")), "DELETE_SKIPPED",
                          "Resource skipped during rollback (ResourcesToSkip)")
                )  # fmt: skip
                continue
            retry.append((name, resource, resource_json))
        steps.append(_stack_step(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", outputs=outputs))
        delete_steps, failed, _gone = _delete_resources(stack.resource_map, retry)
        steps.extend(delete_steps)
        stack.__dict__["_nexus_rollback_pending"] = [item for item in retry if item[0] in failed]
        final = "UPDATE_ROLLBACK_FAILED" if failed else "UPDATE_ROLLBACK_COMPLETE"
        steps.append(_stack_step(stack, final, None, outputs))
        _schedule(stack, steps, token, simulation.stack_seconds)


def _token_scope(response: Any) -> contextlib.AbstractContextManager[None]:
    """Publish the request's ClientRequestToken to the backend (as ``_with_token`` does)."""

    @contextlib.contextmanager
    def scope() -> Iterator[None]:
        token = response._get_param("ClientRequestToken")
        if token is not None and not _TOKEN_PATTERN.match(str(token)):
            raise _validation_error(f"Value '{token}' at 'clientRequestToken' failed to satisfy constraint")
        previous = getattr(_LOCAL, "token", None)
        _LOCAL.token = token
        try:
            yield
        finally:
            _LOCAL.token = previous

    return scope()


def _patch_lifecycle(backend_cls: Any, response_cls: Any) -> None:
    from moto.core.responses import ActionResult, EmptyResult

    def cancel_update_stack(self: Any) -> Any:
        with _token_scope(self):
            self.cloudformation_backend.cancel_update_stack(self._get_param("StackName"))
        return EmptyResult()

    def continue_update_rollback(self: Any) -> Any:
        with _token_scope(self):
            self.cloudformation_backend.continue_update_rollback(
                self._get_param("StackName"), list(self._get_param("ResourcesToSkip") or [])
            )
        return EmptyResult()

    token_delete = response_cls.delete_stack

    def delete_stack(self: Any) -> Any:
        previous = getattr(_LOCAL, "retain", None)
        _LOCAL.retain = list(self._get_param("RetainResources") or [])
        try:
            return token_delete(self)
        finally:
            _LOCAL.retain = previous

    def describe_stack_events(self: Any) -> Any:
        events = self.cloudformation_backend.describe_stack_events(self._get_param("StackName"))[::-1]
        after = self._get_param("NextToken")
        start = 0
        if after:
            ids = [str(event.event_id) for event in events]
            start = ids.index(after) + 1 if after in ids else len(ids)
        page = events[start : start + _EVENTS_PAGE]
        more = start + _EVENTS_PAGE < len(events)
        return ActionResult(
            {"StackEvents": page, "NextToken": str(page[-1].event_id) if more and page else None}
        )

    delete_stack.__nexus_original__ = token_delete  # type: ignore[attr-defined]
    backend_cls.cancel_update_stack = _backend_cancel_update_stack
    backend_cls.continue_update_rollback = _backend_continue_update_rollback
    response_cls.cancel_update_stack = cancel_update_stack
    response_cls.continue_update_rollback = continue_update_rollback
    response_cls.delete_stack = delete_stack
    response_cls.describe_stack_events = describe_stack_events
