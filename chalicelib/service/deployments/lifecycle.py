"""What happens to a deployment after its create: update (or plan one), apply a plan, cancel a running
update, continue a failed rollback, delete the stack, or forget a record whose stack is gone. Each but
cancel and forget is a new operation started on the workflow."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain.errors import Conflict, DeployerError, TargetAccessError, UnprocessableRequest
from chalicelib.domain.fingerprint import config_hash
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    EventSource,
    Operation,
    OperationMode,
    OperationStatus,
    Outcome,
    new_id,
    utc_now,
)
from chalicelib.domain.noecho import ParameterSplit
from chalicelib.domain.stack_status import Remedy, remedy_of
from chalicelib.domain.templates import parse_template
from chalicelib.service.deployments.checks import DeploymentChecks, checked_split
from chalicelib.service.deployments.starts import DeploymentStarts, log_as
from chalicelib.service.deployments.templates import carried
from chalicelib.service.deployments.values import DeploymentChange, ItemStart
from chalicelib.service.ports import StackInfo


class DeploymentLifecycle(DeploymentChecks, DeploymentStarts):
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
        split = checked_split(summary, template.body, parameters, self._previous_parameters(deployment))
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
            carried(request),
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
        log_as(deployment)  # the request's lines name the operation it acts on (or finds not cancellable)
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
                carried(previous),
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
                carried(previous),
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
        request = self._request(forgotten, carried(previous), ParameterSplit(deployment.parameters))
        # The record and the freed stack name in one write: in two, a throttle between them left the
        # name claimed by a DELETED deployment, so every later create of it was refused (409).
        self._store.begin_operation(forgotten, request, release_name=True)
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
