"""What every step shares: ``WorkflowCore`` holds what the service is built with, and the helpers that
more than one concern uses (reading the deployment and its operation's request, assuming the target
role, the stack call's arguments, whether a cancel was requested, events). Each concern's class
inherits from it, and ``WorkflowService`` (chalicelib/service/workflow/__init__.py) is composed from
those classes.
"""

from __future__ import annotations

from chalicelib.domain.automation import parse_s3_url
from chalicelib.domain.errors import STALE_OPERATION, DeployerError, StackOperationError
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentEvent,
    EventSource,
    OperationMode,
    OperationRequest,
    Target,
    age_seconds,
    utc_now,
)
from chalicelib.domain.templates import DEPLOYMENT_TAG
from chalicelib.service.completion import CompletionService
from chalicelib.service.ports import (
    DeploymentStore,
    ItemEnds,
    LockStore,
    Metrics,
    NoMetrics,
    ParameterSecrets,
    StackGateway,
    StackSpec,
    TargetAccess,
)
from chalicelib.service.targets import TargetService
from chalicelib.service.workflow.values import StepInput, WorkflowSettings


def executing_status(before: str | None) -> str:
    """A change set executing: a stack in review (a CREATE change set) is being created, else updated."""
    return "CREATE_IN_PROGRESS" if before in (None, "REVIEW_IN_PROGRESS") else "UPDATE_IN_PROGRESS"


class WorkflowCore:
    def __init__(
        self,
        deployments: DeploymentStore,
        locks: LockStore,
        targets: TargetService,
        access: TargetAccess,
        settings: WorkflowSettings,
        completion: CompletionService,
        secrets: ParameterSecrets | None = None,
        metrics: Metrics | None = None,
        item_ends: ItemEnds | None = None,
    ) -> None:
        self._metrics = metrics or NoMetrics()
        self._secrets = secrets
        self._item_ends = item_ends  # the rollouts: an item started this operation (``rollout_item``)
        self._store = deployments
        self._locks = locks
        self._targets = targets
        self._access = access
        self._settings = settings
        # Where WaitForStackEvent parks its task token, where lost events are marked, and whom the last
        # step tells that the operation ended (a rollout item waits for it): service/completion.py.
        self._completion = completion

    def _deployment(self, step: StepInput) -> Deployment:
        deployment = self._store.get_deployment(step.tenant_id, step.deployment_id)
        if deployment is None:
            raise DeployerError(f"Deployment {step.deployment_id} vanished from the store.")
        return deployment

    def _current(self, step: StepInput) -> Deployment:
        deployment = self._deployment(step)
        if deployment.operation.operation_id != step.operation_id:
            raise DeployerError(
                f"Operation {step.operation_id} is no longer the deployment's current operation.",
                code=STALE_OPERATION,
            )
        return deployment

    def _request(self, deployment: Deployment) -> OperationRequest:
        request = self._store.get_request(deployment.deployment_id, deployment.operation.operation_id)
        if request is None:
            raise DeployerError(f"Operation {deployment.operation.operation_id} has no stored request.")
        return request

    def _target(self, deployment: Deployment) -> Target:
        return self._targets.get(deployment.tenant_id, deployment.target_id)

    def _stacks(self, deployment: Deployment, target: Target | None = None) -> StackGateway:
        target = target or self._target(deployment)
        return self._access.stacks(
            role_arn=target.role_arn,
            external_id=target.external_id,
            session_name=f"nexus-{deployment.operation.operation_id}",
            region=deployment.region,
        )

    def _spec(self, deployment: Deployment, request: OperationRequest) -> StackSpec:
        """The stack call's arguments: NoEcho values fetched from the secret store for this call only,
        the ones left out kept with UsePreviousValue, a large S3 template by its URL."""
        parameters = {k: v for k, v in request.parameters.items() if k not in request.previous_parameters}
        if request.secret_parameters:
            values = self._secrets.get(deployment.operation.operation_id) if self._secrets else None
            if values is None:
                raise StackOperationError(
                    "The NoEcho parameter values of this operation are no longer kept.",
                    code="NOECHO_VALUE_REQUIRED",
                    hint="Send the operation again with the NoEcho values: they are kept only until the "
                    "stack call that uses them.",
                    details={"parameters": list(request.secret_parameters)},
                )
            parameters.update(values)
        template_url = None
        if request.template_location is not None:
            # Through the bucket's own region (any other regional endpoint redirects, and CloudFormation
            # does not follow); a request kept before the region was recorded has only the stack's.
            template_url = parse_s3_url(request.template_location).https_url(
                request.template_region or deployment.region, request.template_version
            )
        return StackSpec(
            stack_name=deployment.stack_name,
            template_body=request.template_body or "",
            parameters=parameters,
            tags={**request.tags, DEPLOYMENT_TAG: deployment.deployment_id},
            use_previous=request.previous_parameters,
            template_url=template_url,
        )

    def _forget_secrets(self, deployment: Deployment) -> None:
        """Delete the operation's NoEcho values: once its stack call was made and recorded, and again
        (a no-op by then) when it ends, whatever happened in between."""
        if deployment.operation.holds_secrets and self._secrets is not None:
            self._secrets.delete(deployment.operation.operation_id)

    def _guard_external_id(self, deployment: Deployment, target: Target) -> None:
        """Before the stack call: AssumeRole without the external ID must be refused (the confused
        deputy), tried once per target and recheck interval (chalicelib/service/targets.py)."""
        if self._targets.external_id_check_due(target):
            refused = self._access.refuses_without_external_id(
                role_arn=target.role_arn, session_name=f"nexus-noextid-{deployment.operation.operation_id}"
            )
            target = self._targets.record_external_id_check(target, refused)
        self._targets.check_external_id(target)

    def _check_deadline(self, deployment: Deployment) -> None:
        if age_seconds(deployment.operation.started_at) > self._settings.operation_timeout_seconds:
            raise StackOperationError(
                f"The stack operation did not finish within {self._settings.operation_timeout_seconds} s.",
                code="OPERATION_TIMED_OUT",
                hint="Look at the stack in the target account; when it settles, retry the operation.",
            )

    def _cancel_requested(self, deployment: Deployment) -> bool:
        operation = deployment.operation
        if operation.action is not Action.UPDATE or operation.mode is OperationMode.PLAN:
            return False
        if operation.phase == "cancelling":
            return False  # sent already
        return self._store.cancel_requested(deployment.deployment_id, operation.operation_id)

    def _event(self, deployment: Deployment, status: str, message: str) -> None:
        self._store.append_events(
            deployment.deployment_id,
            [DeploymentEvent(utc_now(), EventSource.ORCHESTRATOR, status, deployment.stack_name, message)],
        )
