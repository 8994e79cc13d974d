"""The steps of ``statemachine/deployment.asl.json``: lock, start, wait/poll, release, record failure.

Each step re-reads the deployment from the store and re-assumes the target role; only ids and
settings travel in the execution's state (poll intervals, ``completion``, the event wait's timeout,
``announce_end``, and for a rollout item its id, whose record holds the token of the StartItem task
to release: see ``StepInput``), never a credential, a task token or a template. Every step is safe to run
twice (Lambda may retry): the lock is re-entrant for its owner, stack calls carry a ClientRequestToken
derived from the operation id, a create that finds its own stack already started takes it up instead
of failing, and the operation's end (its record and final event, one transaction) is written once.

An operation moves through phases kept on its record (``Operation.phase``), so one execution can make
several stack calls without new states in the definition:

    pending --create/delete/continue-rollback/apply--> executing --stack settles--> done
    pending --CreateChangeSet--> changeset --computed--> executing (deploy) | done, PLANNED (plan)
    pending --DeleteStack (ROLLBACK_COMPLETE, never ACTIVE)--> recreate_delete --gone--> executing
    changeset --cancel requested--> done, CANCELLED (the change set is deleted, nothing ran)
    executing --cancel requested: CancelUpdateStack--> cancelling --UPDATE_ROLLBACK_COMPLETE--> CANCELLED

A cancel is requested through the API (``DeploymentService.cancel``), which never assumes target roles:
it records the request in the store, and the next poll of an update carries it out.

Between stack calls the execution waits in one of two ways, chosen by the execution's input
(``completion``, from ``NEXUS_COMPLETION_MODE``) and returned in every step's ``progress``:

* ``poll``: ``WaitForStack`` (interval x1.5, capped) then ``PollStack``;
* ``events``: ``WaitForStackEvent``, a ``.waitForTaskToken`` task whose Lambda (:meth:`await_stack_event`)
  parks its token until the stack's "Stack Status Change" event releases it
  (chalicelib/service/completion.py), or its timeout passes; either way ``PollStack`` then reconciles
  once. A change set being computed emits no stack events, so that phase polls in both modes.

What the start does with a stack it finds is decided by its status's ``Remedy``
(chalicelib/domain/stack_status.py), never by string matching here.

Modules, by concern: :mod:`.values` (``StepInput``, ``WorkflowSettings``), :mod:`.progress` (the
``progress`` a step returns), :mod:`.core` (``WorkflowCore``: what the service is built with, and the
helpers the concerns share), :mod:`.locking` (AcquireLock, the lease, ReleaseLock), :mod:`.starting`
(StartStackOperation), :mod:`.polling` (PollStack), :mod:`.event_wait` (WaitForStackEvent, and polling
where events were lost), :mod:`.stack_events` (recording the stack's events and reading failures from
them), :mod:`.outcomes` (an operation's end), :mod:`.failures` (RecordFailure and an execution's end),
:mod:`.announcement` (telling a rollout item that its operation ended) and :mod:`.step_errors` (a
Catch's error read back). ``WorkflowService`` below is composed from the concerns' classes.
"""

from __future__ import annotations

from chalicelib.service.workflow.event_wait import expected_tokens
from chalicelib.service.workflow.failures import FailureRecording
from chalicelib.service.workflow.polling import StackPolling
from chalicelib.service.workflow.starting import StackStart
from chalicelib.service.workflow.step_errors import error_from_state
from chalicelib.service.workflow.values import StepInput, WorkflowSettings

__all__ = ["StepInput", "WorkflowService", "WorkflowSettings", "error_from_state", "expected_tokens"]


class WorkflowService(StackStart, StackPolling, FailureRecording):
    """Every step of the deployment state machine, one method each (chalicelib/steps/handlers.py names
    them, e.g. ``WorkflowService.poll_stack``); each concern's class holds its own."""
