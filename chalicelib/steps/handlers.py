"""Step handlers: parse the state, one WorkflowService call, return the next state fragment.

A DeployerError leaves a step with its class name as the Lambda ``errorType`` (the definition's
``Retry`` matches ``TransientAwsError`` by that name) and its code, message and hint as a JSON
``errorMessage``, which the ``RecordFailure`` step reads back into the deployment's ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.composition import Services
from chalicelib.domain.errors import DeployerError
from chalicelib.service.workflow import StepInput, WorkflowService
from chalicelib.service.workflow.values import catch_may_resume

Step = Callable[[WorkflowService, StepInput], dict[str, Any]]


def run_step(services: Services, event: dict[str, Any], step: Step) -> dict[str, Any]:
    parsed = StepInput.from_event(event)
    try:
        return step(services.workflow, parsed)
    except DeployerError as error:
        raise type(error)(
            json.dumps(error.as_dict()), code=error.code, hint=error.hint, details=error.details
        ) from error


def acquire_lock(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    return run_step(services, event, WorkflowService.acquire_lock)


def start_stack_operation(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    return run_step(services, event, WorkflowService.start_stack_operation)


def poll_stack(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    return run_step(services, event, WorkflowService.poll_stack)


def release_lock(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    return run_step(services, event, WorkflowService.release_lock)


def record_failure(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    resumable = catch_may_resume(event)
    error = event.get("error") or {}
    # In a row: a resume's progress carries the count, and a poll that works replaces it.
    resumes = int((event.get("progress") or {}).get("resumes") or 0)

    def record(workflow: WorkflowService, step: StepInput) -> dict[str, Any]:
        return workflow.record_failure(step, error, resumable=resumable, resumes=resumes)

    return run_step(services, event, record)


def await_stack_event(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """WaitForStackEvent's Lambda (``lambda:invoke.waitForTaskToken``): its payload adds the task token."""
    task_token = str(event.get("task_token") or "")
    if not task_token:
        raise ValueError("WaitForStackEvent's payload carries no task_token")
    return run_step(services, event, lambda workflow, step: workflow.await_stack_event(step, task_token))
