"""Starting an operation's execution once its record is written: the execution's input, StartExecution
tried again through throttles, and the record marked FAILED when it cannot start (never a PENDING
operation that nothing will move)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import DeployerError, TransientAwsError
from chalicelib.domain.model import (
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    ErrorInfo,
    EventSource,
    OperationStatus,
    Outcome,
    utc_now,
)
from chalicelib.observability import bind, correlation_id
from chalicelib.service.deployments.core import DeploymentCore
from chalicelib.service.deployments.values import ItemStart
from chalicelib.service.executions import (
    ITEM_START_BUDGET_SECONDS,
    START_BUDGET_SECONDS,
    start_through_throttles,
)
from chalicelib.service.operation_metrics import count_ended, count_started

logger = logging.getLogger(__name__)


def log_as(deployment: Deployment) -> None:
    """From here on, this invocation's lines are those of ``deployment``'s operation: its tenant (which
    an event's handler may not know) and its ids."""
    bind(
        tenant_id=deployment.tenant_id,
        deployment_id=deployment.deployment_id,
        operation_id=deployment.operation.operation_id,
    )


class DeploymentStarts(DeploymentCore):
    def _start(self, deployment: Deployment, for_item: ItemStart | None = None) -> Deployment:
        """Start the operation's execution. ``for_item``: a rollout item waits for its end, so the
        execution's last step records the item's end and announces it (``announce_end``).
        The execution carries the correlation id of what started it (chalicelib/observability.py)."""
        operation_id = deployment.operation.operation_id
        log_as(deployment)
        execution_input: dict[str, Any] = {
            "tenant_id": deployment.tenant_id,
            "deployment_id": deployment.deployment_id,
            "operation_id": deployment.operation.operation_id,
            "wait_seconds": self._poll.initial_seconds,
            "max_wait_seconds": self._poll.max_seconds,
            "completion": self._poll.completion,
            "event_timeout_seconds": self._poll.event_timeout_seconds,
            "announce_end": for_item is not None,
            **({"rollout_item": for_item.ref.as_input()} if for_item is not None else {}),
            "correlation_id": correlation_id() or operation_id,
        }
        try:
            self._start_execution(operation_id, execution_input, item_start=for_item is not None)
        except DeployerError as error:
            # Never leave a PENDING record that nothing will move: record why it did not start.
            failed = replace(
                deployment,
                status=DeploymentStatus.FAILED,
                operation=replace(deployment.operation, status=OperationStatus.FAILED, ended_at=utc_now()),
                error=ErrorInfo(error.code, error.message, error.hint),
            )
            event = DeploymentEvent(
                utc_now(), EventSource.ORCHESTRATOR, "FAILED", deployment.stack_name, error.message
            )
            if self._store.save_deployment(failed, final_event=event):
                count_ended(self._metrics, failed)
            raise
        count_started(self._metrics, deployment)
        accepted = DeploymentEvent(
            utc_now(),
            EventSource.ORCHESTRATOR,
            "ACCEPTED",
            deployment.stack_name,
            f"{deployment.operation.action.value} ({deployment.operation.mode.value}) accepted as "
            f"{deployment.operation.operation_id}",
        )
        try:
            self._store.append_events(deployment.deployment_id, [accepted])
        except TransientAwsError as error:
            # The operation runs: a throttled history line must not answer 503 (a client's retry of an
            # operation that started would then be refused as a conflict). The workflow's events follow.
            logger.warning("ACCEPTED event of %s not written: %s", operation_id, error.message)
        return replace(deployment, outcome=Outcome.STARTED)

    def _start_execution(
        self, operation_id: str, execution_input: dict[str, Any], *, item_start: bool
    ) -> None:
        """StartExecution, named after the operation, tried again through throttles
        (chalicelib/service/executions.py): the operation's record is written. ``item_start``: in a
        rollout's StartItem step, which has more time than an API request."""
        budget = ITEM_START_BUDGET_SECONDS if item_start else START_BUDGET_SECONDS
        start_through_throttles(self._workflow, operation_id, execution_input, budget_seconds=budget)
