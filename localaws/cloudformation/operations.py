"""Stack operations: CreateStack, UpdateStack and DeleteStack run now, scheduled as a timeline."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localaws.cloudformation.diff import _effective_parameters, _noop, _pristine_template, _resource_diff
from localaws.cloudformation.handlers import acting_for
from localaws.cloudformation.intake import prepare
from localaws.cloudformation.outputs import _compute_outputs, _drop_exports, _register_exports
from localaws.cloudformation.replacement import update_resources
from localaws.cloudformation.resources import (
    _delete_resources,
    _dependency_order,
    _describe,
    _live_resources,
    _NestedStackFailed,
    _physical_id,
    _ResourceFailure,
    _update_modified,
)
from localaws.cloudformation.state import (
    _ERRORS,
    _LOCAL,
    _LOCK,
    _ORIGINALS,
    _SETTINGS,
    _moto,
    _now,
    _validation_error,
)
from localaws.cloudformation.timeline import (
    _active,
    _final_outputs,
    _Op,
    _ops,
    _phases,
    _schedule,
    _stack_step,
    _Step,
    _token,
    _tokens,
)
from localaws.cloudformation.validation import (
    _check_service_role,
    _check_updatable,
    _resolve_parameters,
    template_error,
)


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
    with acting_for(stack.role_arn):
        return _create_now(backend, stack, token)


def _create_now(backend: Any, stack: Any, token: str | None) -> bool:
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
    """Update ``stack`` now and schedule the AWS-like timeline (with rollback on failure).

    Without a ``role_arn`` the stack keeps the service role it has, as on AWS.
    """
    role_arn = role_arn or stack.role_arn
    with acting_for(role_arn):
        simulation = _SETTINGS["simulation"]
        rm = stack.resource_map
        snapshot = _MapSnapshot.take(stack)
        old_outputs = _final_outputs(stack)
        if "Resources" not in template_dict:
            raise _validation_error("Template format error: At least one Resources member must be defined.")
        diff = _resource_diff(stack, template_dict, parameters)
        old_template = _pristine_template(stack)
        before = _effective_parameters(old_template, stack.parameters)
        after = _effective_parameters(template_dict, parameters)
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
            raise _validation_error(template_error(exc)) from exc
        rm._resource_json_map = template_dict["Resources"]
        op = _Op(rm, simulation)
        steps = [_stack_step(stack, "UPDATE_IN_PROGRESS", "User Initiated", old_outputs)]
        failure: Exception | None = None
        updated: list[str] = []
        outputs: list[dict[str, Any]] = []
        with _active(op):
            try:
                order = _dependency_order(rm)
                changing = [n for n in order if n in diff["Add"] or n in diff["Modify"]]
                old_resources = old_template.get("Resources") or {}
                update_resources(op, rm, changing, old_resources, before, after, updated)
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
            steps.extend(_delete_replaced(rm, op, snapshot.resource_json_map))
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
            for n in [*reversed(op.created), *reversed(op.replaced)]
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


def _delete_replaced(rm: Any, op: _Op, old_json: dict[str, Any]) -> list[_Step]:
    """The cleanup of a successful update: the old physical resources of replaced ones go."""
    items = [(name, old, old_json[name]) for name, old in op.replaced.items() if old is not None]
    steps, _failed, _gone = _delete_resources(rm, items)
    return steps


def _verb(op: _Op, failure: Exception) -> str:
    """'create' when the failed resource was being added by the update, else 'update'."""
    if not isinstance(failure, _ResourceFailure):
        return "update"
    added = any(s.logical_id == failure.logical_id and s.status == "CREATE_FAILED" for s in op.steps)
    return "create" if added else "update"


def _run_delete(backend: Any, stack: Any, token: str | None) -> None:
    with acting_for(stack.role_arn):
        _delete_now(backend, stack, token)


def _delete_now(backend: Any, stack: Any, token: str | None) -> None:
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
        _check_service_role(role_arn)
        template, _template_dict = prepare(template, parameters, self.region_name)
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
            raise _validation_error(template_error(exc)) from exc
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
        _check_service_role(role_arn)
        resolved = _resolve_parameters(stack, parameters)
        template, template_dict = prepare(template, resolved, self.region_name)
        if _noop(stack, template_dict, resolved, tags):
            raise _validation_error("No updates are to be performed.")
        if token:
            _tokens(stack).add(("UpdateStack", token))
        _run_update(self, stack, template, template_dict, resolved, role_arn, tags, token)
        return stack


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
