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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain.automation import Notifications
from chalicelib.domain.errors import (
    Conflict,
    DeployerError,
    NotFound,
    TargetAccessError,
    TransientAwsError,
    UnprocessableRequest,
)
from chalicelib.domain.fingerprint import config_hash
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentFilter,
    DeploymentStatus,
    ErrorInfo,
    EventSource,
    Operation,
    OperationMode,
    OperationRequest,
    OperationStatus,
    Outcome,
    Page,
    Target,
    new_id,
    stack_key,
    utc_now,
)
from chalicelib.domain.noecho import ParameterSplit, split_parameters
from chalicelib.domain.parameters import check_values
from chalicelib.domain.rollouts import ItemRef
from chalicelib.domain.stack_status import Remedy, remedy_of
from chalicelib.domain.templates import NO_ECHO_MASK, TemplateSummary, parse_template, sent_by_url
from chalicelib.observability import bind, correlation_id
from chalicelib.service.operation_metrics import count_ended, count_started
from chalicelib.service.ports import (
    DeploymentStore,
    LockStore,
    Metrics,
    NoMetrics,
    ParameterSecrets,
    StackInfo,
    StackLookup,
    WorkflowStarter,
)
from chalicelib.service.targets import TargetService

logger = logging.getLogger(__name__)
# StartExecution tries (each botocore's own retries) before an accepted operation is recorded FAILED.
START_ROUNDS = 3

if TYPE_CHECKING:
    from chalicelib.service.notifications import NotificationRequest
    from chalicelib.service.sources import DeploymentSources


@dataclass(frozen=True)
class PollSettings:
    """How an operation's execution waits for its stack (carried in the execution's input)."""

    initial_seconds: int = 5
    max_seconds: int = 60
    completion: str = "poll"  # "events": wait for Stack Status Change events (see WorkflowService)
    event_timeout_seconds: int = 600


@dataclass(frozen=True)
class NewDeployment:
    target_id: str
    region: str
    stack_name: str
    template_body: str
    parameters: dict[str, str]
    tags: dict[str, str]
    # Automation (chalicelib/service/sources.py): read template_url into template_body ("" until then);
    # ``notify`` is the caller's request, replaced by the stored ``notifications`` settings.
    template_url: str | None = None
    template_version: str | None = None  # the S3 object version read into template_body
    template_region: str | None = None  # its bucket's region
    notify: NotificationRequest | None = None
    notifications: Notifications | None = None
    # Take over a stack of that name that this service did not create (updated by change set from then on).
    adopt: bool = False


@dataclass(frozen=True)
class DeploymentChange:
    template_body: str | None
    parameters: dict[str, str] | None
    tags: dict[str, str] | None
    # Set when template_body was read from the deployment's template_url, at this version, in this region.
    template_version: str | None = None
    template_region: str | None = None


@dataclass(frozen=True)
class _Template:
    """A template as an operation keeps it: the text up to TemplateBody's limit, else its S3 object."""

    body: str
    location: str | None = None
    version: str | None = None
    region: str | None = None  # the bucket's

    def request_fields(self) -> dict[str, Any]:
        if self.location is not None and sent_by_url(self.body):
            return {
                "template_body": None,
                "template_location": self.location,
                "template_version": self.version,
                "template_region": self.region,
            }
        return {"template_body": self.body}


def _carried(request: OperationRequest | None) -> dict[str, Any]:
    """An earlier operation's template, carried over as it was kept."""
    if request is None:
        return {}
    return {
        "template_body": request.template_body,
        "template_location": request.template_location,
        "template_version": request.template_version,
        "template_region": request.template_region,
    }


@dataclass(frozen=True)
class ItemStart:
    """The rollout item an operation is started for (``ref``, which the operation's execution carries),
    and ``write``: the rollout store's write that records the item as started, for (deployment id,
    operation id). It goes into the transaction that writes the operation, so that an item is
    IN_PROGRESS exactly when its operation exists, with no write before or after it."""

    ref: ItemRef
    write: Callable[[str, str], Mapping[str, Any]] | None = field(default=None, compare=False, repr=False)


def _start_writes(for_item: ItemStart | None, deployment: Deployment) -> tuple[Mapping[str, Any], ...]:
    """The writes that record ``for_item`` as started with ``deployment``'s operation, if it has any."""
    if for_item is None or for_item.write is None:
        return ()
    return (for_item.write(deployment.deployment_id, deployment.operation.operation_id),)


def _checked_for_create(new: NewDeployment) -> ParameterSplit:
    """``new``'s parameters, split into public and NoEcho, once its template and they are checked as a
    new stack takes them (no AWS call): the template parsed, the parameters matched to its declarations
    and their constraints."""
    summary = parse_template(new.template_body)
    split = split_parameters(summary, new.parameters, previous=())
    summary.check_parameters(split.public)
    check_values(new.template_body, new.parameters)
    return split


class DeploymentService:
    def __init__(
        self,
        deployments: DeploymentStore,
        locks: LockStore,
        workflow: WorkflowStarter,
        targets: TargetService,
        poll: PollSettings,
        sources: DeploymentSources | None = None,
        on_cancel: Callable[[Deployment, str], bool] | None = None,
        secrets: ParameterSecrets | None = None,
        stacks: StackLookup | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or NoMetrics()
        # Reads a target's stack for ``forget`` (under the service role: the InspectTarget function when
        # this runs in the API); the workflow does every other stack call.
        self._stacks = stacks
        self._sources = sources
        # Where NoEcho values wait for their stack call (chalicelib/domain/noecho.py); without it a
        # request that sends one is refused.
        self._secrets = secrets
        # Wakes an execution waiting for a stack event, so that the cancel is carried out now.
        self._on_cancel = on_cancel
        self._store = deployments
        self._locks = locks
        self._workflow = workflow
        self._targets = targets
        self._poll = poll

    # -- reads -----------------------------------------------------------------------------------

    def get(self, tenant_id: str, deployment_id: str) -> Deployment:
        deployment = self._store.get_deployment(tenant_id, deployment_id)
        if deployment is None:
            raise NotFound(f"Deployment {deployment_id} does not exist.", code="DEPLOYMENT_NOT_FOUND")
        return deployment

    def holder(self, target_id: str, region: str, stack_name: str) -> str | None:
        """The live deployment that holds this stack of the target, if any."""
        return self._store.claimed_deployment_id(target_id, region, stack_name)

    def list(self, tenant_id: str, filters: DeploymentFilter, *, limit: int, next_token: str | None) -> Page:
        return self._store.list_deployments(tenant_id, filters, limit=limit, next_token=next_token)

    def template(self, tenant_id: str, deployment_id: str) -> str:
        """The template of the deployment's current operation (what an update without one reuses)."""
        deployment = self.get(tenant_id, deployment_id)
        return self._template_for(deployment, DeploymentChange(None, None, None)).body

    def events(self, tenant_id: str, deployment_id: str, limit: int, next_token: str | None) -> Page:
        self.get(tenant_id, deployment_id)
        return self._store.list_events(deployment_id, limit, next_token)

    # -- writes ----------------------------------------------------------------------------------

    def create(
        self,
        tenant_id: str,
        new: NewDeployment,
        *,
        skip_unchanged: bool = False,
        mode: OperationMode = OperationMode.DEPLOY,
        for_item: ItemStart | None = None,
        unclaimed: bool = False,
    ) -> Deployment:
        """``unclaimed``: the caller has just read the stack's claim and found none (a rollout item), so
        it is not read again; the claim's conditional write still refuses a deployment that took the
        stack since (``Conflict`` STACK_ALREADY_DEPLOYED)."""
        if mode is OperationMode.APPLY:
            raise UnprocessableRequest("mode must be deploy or plan.", code="INVALID_MODE")
        sent = new.template_body
        checked = self.check_new(new)
        target = self._targets.get(tenant_id, new.target_id)
        self._check_region(target, new.region)
        self._targets.check_external_id(target)
        if self._sources is not None:  # hook: template_url, notifications (chalicelib/service/sources.py)
            new = self._sources.prepare(tenant_id, target, new)
        split = checked if checked is not None and new.template_body == sent else _checked_for_create(new)
        fingerprint = config_hash(new.template_body, split.public, new.tags, target.role_arn)
        holder = (
            None
            if unclaimed
            else self._store.claimed_deployment_id(target.target_id, new.region, new.stack_name)
        )
        existing = self._store.get_deployment(tenant_id, holder) if holder else None
        unchanged = existing is not None and skip_unchanged and self._unchanged(existing, fingerprint)
        if existing is not None and unchanged and not split.has_new_secrets:
            return replace(existing, outcome=Outcome.SKIPPED)
        if existing is not None and _never_made_a_stack(existing):
            return self._create_again(existing, new, split, mode, fingerprint, for_item)
        self._check_unlocked(target.account_id, new.region, new.stack_name)
        with self._notifications_kept(tenant_id, new) as new:
            deployment = self._new_deployment(tenant_id, target, new, mode, split, fingerprint, for_item)
        if self._sources is not None:
            self._sources.created(deployment)
        return self._start(deployment, for_item)

    def _new_deployment(
        self,
        tenant_id: str,
        target: Target,
        new: NewDeployment,
        mode: OperationMode,
        split: ParameterSplit,
        fingerprint: str,
        for_item: ItemStart | None = None,
    ) -> Deployment:
        """Write the new deployment (PENDING) and its operation's request (and ``for_item``'s start)."""
        now = utc_now()
        operation = Operation(
            new_id("op"),
            Action.CREATE,
            OperationStatus.PENDING,
            now,
            mode=mode,
            adopt=new.adopt,
            holds_secrets=split.has_new_secrets,
        )
        deployment = Deployment(
            tenant_id=tenant_id,
            deployment_id=new_id("dep"),
            target_id=target.target_id,
            account_id=target.account_id,
            region=new.region,
            stack_name=new.stack_name,
            status=DeploymentStatus.PENDING,
            operation=operation,
            created_at=now,
            updated_at=now,
            parameters=split.public,
            tags=dict(new.tags),
            template_url=new.template_url,
            notifications=new.notifications,
            config_hash=fingerprint,
        )
        request = self._request(
            deployment,
            _Template(new.template_body, new.template_url, new.template_version, new.template_region),
            split,
        )
        with secrets_kept(self._secrets, operation.operation_id, split):
            self._store.create_deployment(deployment, request, _start_writes(for_item, deployment))
        return deployment

    @contextmanager
    def _notifications_kept(self, tenant_id: str, new: NewDeployment) -> Iterator[NewDeployment]:
        """``new`` with its webhook secret stored, deleted again if the block fails (no record refers to it)."""
        if self._sources is None:
            yield new
            return
        kept = self._sources.keep_notifications(tenant_id, new)
        try:
            yield kept
        except BaseException:
            self._sources.discard_notifications(kept)
            raise

    def _create_again(
        self,
        existing: Deployment,
        new: NewDeployment,
        split: ParameterSplit,
        mode: OperationMode,
        fingerprint: str,
        for_item: ItemStart | None,
    ) -> Deployment:
        """A new create on a deployment whose create failed before any stack existed (say, the role
        was not there yet): the caller re-posts once the cause is fixed, and the same deployment runs."""
        self._check_unlocked(existing.account_id, existing.region, existing.stack_name)
        with self._notifications_kept(existing.tenant_id, new) as new:
            renewed = replace(existing, template_url=new.template_url, notifications=new.notifications)
            written = self._write_operation(
                renewed,
                Action.CREATE,
                _Template(new.template_body, new.template_url, new.template_version, new.template_region),
                split,
                new.tags,
                mode=mode,
                fingerprint=fingerprint,
                adopt=new.adopt,
                for_item=for_item,
            )
        started = self._start(written, for_item)
        if self._sources is not None:
            self._sources.created(started)
        return started

    def check_new(self, new: NewDeployment) -> ParameterSplit | None:
        """What ``create`` refuses with no AWS call: a template sent inline and the parameters given for
        it (their split, when there is one: a template at template_url is checked once it is read),
        template_url's shape and the notification request."""
        split = _checked_for_create(new) if new.template_body else None
        if self._sources is not None:
            self._sources.check(new)
        return split

    def check_change(self, change: DeploymentChange) -> TemplateSummary | None:
        """What ``update`` refuses with no AWS call: a template sent inline, and the parameters sent for
        it, which replace the stack's, but for NoEcho ones, whose values the stack may keep (a name the
        template lacks, a required one left out, a value it does not allow)."""
        if not change.template_body:
            return None
        inline = parse_template(change.template_body)
        if change.parameters is not None:
            inline.check_parameters({**dict.fromkeys(inline.no_echo, NO_ECHO_MASK), **change.parameters})
            check_values(change.template_body, change.parameters)
        return inline

    def update(
        self,
        tenant_id: str,
        deployment_id: str,
        change: DeploymentChange,
        *,
        skip_unchanged: bool = False,
        mode: OperationMode = OperationMode.DEPLOY,
        for_item: ItemStart | None = None,
    ) -> Deployment:
        if mode is OperationMode.APPLY:
            raise UnprocessableRequest("mode must be deploy or plan.", code="INVALID_MODE")
        inline = self.check_change(change)
        deployment = self._runnable(tenant_id, deployment_id)
        if not deployment.live:
            raise Conflict(
                f"Deployment {deployment_id} was deleted.",
                code="DEPLOYMENT_DELETED",
                hint="Create a new deployment with POST /deployments.",
            )
        self._check_updatable(deployment)
        template = self._template_for(deployment, change)
        parameters = change.parameters if change.parameters is not None else deployment.parameters
        tags = change.tags if change.tags is not None else deployment.tags
        summary = (
            inline
            if inline is not None and template.body == change.template_body
            else parse_template(template.body)
        )
        split = split_parameters(summary, parameters, self._previous_parameters(deployment))
        summary.check_parameters(split.public)
        check_values(template.body, parameters)
        target = self._targets.get(tenant_id, deployment.target_id)
        self._targets.check_external_id(target)
        fingerprint = config_hash(template.body, split.public, tags, target.role_arn)
        if skip_unchanged and not split.has_new_secrets and self._unchanged(deployment, fingerprint):
            return replace(deployment, outcome=Outcome.SKIPPED)
        written = self._write_operation(
            deployment,
            Action.UPDATE,
            template,
            split,
            tags,
            mode=mode,
            fingerprint=fingerprint,
            for_item=for_item,
        )
        return self._start(written, for_item)

    def apply(
        self,
        tenant_id: str,
        deployment_id: str,
        expected_hash: str | None = None,
        *,
        for_item: ItemStart | None = None,
    ) -> Deployment:
        """Execute the deployment's plan: exactly its change set, only if nothing changed since."""
        deployment = self._runnable(tenant_id, deployment_id, check_target=True)
        plan = deployment.plan
        if plan is None or not deployment.live:
            raise Conflict(
                f"Deployment {deployment_id} has no plan to apply.",
                code="NO_PLAN",
                hint='Plan first: PUT /deployments/{id} (or POST /deployments) with "mode": "plan".',
            )
        stale = (
            deployment.operation.operation_id != plan.operation_id
            or deployment.operation.status is not OperationStatus.PLANNED
            or deployment.last_success_hash != plan.base_hash
            or (expected_hash is not None and expected_hash != plan.config_hash)
        )
        if stale:
            raise Conflict(
                f"The plan of deployment {deployment_id} no longer matches its stack or configuration.",
                code="PLAN_STALE",
                hint="Something ran on this deployment, or the template or parameters changed, since the "
                "plan: plan again and review the new changes.",
                details={
                    "plan_config_hash": plan.config_hash,
                    "plan_operation_id": plan.operation_id,
                    "current_operation_id": deployment.operation.operation_id,
                },
            )
        if not plan.changes:
            raise Conflict(
                "The plan has no changes to apply.",
                code="PLAN_EMPTY",
                hint="The stack already matches the planned configuration; nothing to do.",
            )
        request = self._store.get_request(deployment_id, plan.operation_id)
        if request is None:
            raise DeployerError(f"Plan {plan.operation_id} has no stored request.")
        written = self._write_operation(
            deployment,
            Action(plan.action),
            _carried(request),
            ParameterSplit(request.parameters),  # the change set holds the values
            request.tags,
            mode=OperationMode.APPLY,
            fingerprint=plan.config_hash,
            change_set_name=plan.change_set_name,
            for_item=for_item,
        )
        return self._start(written, for_item)

    def cancel(self, tenant_id: str, deployment_id: str) -> Deployment:
        """Ask the running update to stop; its next poll sends CancelUpdateStack (or drops the change set).

        The API never assumes target roles (only the workflow's role is trusted by them), so the request is
        recorded here and carried out by the workflow; the operation then ends CANCELLED.
        """
        deployment = self.get(tenant_id, deployment_id)
        operation = deployment.operation
        if (
            not operation.running
            or operation.action is not Action.UPDATE
            or operation.mode is OperationMode.PLAN
        ):
            raise Conflict(
                f"Deployment {deployment_id} has no stack update running that can be cancelled.",
                code="NOT_CANCELLABLE",
                hint="Only a running update (PUT /deployments/{id}, or an apply of an update plan) can be "
                "cancelled.",
                details={"operation": operation.public()},
            )
        self._store.request_cancel(deployment_id, operation.operation_id)
        self._store.append_events(
            deployment_id,
            [
                DeploymentEvent(
                    utc_now(),
                    EventSource.ORCHESTRATOR,
                    "CANCEL_REQUESTED",
                    deployment.stack_name,
                    f"cancel of {operation.operation_id} requested; the update is rolled back",
                )
            ],
        )
        if self._on_cancel is not None:
            self._on_cancel(deployment, "cancel")
        return deployment

    def continue_rollback(
        self, tenant_id: str, deployment_id: str, resources_to_skip: tuple[str, ...] = ()
    ) -> Deployment:
        """ContinueUpdateRollback for a stack left in UPDATE_ROLLBACK_FAILED."""
        deployment = self._runnable(tenant_id, deployment_id, check_target=True)
        if not deployment.live or deployment.stack_status != "UPDATE_ROLLBACK_FAILED":
            raise Conflict(
                f"Stack {deployment.stack_name} is in {deployment.stack_status}, not UPDATE_ROLLBACK_FAILED.",
                code="NOT_IN_UPDATE_ROLLBACK_FAILED",
                hint="Only a stack whose update rollback failed can continue its rollback.",
            )
        previous = self._store.get_request(deployment_id, deployment.operation.operation_id)
        return self._start(
            self._write_operation(
                deployment,
                Action.CONTINUE_ROLLBACK,
                _carried(previous),
                ParameterSplit(deployment.parameters),
                deployment.tags,
                resources=resources_to_skip,
                fingerprint=deployment.last_success_hash,
            )
        )

    def delete(self, tenant_id: str, deployment_id: str, retain: tuple[str, ...] = ()) -> Deployment:
        deployment = self._runnable(tenant_id, deployment_id, check_target=True)
        if not deployment.live:
            raise Conflict(
                f"Deployment {deployment_id} is already deleted.",
                code="DEPLOYMENT_DELETED",
                hint="Nothing to do; the stack is gone.",
            )
        if retain and remedy_of(deployment.stack_status) is not Remedy.DELETE_RETAINING:
            raise Conflict(
                f"retain is only accepted for a stack whose delete failed; {deployment.stack_name} is in "
                f"{deployment.stack_status}.",
                code="RETAIN_NOT_ALLOWED",
                hint="Delete without retain; if the delete fails, its error names the resources to retain.",
            )
        # The delete carries the template on, so that after a failed delete (the stack still there) an
        # update that sends only parameters finds it.
        previous = self._store.get_request(deployment_id, deployment.operation.operation_id)
        return self._start(
            self._write_operation(
                deployment,
                Action.DELETE,
                _carried(previous),
                ParameterSplit(deployment.parameters),
                deployment.tags,
                resources=retain,
            )
        )

    def forget(self, tenant_id: str, deployment_id: str) -> Deployment:
        """Drop the record of a deployment whose stack never existed or is gone (DELETE_COMPLETE), so its
        stack name and its target are free; refused while the stack exists. No stack call is made."""
        deployment = self._runnable(tenant_id, deployment_id)
        if not deployment.live:
            raise Conflict(
                f"Deployment {deployment_id} is already deleted.",
                code="DEPLOYMENT_DELETED",
                hint="Nothing to do; the stack is gone.",
            )
        stack, why = self._stack_of(deployment)
        if stack is not None:
            raise Conflict(
                f"Stack {stack.stack_name} still exists in {deployment.account_id}/{deployment.region} "
                f"({stack.status}).",
                code="STACK_STILL_EXISTS",
                hint="Delete it with DELETE /deployments/{id}; forget only drops the record of a stack that "
                "is gone.",
                details={"stack_id": stack.stack_id, "stack_status": stack.status},
            )
        now = utc_now()
        forgotten = replace(
            deployment,
            status=DeploymentStatus.DELETED,
            operation=Operation(new_id("op"), Action.FORGET, OperationStatus.SUCCEEDED, now, ended_at=now),
            outputs={},
            error=None,
            updated_at=now,
        )
        previous = self._store.get_request(deployment_id, deployment.operation.operation_id)
        request = self._request(forgotten, _carried(previous), ParameterSplit(deployment.parameters))
        self._store.begin_operation(forgotten, request)
        self._store.release_stack_name(forgotten)
        event = DeploymentEvent(now, EventSource.ORCHESTRATOR, "FORGOTTEN", deployment.stack_name, why)
        self._store.append_events(deployment_id, [event])
        return forgotten

    def _stack_of(self, deployment: Deployment) -> tuple[StackInfo | None, str]:
        """The deployment's stack if it exists (not DELETE_COMPLETE), read through the target's role,
        and what was found, for the record."""
        if self._stacks is None:
            raise DeployerError("forget needs the stack lookup adapter.")
        target = self._targets.get(deployment.tenant_id, deployment.target_id)
        try:
            stack = self._stacks.find_stack(
                target,
                region=deployment.region,
                stack=deployment.stack_id or deployment.stack_name,
                session_name=f"nexus-forget-{deployment.deployment_id}",
            )
        except TargetAccessError as error:
            if deployment.stack_id is not None:
                raise  # this deployment made a stack: only the stack itself can say it is gone
            return None, (
                f"forgotten: no stack was ever recorded, and the role cannot look ({error.code}: "
                f"{error.message})"
            )
        if stack is None or stack.status == "DELETE_COMPLETE":
            found = "DELETE_COMPLETE" if stack is not None else "no stack of that name"
            return None, f"forgotten: CloudFormation has {found}; the stack name is free"
        return stack, ""

    # -- helpers ---------------------------------------------------------------------------------

    def _runnable(self, tenant_id: str, deployment_id: str, *, check_target: bool = False) -> Deployment:
        """The deployment, when no operation runs on it or its stack; ``check_target``: and its target
        takes work (chalicelib/service/targets.py, the external-ID guard)."""
        deployment = self.get(tenant_id, deployment_id)
        if check_target:
            self._targets.check_external_id(self._targets.get(tenant_id, deployment.target_id))
        if deployment.operation.running:
            raise Conflict(
                f"Deployment {deployment_id} has a {deployment.operation.action.value} operation running.",
                code="OPERATION_IN_PROGRESS",
                hint="Wait until GET /deployments/{id} shows the operation ended, then retry.",
                details={"operation": deployment.operation.public()},
            )
        self._check_unlocked(deployment.account_id, deployment.region, deployment.stack_name)
        return deployment

    def _write_operation(
        self,
        deployment: Deployment,
        action: Action,
        template: _Template | dict[str, Any],
        split: ParameterSplit,
        tags: dict[str, str],
        *,
        mode: OperationMode = OperationMode.DEPLOY,
        resources: tuple[str, ...] = (),
        fingerprint: str | None = None,
        change_set_name: str | None = None,
        adopt: bool = False,
        for_item: ItemStart | None = None,
    ) -> Deployment:
        """The deployment with its new operation (PENDING), written with the operation's request (and
        ``for_item``'s start)."""
        now = utc_now()
        operation = Operation(
            new_id("op"),
            action,
            OperationStatus.PENDING,
            now,
            mode=mode,
            resources=tuple(resources),
            change_set_name=change_set_name,
            holds_secrets=split.has_new_secrets,
            adopt=adopt,
        )
        updated = replace(
            deployment,
            operation=operation,
            # A plan changes nothing on the stack: the deployment keeps the status it had.
            status=deployment.status if mode is OperationMode.PLAN else DeploymentStatus.PENDING,
            parameters=dict(split.public),
            tags=dict(tags),
            error=None,
            updated_at=now,
            config_hash=fingerprint if fingerprint is not None else deployment.config_hash,
        )
        request = self._request(updated, template, split)
        with secrets_kept(self._secrets, operation.operation_id, split):
            self._store.begin_operation(updated, request, _start_writes(for_item, updated))
        return updated

    @staticmethod
    def _request(
        deployment: Deployment, template: _Template | dict[str, Any], split: ParameterSplit
    ) -> OperationRequest:
        """What the operation deploys, as kept beside its record: never a NoEcho value."""
        fields = template.request_fields() if isinstance(template, _Template) else template
        return OperationRequest(
            deployment.deployment_id,
            deployment.operation.operation_id,
            deployment.operation.action,
            parameters=dict(split.public),
            tags=dict(deployment.tags),
            secret_parameters=tuple(sorted(split.secret)),
            previous_parameters=split.previous,
            **{"template_body": None, **fields},
        )

    def _template_for(self, deployment: Deployment, change: DeploymentChange) -> _Template:
        """The template of an update: the one sent (or read from template_url), else the last one."""
        if change.template_body is not None:
            return _Template(
                change.template_body, deployment.template_url, change.template_version, change.template_region
            )
        previous = self._store.get_request(deployment.deployment_id, deployment.operation.operation_id)
        if previous is not None and previous.template_body is not None:
            return _Template(previous.template_body, deployment.template_url)
        if previous is not None and previous.template_location is not None and self._sources is not None:
            read = self._sources.read(
                previous.template_location, deployment.account_id, previous.template_version
            )
            return _Template(read.body, previous.template_location, previous.template_version, read.region)
        raise UnprocessableRequest(
            "This deployment has no stored template to reuse.",
            code="TEMPLATE_REQUIRED",
            hint="Send template_body with the update.",
        )

    @staticmethod
    def _previous_parameters(deployment: Deployment) -> set[str]:
        """The parameters the live stack has values for: what UsePreviousValue can keep. None when the
        stack is missing, is about to be created again (ROLLBACK_COMPLETE), or was never created (a
        planned create waiting in REVIEW_IN_PROGRESS)."""
        if deployment.stack_id is None or remedy_of(deployment.stack_status) in (
            Remedy.RECREATE,
            Remedy.EXECUTE_REVIEW,
        ):
            return set()
        return set(deployment.parameters)

    def _start(self, deployment: Deployment, for_item: ItemStart | None = None) -> Deployment:
        """Start the operation's execution. ``for_item``: a rollout item waits for its end, so the
        execution's last step records the item's end and announces it (``announce_end``).
        The execution carries the correlation id of what started it (chalicelib/observability.py)."""
        operation_id = deployment.operation.operation_id
        bind(deployment_id=deployment.deployment_id, operation_id=operation_id)
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
            self._start_execution(operation_id, execution_input)
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

    def _start_execution(self, operation_id: str, execution_input: dict[str, Any]) -> None:
        """StartExecution, named after the operation (so repeating it is safe), tried again when AWS still
        throttles after botocore's retries: the operation's record is written, and giving up here would fail
        an accepted operation because of a throttle."""
        for attempt in range(START_ROUNDS):
            try:
                self._workflow.start(operation_id, execution_input)
                return
            except TransientAwsError:
                if attempt == START_ROUNDS - 1:
                    raise

    @staticmethod
    def _unchanged(deployment: Deployment, fingerprint: str) -> bool:
        """True when the stack is known to be at exactly this configuration, so a deploy would be a no-op.

        No AWS call is made: drift made outside the service is not seen here (that is drift detection's
        job). A failed update whose stack rolled back is at its last successful configuration again.
        """
        if not deployment.live or deployment.operation.running or deployment.last_success_hash != fingerprint:
            return False
        if deployment.status is DeploymentStatus.ACTIVE:
            return True
        return deployment.status is DeploymentStatus.FAILED and deployment.stack_status in (
            "UPDATE_ROLLBACK_COMPLETE",
            "UPDATE_COMPLETE",
            "CREATE_COMPLETE",
        )

    @staticmethod
    def _check_updatable(deployment: Deployment) -> None:
        """Refuse, with the one action that helps, an update of a stack recorded in a stuck status."""
        remedy = remedy_of(deployment.stack_status)
        status, name = deployment.stack_status, deployment.stack_name
        if remedy is Remedy.RECREATE and deployment.ever_active:
            raise Conflict(
                f"Stack {name} is in ROLLBACK_COMPLETE but this deployment once succeeded: it is never "
                "deleted and recreated automatically.",
                code="STACK_NOT_UPDATABLE",
                hint="Look at the stack in the target account; delete the deployment yourself "
                "(DELETE /deployments/{id}) when you are sure, then create it again.",
            )
        hints = {
            Remedy.CONTINUE_ROLLBACK: (
                "ROLLBACK_REQUIRED",
                "Continue the rollback first: POST /deployments/{id}/continue-rollback, optionally with "
                '{"resources_to_skip": [...]} naming the resources that block it.',
            ),
            Remedy.DELETE_RETAINING: (
                "STACK_NOT_UPDATABLE",
                "The stack can only be deleted: DELETE /deployments/{id}?retain=LogicalId,... naming the "
                "resources that blocked the delete.",
            ),
            Remedy.DELETE: (
                "STACK_NOT_UPDATABLE",
                "The stack can only be deleted: DELETE /deployments/{id}.",
            ),
            Remedy.OPERATOR: (
                "STACK_NOT_UPDATABLE",
                "Fix the stack in the target account (see its events), then retry.",
            ),
        }
        if remedy in hints:
            code, hint = hints[remedy]
            raise Conflict(f"Stack {name} is in {status} and cannot be updated.", code=code, hint=hint)

    def _check_region(self, target: Target, region: str) -> None:
        if region not in target.regions:
            raise UnprocessableRequest(
                f"Region {region} is not enabled for target {target.target_id}.",
                code="REGION_NOT_ENABLED",
                hint="Deploy to one of the target's regions, or register the target with this region.",
                details={"field": "region", "allowed": list(target.regions)},
            )

    def _check_unlocked(self, account_id: str, region: str, stack_name: str) -> None:
        holder = self._locks.lock_holder(stack_key(account_id, region, stack_name))
        if holder is not None:
            raise Conflict(
                f"Stack {stack_name} in {account_id}/{region} is locked by operation {holder}.",
                code="STACK_LOCKED",
                hint="Another operation is running on this stack; wait for it to finish, then retry.",
                details={"operation_id": holder},
            )


def check_keeps_secrets(secrets: ParameterSecrets | None, split: ParameterSplit) -> None:
    """Refuse a request with NoEcho values when the service has no store for them."""
    if split.has_new_secrets and secrets is None:
        raise _no_secret_store()


def _no_secret_store() -> UnprocessableRequest:
    return UnprocessableRequest(
        "This service keeps no NoEcho values: it cannot deploy them.",
        code="NOECHO_NOT_AVAILABLE",
        hint="Deploy with the service's parameter store configured.",
    )


@contextmanager
def secrets_kept(secrets: ParameterSecrets | None, owner_id: str, split: ParameterSplit) -> Iterator[None]:
    """Keep a request's NoEcho values under ``owner_id`` (an operation, a rollout) while the records
    that refer to them are written; when the write fails, nothing of them stays behind."""
    if not split.has_new_secrets:
        yield
        return
    if secrets is None:
        raise _no_secret_store()
    secrets.put(owner_id, split.secret)
    try:
        yield
    except BaseException:
        secrets.delete(owner_id)
        raise


def _never_made_a_stack(deployment: Deployment) -> bool:
    """A create that failed before CloudFormation had a stack for it: nothing exists to update."""
    return (
        deployment.live
        and deployment.status is DeploymentStatus.FAILED
        and deployment.operation.action is Action.CREATE
        and not deployment.operation.running
        and deployment.stack_id is None
        and not deployment.ever_active
    )
