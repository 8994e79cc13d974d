"""Change sets: CreateChangeSet (changes with Replacement) and ExecuteChangeSet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localaws.cloudformation.diff import (
    _effective_parameters,
    _noop,
    _pristine_template,
    _replacement,
    _resource_diff,
)
from localaws.cloudformation.intake import prepare
from localaws.cloudformation.operations import _run_create, _run_update, _settle
from localaws.cloudformation.state import (
    _ERRORS,
    _LOCK,
    _NO_CHANGES_REASON,
    _ORIGINALS,
    _moto,
    _validation_error,
)
from localaws.cloudformation.timeline import _token, _tokens
from localaws.cloudformation.validation import (
    _check_service_role,
    _check_updatable,
    _param_str,
    _parse_template,
    template_error,
)


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
            stack.role_arn = change_set.role_arn or stack.role_arn
            stack.template = change_set.template
            stack.parameters = change_set.parameters
            try:
                stack._parse_template()
                stack.resource_map = stack._create_resource_map()
                stack.output_map = stack._create_output_map()
            except _ERRORS["CloudFormationError"]:
                raise
            except Exception as exc:
                raise _validation_error(template_error(exc)) from exc
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


def _backend_describe_change_set(self: Any, change_set_name: str) -> Any:
    """moto's, but a name it does not know is CloudFormation's ChangeSetNotFound (moto: a ValidationError)."""
    with _LOCK:
        return _find_change_set(self, change_set_name, None)


def _backend_delete_change_set(self: Any, change_set_name: str) -> None:
    """moto's, but a name it does not know is deleted already: CloudFormation answers 200, as reported by
    tools that measured it (moto raised UnboundLocalError: an InternalFailure 500, which botocore retries,
    and then a crash of the caller)."""
    with _LOCK:
        for key, candidate in list(self.change_sets.items()):
            if change_set_name in (key, candidate.change_set_name):
                del self.change_sets[key]
                return


def _backend_create_change_set(self: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    with _LOCK:
        _settle(self)
        _check_service_role(kwargs.get("role_arn"))
        review = _review_stack(self, kwargs)
        kwargs["template"], _template = prepare(
            kwargs.get("template"), kwargs.get("parameters") or {}, self.region_name
        )
        try:
            change_set_id, stack_id = _ORIGINALS["create_change_set"](self, *args, **kwargs)
        except _ERRORS["CloudFormationError"]:
            raise
        except Exception as exc:  # moto failed to read the template: never answer with its exception
            raise _validation_error(template_error(exc)) from exc
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
                    old_resources[name],
                    new_resources[name],
                    before,
                    after,
                    set(new_resources),
                    self.region_name,
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
