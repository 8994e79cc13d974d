"""Fleet rollouts: one template to many (target, region) items, in waves, as ordinary deployments.

Why each item is an ordinary deployment: ``DeploymentService.create``/``update`` already hold the
per-stack lock, the one-live-deployment-per-stack claim, the idempotent stack calls and the
explained failures. A rollout only decides *when* each item starts and *whether* it may start,
and reads back how it ended. So a rollout item's failure is exactly the failure its deployment
records (account, region, resource, reason), and ``GET /deployments/{id}`` shows each item too.

How it runs (``statemachine/rollout.asl.json``): ``NextWave`` closes the wave that just ran and
picks the next; a Map runs that wave's item ids, each iteration ``StartItem`` (which refuses to
start once the rollout is cancelled or over its failure tolerance), then waits for the operation
to end. With completion by events (the default) the iteration waits (StartItem's own task token,
or ``WaitForItemEnd``) until the deployment workflow's last step, which was given the item's id,
records the item's end from the deployment record it holds (``end_from_deployment``) and releases
the wait saying so (``item_ended``): the iteration then ends with no further step, and a Map slot
costs no transitions while its stack works. Any other release, and a wait that timed out (a lost
release), go to ``PollItem``, which reads the deployment record and ends the item. With ``poll`` it reads the
record every 1 s x 1.5 up to the poll maximum. A failed canary wave pauses the rollout and ends the
execution; ``resume`` starts a new execution at the next wave. Nothing but ids and poll intervals
travels in the execution's state.

Notifications: POST /rollouts takes the ``notifications`` a deployment takes, checked (no I/O)
before anything else and stored (the webhook secret in Secrets Manager) only once the whole rollout
is valid. Every status in ``ANNOUNCED_ROLLOUT`` is then announced through ``NotificationService``:
once per ``Rollout.notice_key``, claimed by a conditional write *after* the status is saved. A step
that Lambda retries after the message went out finds the claim taken; one retried because the
announcement was lost (the status saved, the claim not made) re-reads the final status, and
``next_wave``/``record_rollout_failure`` announce it then.

Why StartItem writes nothing of the item's own: starting an operation (``DeploymentService.create``/
``update``/``apply``) writes the operation in one transaction, and that transaction also records the item
IN_PROGRESS with the operation's ids, only while the item is PENDING (``ItemStart.write``). So an
item is IN_PROGRESS exactly when its operation exists: a retry of the step (Lambda retried it after the
work was done) reads the item and takes up that operation, never starting a second one (which would be
refused with OPERATION_IN_PROGRESS or STACK_LOCKED, or deploy twice); an item the rollout's end cancelled
meanwhile refuses the transaction whole, so nothing starts for it. One read (the item and its rollout
together) and no other write per start. A PENDING item can still carry ``start_attempted_at``: from a
start whose StartExecution stayed throttled (``_reopen_unstarted``) or from an earlier version, which wrote
it as a marker before the start; such an item takes up the operation its stack's deployment began after
the marker, in the rollout's mode, with the rollout's configuration (``config_hash``), if there is one.

Modules, by concern (each a class over :class:`.core.RolloutCore`, the state and helpers they share;
``RolloutService`` here is composed of them): :mod:`.creation` (POST /rollouts: checks, items, waves),
:mod:`.lifecycle` (reading a rollout; cancel, pause, resume, apply), :mod:`.waves` (the execution's
start, NextWave, the rollout's end), :mod:`.starts` (StartItem), :mod:`.item_ends` (PollItem,
WaitForItemEnd, ``end_from_deployment``), :mod:`.failures` (RecordRolloutFailure, the execution's end,
settling a rollout that ended early) and :mod:`.notices` (announcements). A concern's class inherits
from the concerns whose methods it calls, so that each module type-checks on its own.
"""

from __future__ import annotations

from chalicelib.service.rollouts.core import RolloutRecords
from chalicelib.service.rollouts.creation import NewRollout, RolloutCreation, TargetChoice
from chalicelib.service.rollouts.lifecycle import RolloutLifecycle
from chalicelib.service.rollouts.waves import START_SECONDS

# START_SECONDS is exported for tests/package, which pins StartItem's Lambda timeout to it. It is read
# in .waves: a test that changes it patches chalicelib.service.rollouts.waves.START_SECONDS.

__all__ = ["START_SECONDS", "NewRollout", "RolloutRecords", "RolloutService", "TargetChoice"]


class RolloutService(RolloutCreation, RolloutLifecycle):
    """Fleet rollouts: every concern above, over one store, one set of collaborators and one spec cache."""
