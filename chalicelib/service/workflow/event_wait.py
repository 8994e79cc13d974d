"""Waiting for stack events (``completion`` "events"): WaitForStackEvent's Lambda parks its task token
until an event with one of the operation's ClientRequestTokens releases it; where events were found
lost lately, operations poll instead.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from chalicelib.domain.errors import STALE_OPERATION, DeployerError
from chalicelib.domain.model import Deployment
from chalicelib.observability import carried_keys
from chalicelib.service.workflow.locking import StackLocking
from chalicelib.service.workflow.values import StepInput

CANCEL_SUFFIX = "-cancel"  # ClientRequestToken suffixes: one operation, several stack requests
RECREATE_SUFFIX = "-recreate"

logger = logging.getLogger(__name__)


def expected_tokens(operation_token: str, phase: str) -> tuple[str, ...]:
    """The ClientRequestTokens whose stack events end the wait of an operation in ``phase``."""
    if phase == "recreate_delete":
        return (operation_token + RECREATE_SUFFIX,)
    if phase == "cancelling":
        return (operation_token, operation_token + CANCEL_SUFFIX)
    return (operation_token,)


class EventWaiting(StackLocking):
    def await_stack_event(self, step: StepInput, task_token: str) -> dict[str, Any]:
        """WaitForStackEvent's Lambda: park the task token where the stack's events will find it.

        Renews the lock's lease (the wait is shorter than the lease: see Settings). If the event this
        wait is for came first, or a cancel was requested meanwhile, the task is released right away.
        """
        try:
            deployment = self._current(step)
            operation = deployment.operation
            if operation.running:
                self._renew_lease(deployment, step)
        except DeployerError as error:
            if error.code != STALE_OPERATION:
                raise
            # It ended while this step ran: its wait's task timed out meanwhile (a throttled call held
            # the step up), and the reconcile that followed ended the operation (and another may have
            # begun). Nothing to wait for, as below; raising would count on the Lambda errors alarm for
            # an operation that ended as it should.
            self._completion.release(task_token, "ended")
            return {"waiting": False}
        if not operation.running:  # nothing to wait for: PollStack then finds it ended
            self._completion.release(task_token, "ended")
            return {"waiting": False}
        key = deployment.stack_key
        tokens = expected_tokens(operation.client_request_token, operation.phase)
        # The stack's events then log as this operation, under its correlation id.
        if not self._completion.await_stack(key, step.operation_id, task_token, tokens, carried_keys()):
            return {"waiting": False}  # the event it waits for came first: released already
        if self._cancel_requested(deployment):
            self._completion.release(task_token, "cancel")
            return {"waiting": False}
        return {"waiting": True}

    def _completion_for(self, step: StepInput, deployment: Deployment) -> StepInput:
        """Poll where stack events were found lost lately, rather than wait for them in vain.

        A region whose forwarding rule is missing (the bootstrap template forwards the events of the
        region it was deployed in) or whose events the service's bus refuses would otherwise cost
        every operation there the whole event wait. One lost event marks the account and region for
        ``events_lost_seconds``; after that, one operation waits for events again, and so finds out
        whether they arrive now.
        """
        if step.completion != "events":
            return step
        if self._completion.events_lost(deployment.account_id, deployment.region):
            return replace(step, completion="poll")
        return step

    def _events_lost(self, deployment: Deployment) -> None:
        """The stack left the status waited on, yet no stack event released the wait: it was lost, or
        never sent."""
        if self._settings.events_lost_seconds <= 0:
            return  # configured to keep waiting for events (each lost one costs its operation the wait)
        self._completion.mark_events_lost(
            deployment.account_id, deployment.region, self._settings.events_lost_seconds
        )
        logger.warning(
            "no Stack Status Change event released the wait of operation %s in account %s, region %s; "
            "operations there poll for %d s. Deploy the bootstrap template's forwarding rule in that "
            "region and allow the account to put events on the service's bus.",
            deployment.operation.operation_id,
            deployment.account_id,
            deployment.region,
            self._settings.events_lost_seconds,
        )
