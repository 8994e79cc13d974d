"""Step handlers of ``statemachine/rollout.asl.json``: parse the state, one RolloutService call.

Errors leave a step exactly as in ``chalicelib/steps/handlers.py`` (whose ``run_step`` shape this
reuses): the DeployerError's class name as the Lambda ``errorType``, its code, message and hint as
a JSON ``errorMessage``, which ``RecordItemFailure``/``RecordRolloutFailure`` read back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.composition import Services
from chalicelib.domain.errors import DeployerError
from chalicelib.service.rollouts import RolloutService
from chalicelib.service.workflow import error_from_state
from chalicelib.service.workflow.values import catch_may_resume, wait_timed_out


def _run(services: Services, call: Callable[[RolloutService], dict[str, Any]]) -> dict[str, Any]:
    try:
        return call(services.rollouts)
    except DeployerError as error:
        raise type(error)(
            json.dumps(error.as_dict()), code=error.code, hint=error.hint, details=error.details
        ) from error


def _ids(event: dict[str, Any]) -> tuple[str, str]:
    return str(event["tenant_id"]), str(event["rollout_id"])


def next_wave(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    tenant, rollout = _ids(event)
    last = (event.get("wave") or {}).get("index")
    return _run(services, lambda r: r.next_wave(tenant, rollout, None if last is None else int(last)))


def start_item(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """StartItem's Lambda (``lambda:invoke.waitForTaskToken``): its payload adds the task token."""
    tenant, rollout = _ids(event)
    token = event.get("task_token")
    return _run(
        services,
        lambda r: r.start_item(tenant, rollout, int(event["item_id"]), str(token) if token else None),
    )


def _poll_wait(event: dict[str, Any]) -> int:
    """The last poll's interval, or (no poll yet: right after StartItem) the rollout's initial one."""
    return int((event.get("progress") or {}).get("wait_seconds", event.get("wait_seconds", 0)))


def poll_item(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    tenant, rollout = _ids(event)
    wait, timed_out = _poll_wait(event), wait_timed_out(event)
    return _run(services, lambda r: r.poll_item(tenant, rollout, int(event["item_id"]), wait, timed_out))


def await_item(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    tenant, rollout = _ids(event)
    token = str(event["task_token"])
    return _run(services, lambda r: r.await_item(tenant, rollout, int(event["item_id"]), token))


def record_item_failure(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    tenant, rollout = _ids(event)
    resumable = catch_may_resume(event)  # else its item is FAILED with the step's error, as then
    info = error_from_state(event.get("error") or {})
    wait, index = _poll_wait(event), int(event["item_id"])
    return _run(services, lambda r: r.record_item_failure(tenant, rollout, index, info, wait, resumable))


def record_rollout_failure(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    tenant, rollout = _ids(event)
    info = error_from_state(event.get("error") or {})
    return _run(services, lambda r: r.record_rollout_failure(tenant, rollout, info))
