"""The timeline: an operation's events and stack statuses, published over the simulated duration.

moto does the work inside the API call; what callers see is the part of this timeline that has elapsed
(the ``Stack`` status/reason/outputs properties installed by :mod:`.patches` read it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from localaws import eventbridge
from localaws.cloudformation.simulated import event_note as simulated_event_note
from localaws.cloudformation.state import _LOCAL, _LOCK, _ORIGINALS, _STACK_TYPE, StackSimulation, _moto, _now


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
    replaced: dict[str, Any] = field(default_factory=dict)  # logical id -> the old physical resource


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
    simulated = stack.resource_map.__dict__.get("_nexus_simulated") or set()
    for index, step in enumerate(steps):
        if not step.stack_level and (step.logical_id, step.resource_type) in simulated:
            step.reason = simulated_event_note(step.resource_type, step.reason)
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


def _truncate_future(stack: Any) -> None:
    """Forget the scheduled, not yet visible part of the timeline (a cancel interrupts it)."""
    now = _now()
    stack.events[:] = [event for event in stack.events if event.timestamp <= now]
    stack.__dict__["_nexus_phases"] = [phase for phase in _phases(stack) if phase.at <= now]
