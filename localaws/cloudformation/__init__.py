"""Make moto's CloudFormation behave like AWS where the deployer's users can tell the difference.

Why this exists: the local AWS is moto 5.2.5, and its CloudFormation differs from AWS in ways that hide
exactly the behaviour the deployer has to handle (see ``/work/shared/notes/local-aws-facts.md``):

* stacks reach ``*_COMPLETE`` inside the API call and only stack-level events exist;
* a failing resource makes ``CreateStack`` itself raise (often a raw ``KeyError``/``AttributeError``) and
  leaves the stack ``CREATE_IN_PROGRESS`` forever, instead of ``CREATE_FAILED`` + rollback;
* resource types moto does not emulate are silently dropped;
* ``ClientRequestToken`` is ignored, identical updates succeed, deleted stacks stay describable by name;
* ``CancelUpdateStack`` and ``ContinueUpdateRollback`` do not exist, ``RetainResources`` is ignored,
  ``DescribeStackEvents`` never paginates and change sets carry no ``Replacement`` (:mod:`.lifecycle`
  and :mod:`.diff` add them, each with a canary in ``tests/localaws/test_lifecycle_patches.py``).

:func:`install` patches moto once per process (classes and module functions, so it covers ``mock_aws`` and
a ``moto.server.ThreadedMotoServer`` running in the same process alike). The real work is still done by
moto, synchronously, inside the API call; what changes is what callers *see*: every operation is recorded
as a timeline of AWS-shaped events and stack statuses spread over :attr:`StackSimulation.stack_seconds`,
and reads reveal the part of the timeline that has elapsed. Nothing runs in the background, so a read right
after the call with ``stack_seconds=0`` already shows the final state, and tests are deterministic.

Limits (kept honest in the events rather than hidden): moto's resources exist as soon as the call returns,
even while the stack still shows ``CREATE_IN_PROGRESS``; an update rollback re-applies the previous
definition of modified resources with moto's own update code, which for some types cannot undo changes.

Everything moto-internal this package relies on is listed in :data:`.patches._REQUIRED_INTERNALS` and
checked by :func:`check_moto_internals`, which :func:`install` calls first, so a moto upgrade fails loudly.

Modules, by concern: :mod:`.state` (settings, process-wide state, moto access), :mod:`.timeline` (events and
stack statuses over time), :mod:`.resources` (one resource created/updated/deleted), :mod:`.outputs`
(outputs and exports), :mod:`.validation` (synchronous checks of templates, parameters and state),
:mod:`.diff` (no-op updates, Add/Modify/Remove, Replacement), :mod:`.operations` (create/update/delete
runs), :mod:`.changesets`, :mod:`.lifecycle` (cancel, continue-rollback, retain, event pages) and
:mod:`.patches` (the moto internals relied on, and installation).
"""

from __future__ import annotations

from localaws.cloudformation.patches import check_moto_internals, install
from localaws.cloudformation.state import StackSimulation

__all__ = ["StackSimulation", "check_moto_internals", "install"]
