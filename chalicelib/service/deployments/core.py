"""The state every part of the deployment service shares (its stores, the workflow, the targets) and
what every operation needs of it: reading a deployment, finding it runnable, writing an operation with
its request, and the template an update reuses. The concerns built on it are its subclasses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import Conflict, NotFound, UnprocessableRequest
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentFilter,
    DeploymentStatus,
    Operation,
    OperationMode,
    OperationRequest,
    OperationStatus,
    Page,
    new_id,
    stack_key,
    utc_now,
)
from chalicelib.domain.noecho import ParameterSplit
from chalicelib.service.deployments.noecho_secrets import secrets_kept
from chalicelib.service.deployments.templates import Template
from chalicelib.service.deployments.values import DeploymentChange, ItemStart, PollSettings, start_writes
from chalicelib.service.ports import (
    DeploymentStore,
    LockStore,
    Metrics,
    NoMetrics,
    ParameterSecrets,
    StackLookup,
    WorkflowStarter,
)
from chalicelib.service.targets import TargetService

if TYPE_CHECKING:
    from chalicelib.service.sources import DeploymentSources


class DeploymentCore:
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
        template: Template | dict[str, Any],
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
            self._store.begin_operation(updated, request, start_writes(for_item, updated))
        return updated

    @staticmethod
    def _request(
        deployment: Deployment, template: Template | dict[str, Any], split: ParameterSplit
    ) -> OperationRequest:
        """What the operation deploys, as kept beside its record: never a NoEcho value."""
        fields = template.request_fields() if isinstance(template, Template) else template
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

    def _template_for(self, deployment: Deployment, change: DeploymentChange) -> Template:
        """The template of an update: the one sent (or read from template_url), else the last one."""
        if change.template_body is not None:
            return Template(
                change.template_body, deployment.template_url, change.template_version, change.template_region
            )
        previous = self._store.get_request(deployment.deployment_id, deployment.operation.operation_id)
        if previous is not None and previous.template_body is not None:
            return Template(previous.template_body, deployment.template_url)
        if previous is not None and previous.template_location is not None and self._sources is not None:
            read = self._sources.read(
                previous.template_location, deployment.account_id, previous.template_version
            )
            return Template(read.body, previous.template_location, previous.template_version, read.region)
        raise UnprocessableRequest(
            "This deployment has no stored template to reuse.",
            code="TEMPLATE_REQUIRED",
            hint="Send template_body with the update.",
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
