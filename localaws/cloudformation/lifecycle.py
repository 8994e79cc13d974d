"""Stack lifecycle operations moto lacks: CancelUpdateStack, ContinueUpdateRollback,
RetainResources on DeleteStack and paginated DescribeStackEvents.

Canaries: ``tests/localaws/test_lifecycle_patches.py``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from localaws.cloudformation.handlers import acting_for
from localaws.cloudformation.operations import _UpdateRecord
from localaws.cloudformation.resources import (
    _delete_resources,
    _physical_id,
    _ResourceFailure,
    _update_modified,
)
from localaws.cloudformation.state import _LOCAL, _LOCK, _SETTINGS, _TOKEN_PATTERN, _validation_error
from localaws.cloudformation.timeline import (
    _active,
    _final_outputs,
    _Op,
    _schedule,
    _stack_step,
    _Step,
    _token,
    _tokens,
    _truncate_future,
)

_EVENTS_PAGE = 100  # DescribeStackEvents page size on AWS


def _backend_cancel_update_stack(self: Any, stack_name: str) -> None:
    with _LOCK:
        stack = self.get_stack(stack_name)
        with acting_for(stack.role_arn):
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
        with acting_for(stack.role_arn):
            token = _token()
            if token and ("ContinueUpdateRollback", token) in _tokens(stack):
                return
            if stack.status != "UPDATE_ROLLBACK_FAILED":
                raise _validation_error(
                    f"Stack {stack.stack_id} is in {stack.status} state and can not continue update rollback."
                )
            pending: list[tuple[str, Any, dict[str, Any]]] = (
                stack.__dict__.get("_nexus_rollback_pending") or []
            )
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
