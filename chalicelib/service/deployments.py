"""Deployments as the API sees them: accept a change, record it, hand it to the workflow.

Every write here happens only after the whole request was validated, and every operation is one
execution of the state machine, named after the operation id. The execution input holds ids and
poll settings only; the template and parameters stay in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chalicelib.domain.errors import Conflict, DeployerError, NotFound, UnprocessableRequest
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    ErrorInfo,
    EventSource,
    Operation,
    OperationRequest,
    OperationStatus,
    Page,
    Target,
    new_id,
    utc_now,
)
from chalicelib.domain.templates import parse_template
from chalicelib.service.ports import DeploymentStore, LockStore, WorkflowStarter
from chalicelib.service.targets import TargetService


@dataclass(frozen=True)
class PollSettings:
    initial_seconds: int = 5
    max_seconds: int = 60


@dataclass(frozen=True)
class NewDeployment:
    target_id: str
    region: str
    stack_name: str
    template_body: str
    parameters: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class DeploymentChange:
    template_body: str | None
    parameters: dict[str, str] | None
    tags: dict[str, str] | None


def lock_key(account_id: str, region: str, stack_name: str) -> str:
    return f"{account_id}#{region}#{stack_name}"


class DeploymentService:
    def __init__(
        self,
        deployments: DeploymentStore,
        locks: LockStore,
        workflow: WorkflowStarter,
        targets: TargetService,
        poll: PollSettings,
    ) -> None:
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

    def list(
        self, tenant_id: str, *, target_id: str | None, status: str | None, limit: int, next_token: str | None
    ) -> Page:
        return self._store.list_deployments(
            tenant_id, target_id=target_id, status=status, limit=limit, next_token=next_token
        )

    def events(self, tenant_id: str, deployment_id: str, limit: int, next_token: str | None) -> Page:
        self.get(tenant_id, deployment_id)
        return self._store.list_events(deployment_id, limit, next_token)

    # -- writes ----------------------------------------------------------------------------------

    def create(self, tenant_id: str, new: NewDeployment) -> Deployment:
        target = self._targets.get(tenant_id, new.target_id)
        self._check_region(target, new.region)
        parse_template(new.template_body).check_parameters(new.parameters)
        self._check_unlocked(target.account_id, new.region, new.stack_name)
        now = utc_now()
        operation = Operation(new_id("op"), Action.CREATE, OperationStatus.PENDING, now)
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
            parameters=dict(new.parameters),
            tags=dict(new.tags),
        )
        request = OperationRequest(
            deployment.deployment_id,
            operation.operation_id,
            Action.CREATE,
            new.template_body,
            dict(new.parameters),
            dict(new.tags),
        )
        self._store.create_deployment(deployment, request)
        return self._start(deployment)

    def update(self, tenant_id: str, deployment_id: str, change: DeploymentChange) -> Deployment:
        deployment = self._runnable(tenant_id, deployment_id)
        if not deployment.live:
            raise Conflict(
                f"Deployment {deployment_id} was deleted.",
                code="DEPLOYMENT_DELETED",
                hint="Create a new deployment with POST /deployments.",
            )
        previous = self._store.get_request(deployment_id, deployment.operation.operation_id)
        template = change.template_body or (previous.template_body if previous else None)
        if template is None:
            raise UnprocessableRequest(
                "This deployment has no stored template to reuse.",
                code="TEMPLATE_REQUIRED",
                hint="Send template_body with the update.",
            )
        parameters = change.parameters if change.parameters is not None else deployment.parameters
        tags = change.tags if change.tags is not None else deployment.tags
        parse_template(template).check_parameters(parameters)
        return self._begin(deployment, Action.UPDATE, template, parameters, tags)

    def delete(self, tenant_id: str, deployment_id: str) -> Deployment:
        deployment = self._runnable(tenant_id, deployment_id)
        if not deployment.live:
            raise Conflict(
                f"Deployment {deployment_id} is already deleted.",
                code="DEPLOYMENT_DELETED",
                hint="Nothing to do; the stack is gone.",
            )
        return self._begin(deployment, Action.DELETE, None, deployment.parameters, deployment.tags)

    # -- helpers ---------------------------------------------------------------------------------

    def _runnable(self, tenant_id: str, deployment_id: str) -> Deployment:
        deployment = self.get(tenant_id, deployment_id)
        if deployment.operation.running:
            raise Conflict(
                f"Deployment {deployment_id} has a {deployment.operation.action.value} operation running.",
                code="OPERATION_IN_PROGRESS",
                hint="Wait until GET /deployments/{id} shows the operation ended, then retry.",
                details={"operation": deployment.operation.public()},
            )
        self._check_unlocked(deployment.account_id, deployment.region, deployment.stack_name)
        return deployment

    def _begin(
        self,
        deployment: Deployment,
        action: Action,
        template: str | None,
        parameters: dict[str, str],
        tags: dict[str, str],
    ) -> Deployment:
        now = utc_now()
        operation = Operation(new_id("op"), action, OperationStatus.PENDING, now)
        updated = replace(
            deployment,
            operation=operation,
            status=DeploymentStatus.PENDING,
            parameters=dict(parameters),
            tags=dict(tags),
            error=None,
            updated_at=now,
        )
        request = OperationRequest(
            deployment.deployment_id, operation.operation_id, action, template, dict(parameters), dict(tags)
        )
        self._store.begin_operation(updated, request)
        return self._start(updated)

    def _start(self, deployment: Deployment) -> Deployment:
        execution_input: dict[str, Any] = {
            "tenant_id": deployment.tenant_id,
            "deployment_id": deployment.deployment_id,
            "operation_id": deployment.operation.operation_id,
            "wait_seconds": self._poll.initial_seconds,
            "max_wait_seconds": self._poll.max_seconds,
        }
        try:
            self._workflow.start(deployment.operation.operation_id, execution_input)
        except DeployerError as error:
            # Never leave a PENDING record that nothing will move: record why it did not start.
            failed = replace(
                deployment,
                status=DeploymentStatus.FAILED,
                operation=replace(deployment.operation, status=OperationStatus.FAILED, ended_at=utc_now()),
                error=ErrorInfo(error.code, error.message, error.hint),
            )
            self._store.save_deployment(failed)
            self._store.append_events(
                deployment.deployment_id,
                [
                    DeploymentEvent(
                        utc_now(), EventSource.ORCHESTRATOR, "FAILED", deployment.stack_name, error.message
                    )
                ],
            )
            raise
        self._store.append_events(
            deployment.deployment_id,
            [
                DeploymentEvent(
                    utc_now(),
                    EventSource.ORCHESTRATOR,
                    "ACCEPTED",
                    deployment.stack_name,
                    f"{deployment.operation.action.value} accepted as {deployment.operation.operation_id}",
                )
            ],
        )
        return deployment

    def _check_region(self, target: Target, region: str) -> None:
        if region not in target.regions:
            raise UnprocessableRequest(
                f"Region {region} is not enabled for target {target.target_id}.",
                code="REGION_NOT_ENABLED",
                hint="Deploy to one of the target's regions, or register the target with this region.",
                details={"field": "region", "allowed": list(target.regions)},
            )

    def _check_unlocked(self, account_id: str, region: str, stack_name: str) -> None:
        holder = self._locks.lock_holder(lock_key(account_id, region, stack_name))
        if holder is not None:
            raise Conflict(
                f"Stack {stack_name} in {account_id}/{region} is locked by operation {holder}.",
                code="STACK_LOCKED",
                hint="Another operation is running on this stack; wait for it to finish, then retry.",
                details={"operation_id": holder},
            )
