"""Deployments as the API sees them: accept a change, record it, hand it to the workflow.

Every write here happens only after the whole request was validated, and every operation is one
execution of the state machine, named after the operation id. The execution input holds ids and
poll settings only; the template and parameters stay in the store.

Lifecycle decisions made here, before any AWS call (the workflow re-checks the live stack):
- ``skip_unchanged``: each create/update carries a ``config_hash`` (chalicelib/domain/fingerprint.py);
  when it equals the deployment's ``last_success_hash`` and the stack is at that configuration (ACTIVE,
  or FAILED with the stack rolled back to it), nothing is written and no execution starts: the caller
  gets the deployment back with ``outcome=SKIPPED``. For a create, "the stack's last success" is the
  live deployment that already holds the same (target, region, stack name).
- ``mode=plan``: the operation computes a change set and stops (operation PLANNED); an update plan
  leaves the deployment's status as it was (the stack did not change), a create plan leaves it PLANNED.
  ``apply`` executes exactly that change set, and only while nothing else ran on the deployment since
  the plan and the configuration is still the planned one (else 409 PLAN_STALE).
- a stack in a status that only one action can fix is refused with that action as the hint
  (chalicelib/domain/stack_status.py ``Remedy``).

Modules, by concern: :mod:`.values` (what callers send: ``NewDeployment``, ``DeploymentChange``,
``PollSettings``, ``ItemStart``), :mod:`.templates` (a template as an operation keeps it),
:mod:`.noecho_secrets` (NoEcho values kept while their records are written), :mod:`.core` (the shared
state, reads, and writing an operation), :mod:`.checks` (refusals before any AWS call), :mod:`.starts`
(starting an operation's execution), :mod:`.create` and :mod:`.lifecycle` (update, apply, cancel,
continue-rollback, delete, forget). ``DeploymentService`` is composed from the last two.
"""

from __future__ import annotations

from chalicelib.service.deployments.create import DeploymentCreation
from chalicelib.service.deployments.lifecycle import DeploymentLifecycle
from chalicelib.service.deployments.noecho_secrets import check_keeps_secrets, secrets_kept
from chalicelib.service.deployments.values import DeploymentChange, ItemStart, NewDeployment, PollSettings
from chalicelib.service.executions import START_ROUNDS


class DeploymentService(DeploymentCreation, DeploymentLifecycle):
    """One service over one shared state (DeploymentCore); each concern is a base class of its own."""


__all__ = [
    "START_ROUNDS",
    "DeploymentChange",
    "DeploymentService",
    "ItemStart",
    "NewDeployment",
    "PollSettings",
    "check_keeps_secrets",
    "secrets_kept",
]
