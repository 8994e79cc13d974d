"""Notifications: telling a rollout's owner of each status in ``ANNOUNCED_ROLLOUT``, once per change.

Apart because every concern that changes a rollout's status announces it, through the same claim.
"""

from __future__ import annotations

import hashlib
import logging

from chalicelib.domain.errors import DeployerError, TransientAwsError, UnprocessableRequest
from chalicelib.domain.rollouts import ANNOUNCED_ROLLOUT, Rollout, RolloutView
from chalicelib.service.notifications import NotificationRequest, NotificationService
from chalicelib.service.rollouts.core import RolloutCore

logger = logging.getLogger(__name__)


class RolloutNotices(RolloutCore):
    def _notifier(self, request: NotificationRequest | None) -> NotificationService | None:
        if request is None:
            return None
        if self._notifications is None:
            raise UnprocessableRequest(
                "Rollout notifications are not available in this version of the service.",
                code="NOTIFICATIONS_NOT_AVAILABLE",
                hint="Leave notifications out.",
                details={"field": "notifications"},
            )
        return self._notifications

    def _announce(self, rollout: Rollout) -> None:
        """Tell the rollout's owner of its status, once per status change (``Rollout.notice_key``).

        The items are read before the claim is taken, so a failure here (raised, and the step
        retried) leaves the claim free. Delivery itself raises only when AWS throttled a channel
        (SNS's Publish, or the read of the webhook's secret): the claim is freed again and the step
        fails with TransientAwsError, so that its retry announces (a channel that got the message
        gets it again: the webhook's X-Nexus-Delivery is the same). Any other failure is dropped.
        """
        config = rollout.notifications
        if config is None or self._notifications is None or rollout.status not in ANNOUNCED_ROLLOUT:
            return
        view = RolloutView(rollout, self._store.list_items(rollout.rollout_id))
        key = rollout.notice_key
        if not self._store.claim_notice(rollout.rollout_id, key):
            return  # announced by an earlier run of this step
        message = view.outcome_message()
        kind = str(message["type"])
        throttled = self._notifications.send(
            config,
            message,
            subject=f"NexusAI Deployer: rollout of {rollout.stack_name} {rollout.status.value.lower()}",
            attributes={"type": kind, "rollout_id": rollout.rollout_id},
            delivery_id=hashlib.sha256(f"{rollout.rollout_id}#{key}".encode()).hexdigest()[:32],
            log_fields={"rollout_id": rollout.rollout_id, "notice": key},
        )
        if throttled:
            try:
                self._store.release_notice(rollout.rollout_id, key)
            except DeployerError as error:  # the claim stays taken: no retry will send it
                logger.warning(
                    "rollout announcement lost",
                    extra={"rollout_id": rollout.rollout_id, "error_code": error.code},
                )
                return
            raise TransientAwsError(
                f"The {rollout.status.value} announcement of rollout {rollout.rollout_id} was throttled on "
                f"{', '.join(throttled)}; the step's retry sends it again."
            )
        logger.info("rollout announced", extra={"rollout_id": rollout.rollout_id, "notice": key})
