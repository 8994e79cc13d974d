"""The announcement of an operation's end: the execution's last step tells the rollout item that
started the operation (``announce_end``, ``rollout_item``) that it may stop waiting.
"""

from __future__ import annotations

import logging

from chalicelib.domain.errors import DeployerError, TransientAwsError
from chalicelib.domain.model import Deployment
from chalicelib.domain.rollouts import ItemEndNews, ItemRef
from chalicelib.service.workflow.core import WorkflowCore
from chalicelib.service.workflow.values import StepInput

logger = logging.getLogger(__name__)


class EndAnnouncement(WorkflowCore):
    def _announce_end(self, deployment: Deployment, step: StepInput) -> None:
        """The execution's last step: the rollout item waiting for this operation's end may stop waiting.

        Only operations a rollout started announce (``announce_end``). With the item's id in the input
        (``rollout_item``) this step first records the item's end from the record in hand, and the
        release says so (``item_ended``): the item's Map iteration then ends with no PollItem. The task
        released is the StartItem task whose token the item's record holds; if that task is gone, the
        waiter record's (two conditional writes). Runs again when the step is retried; a second announcement
        finds no task and no waiter, or one whose reconcile sees the same ended record.
        """
        operation = deployment.operation
        if step.announce_end and operation.operation_id == step.operation_id and not operation.running:
            item = step.rollout_item
            news = self._end_item(deployment, item)
            # The waiting task's token is the item record's; an execution an earlier version started
            # carries it in its input instead.
            started_by = news.task_token or (item.task_token if item else None)
            self._completion.operation_ended(
                operation.operation_id, operation.status.value, item if news.ended else None, started_by
            )

    def _end_item(self, deployment: Deployment, item: ItemRef | None) -> ItemEndNews:
        """Record the rollout item's end. AWS still throttling fails the step, whose Retry records the
        end and releases the item's task (had it gone on, no one would release that task, which would
        wait out StartItem's timeout, 12 minutes by default, holding a max_concurrent slot). Any other
        refusal does not fail the deployment's last step: the item's own PollItem reads it instead."""
        if item is None or self._item_ends is None:
            return ItemEndNews(False)
        try:
            return self._item_ends.end_from_deployment(deployment.tenant_id, item, deployment)
        except TransientAwsError:
            raise
        except DeployerError as error:
            logger.warning(
                "rollout item end not recorded; its workflow reads it",
                extra={"rollout_id": item.rollout_id, "item": item.index, "error_code": error.code},
            )
            return ItemEndNews(False)
