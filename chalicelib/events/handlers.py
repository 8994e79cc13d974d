"""What ``app.py``'s event handlers run: check where the event came from, parse it, one service call.

Every handler returns normally, whatever the event holds: a malformed event, one from another
account, or one naming unknown deployments is logged as one structured warning (JSON through chalicelib/observability.py) and dropped,
so EventBridge, SNS and Lambda never retry it. The warning holds the event's id, source and the
names of the fields that failed, never their values (parameters may carry secrets). Only an AWS that
throttled (TransientAwsError, ``RETRIED``) fails the function, for Lambda to deliver the event again.

Trust model: EventBridge's default bus and the redeploy SNS topic accept events only from principals
of the service's own account unless their resource policies say otherwise, so an event whose
``account`` (or whose topic's account) is not the service's own is dropped. ``tenant_id`` in the
event is then trusted as the operator's choice, and every deployment id or selector is looked up
under that tenant only. S3 "Object Created" events (source ``aws.s3``, which only AWS can emit)
name no tenant: they reach the deployments subscribed to that object.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from chalicelib.api.schemas import PARAM_KEY, PARAM_VALUE, STACK_NAME, TAG_KEY, TAG_VALUE, TARGET_ID
from chalicelib.composition import Services
from chalicelib.domain import bootstrap
from chalicelib.domain.automation import RedeployRequest, S3Location, Selector
from chalicelib.domain.errors import DeployerError, TransientAwsError
from chalicelib.domain.model import ExecutionEnd
from chalicelib.domain.templates import MAX_PARAMETERS
from chalicelib.observability import bind, input_keys
from chalicelib.service.completion import StackRef
from chalicelib.service.ports import StackStatusEvent
from chalicelib.service.redeploys import RedeployReport
from chalicelib.service.workflow import StepInput

logger = logging.getLogger(__name__)

REDEPLOY_SOURCE = "nexus.deployer"
REDEPLOY_DETAIL_TYPE = "Redeploy Requested"
REDEPLOY_PATTERN = {"source": [REDEPLOY_SOURCE], "detail-type": [REDEPLOY_DETAIL_TYPE]}
OBJECT_CREATED_PATTERN = {"source": ["aws.s3"], "detail-type": ["Object Created"]}
# Only our operations' events; the bootstrap template's forwarding rule uses the same pattern, so
# other stacks' events do not even leave their account.
STACK_STATUS_PATTERN = bootstrap.STACK_STATUS_PATTERN
# Step Functions' event for an execution that ended without succeeding. Every state machine of the
# account and region matches; the handler keeps only the service's own two.
EXECUTION_STATUS_PATTERN = {
    "source": ["aws.states"],
    "detail-type": ["Step Functions Execution Status Change"],
    "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"]},
}
# What leaves a handler for Lambda to retry the event (the execution-ended, stack-status and redeploy
# handlers): AWS still throttling after botocore's retries.
RETRIED: tuple[type[Exception], ...] = (TransientAwsError,)
# The name chalice subscribes RedeployMessage to; the template names the topic per stack
# (`<stack>-redeploy-requests`) and infra/package.py points the subscription at that resource.
REDEPLOY_TOPIC = "nexus-deployer-redeploy-requests"
DEPLOYMENT_ID = Annotated[str, StringConstraints(pattern=r"^dep-[0-9a-f]{24}$", strict=True)]


class _Detail(BaseModel):
    """An event's detail, its validator built when the first event comes, not when the module is
    imported: every function imports this module (``app``), and only the event handlers read events."""

    model_config = ConfigDict(defer_build=True)


class RedeployDetail(_Detail):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    tenant_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$", strict=True)]
    deployment_ids: Annotated[list[DEPLOYMENT_ID], Field(max_length=100)] = []
    target_id: TARGET_ID | None = None
    stack_name: STACK_NAME | None = None
    tags: Annotated[dict[TAG_KEY, TAG_VALUE], Field(max_length=50)] = {}  # a selector, not a stack's tags
    parameters: Annotated[dict[PARAM_KEY, PARAM_VALUE], Field(max_length=MAX_PARAMETERS)] = {}
    reason: Annotated[str, StringConstraints(max_length=512, strict=True)] = ""
    revision: Annotated[str, StringConstraints(min_length=1, max_length=256, strict=True)] | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> Self:
        selector = self.target_id is not None or self.stack_name is not None or bool(self.tags)
        if bool(self.deployment_ids) == selector:
            raise ValueError("name either deployment_ids or a selector (target_id, stack_name, tags)")
        return self

    def request(self, revision: str, origin: str) -> RedeployRequest:
        return RedeployRequest(
            tenant_id=self.tenant_id,
            revision=self.revision or revision,
            deployment_ids=tuple(dict.fromkeys(self.deployment_ids)),
            selector=Selector(self.target_id, self.stack_name, dict(self.tags)),
            parameters=dict(self.parameters),
            reason=self.reason,
            origin=origin,
        )


class _StatusDetails(_Detail):
    status: Annotated[str, StringConstraints(pattern=r"^[A-Z_]{4,64}$", strict=True)]
    status_reason: Annotated[str, StringConstraints(max_length=4096)] = Field(
        default="", alias="status-reason"
    )


class StackStatusDetail(_Detail):
    """The detail of CloudFormation's "Stack Status Change" event."""

    stack_id: StrictStr = Field(alias="stack-id")
    status_details: _StatusDetails = Field(alias="status-details")
    client_request_token: Annotated[str, StringConstraints(max_length=128)] = Field(
        default="", alias="client-request-token"
    )


class ExecutionStatusDetail(_Detail):
    """The detail of Step Functions' "Execution Status Change" event (the fields read here)."""

    execution_arn: Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:states:", strict=True)] = Field(
        alias="executionArn"
    )
    state_machine_arn: StrictStr = Field(alias="stateMachineArn")
    status: Literal["FAILED", "TIMED_OUT", "ABORTED"]
    input: StrictStr
    error: Annotated[str, StringConstraints(max_length=256)] | None = None


class _ExecutionInput(_Detail):
    """What both workflows' inputs hold for this: whose execution it is."""

    tenant_id: Annotated[str, StringConstraints(min_length=1, max_length=128, strict=True)]


class _S3Bucket(_Detail):
    name: StrictStr


class _S3Object(_Detail):
    key: StrictStr
    version_id: StrictStr | None = Field(default=None, alias="version-id")


class ObjectCreatedDetail(_Detail):
    bucket: _S3Bucket
    object: _S3Object


def _service_account(services: Services) -> str:
    return services.settings.service_principal_arn.split(":")[4]


def _drop(reason: str, **fields: Any) -> dict[str, Any]:
    logger.warning("event dropped", extra={"reason": reason, **fields})
    return {"dropped": reason}


def _invalid_fields(error: ValidationError) -> list[str]:
    return sorted(
        {".".join(str(p) for p in e["loc"]) or "(detail)" for e in error.errors(include_input=False)}
    )


def redeploy_requested(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge: source ``nexus.deployer``, detail-type ``Redeploy Requested``."""
    event_id = str(event.get("id", ""))
    if str(event.get("account", "")) != _service_account(services):
        return _drop("foreign-account", event_id=event_id, account=str(event.get("account", ""))[:12])
    return _redeploy(services, event.get("detail"), event_id, "eventbridge")


def redeploy_message(services: Services, record: dict[str, Any]) -> dict[str, Any]:
    """SNS: the message is the same JSON as the EventBridge event's detail."""
    sns: dict[str, Any] = record["Sns"] if isinstance(record.get("Sns"), dict) else record
    message_id = str(sns.get("MessageId", ""))
    topic_arn = str(sns.get("TopicArn", ""))
    parts = topic_arn.split(":")
    if len(parts) < 6 or parts[4] != _service_account(services):
        return _drop("foreign-topic", event_id=message_id)
    try:
        detail = json.loads(sns.get("Message") or "")
    except (TypeError, ValueError):
        return _drop("malformed-json", event_id=message_id)
    return _redeploy(services, detail, message_id, "sns")


def _redeploy(services: Services, detail: Any, event_id: str, origin: str) -> dict[str, Any]:
    if not event_id:
        return _drop("no-event-id", origin=origin)
    try:
        parsed = RedeployDetail.model_validate(detail)
    except ValidationError as error:
        return _drop("malformed-detail", origin=origin, event_id=event_id, fields=_invalid_fields(error))
    bind(tenant_id=parsed.tenant_id)  # each deployment's lines add its own ids (RedeployService)
    try:
        report = services.redeploys.redeploy(parsed.request(f"{origin}:{event_id}", origin))
    except TransientAwsError:
        raise
    except DeployerError as error:
        return _drop("refused", origin=origin, event_id=event_id, error_code=error.code)
    if report.not_found:
        _drop("unknown-deployments", origin=origin, event_id=event_id, deployment_ids=report.not_found)
    return _answered(report)


def object_created(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge: source ``aws.s3``, detail-type ``Object Created`` (the bucket's EventBridge
    notifications on, and events forwarded to the service's bus when the bucket is elsewhere)."""
    event_id = str(event.get("id", ""))
    try:
        detail = ObjectCreatedDetail.model_validate(event.get("detail"))
    except ValidationError as error:
        return _drop("malformed-detail", origin="s3", event_id=event_id, fields=_invalid_fields(error))
    if not event_id:
        return _drop("no-event-id", origin="s3")
    location = S3Location(detail.bucket.name, detail.object.key)
    try:
        report = services.redeploys.template_changed(location, detail.object.version_id, event_id)
    except TransientAwsError:
        raise
    except DeployerError as error:
        return _drop("refused", origin="s3", event_id=event_id, error_code=error.code)
    return _answered(report)


def _answered(report: RedeployReport) -> dict[str, Any]:
    """The report; or, when AWS refused some redeploys for a while (their claims released), a
    TransientAwsError, which leaves the function (``RETRIED``) so that Lambda runs the event again."""
    if report.transient:
        raise TransientAwsError(
            f"AWS refused the redeploy of {', '.join(report.transient)} for now (throttled); the event is "
            f"delivered again ({len(report.started)} started, which the retry finds claimed)"
        )
    return report.public()


def stack_status_changed(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge: CloudFormation's "Stack Status Change", forwarded from a target account.

    It can only wake a waiting workflow for one reconcile (see chalicelib/service/completion.py), so
    any account's event is taken; one whose stack-id is not a stack ARN is dropped. A throttled AWS
    leaves the function (``RETRIED``) for Lambda to run the event again: had the release failed, its
    token is back on the waiter's record, so the retry releases the wait instead of leaving it to its
    timeout. An event that reaches the waiter's record of its operation logs as that operation (the
    record keeps its keys); one of a status still in progress, which nothing reads, as itself.
    """
    event_id = str(event.get("id", ""))
    try:
        detail = StackStatusDetail.model_validate(event.get("detail"))
    except ValidationError as error:
        return _drop(
            "malformed-detail", origin="cloudformation", event_id=event_id, fields=_invalid_fields(error)
        )
    stack = StackRef.from_stack_id(detail.stack_id)
    if stack is None:
        return _drop("malformed-detail", origin="cloudformation", event_id=event_id, fields=["stack-id"])
    outcome = services.completion.stack_status_changed(
        stack,
        StackStatusEvent(
            detail.client_request_token, detail.status_details.status, detail.status_details.status_reason
        ),
    )
    return {"stack_event": outcome}


def _execution_end(
    services: Services, event: dict[str, Any], machine_arn: str
) -> tuple[ExecutionEnd, dict[str, Any]] | dict[str, Any]:
    """The end and the input of one of ``machine_arn``'s executions; or why the event is dropped."""
    event_id = str(event.get("id", ""))
    if str(event.get("account", "")) != _service_account(services):
        return _drop("foreign-account", origin="states", event_id=event_id)
    raw = event.get("detail")
    machine = raw.get("stateMachineArn") if isinstance(raw, dict) else None
    if not machine_arn or machine != machine_arn:
        return {"ignored": "another-state-machine"}  # every machine's events match the rule: no warning
    try:
        detail = ExecutionStatusDetail.model_validate(raw)
        _ExecutionInput.model_validate_json(detail.input)
    except ValidationError as error:
        return _drop("malformed-detail", origin="states", event_id=event_id, fields=_invalid_fields(error))
    end = ExecutionEnd(detail.execution_arn, detail.status, detail.error)
    started: dict[str, Any] = json.loads(detail.input)
    # From here on the event's lines are its execution's: its ids, and the correlation id it ran under.
    bind(**input_keys(started))
    return end, started


def deployment_execution_ended(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge: Step Functions' "Execution Status Change" for a deployment execution that FAILED,
    TIMED_OUT or was ABORTED: its operation ends in a recorded state even when the execution never
    reached its own last step (``WorkflowService.execution_ended``).

    A throttled AWS is not dropped: TransientAwsError leaves the function (``RETRIED``), so Lambda
    retries the event, and after its retries it lands in the dead-letter queue."""
    found = _execution_end(services, event, services.settings.state_machine_arn)
    if isinstance(found, dict):
        return found
    end, started = found
    event_id = str(event.get("id", ""))
    try:
        step = StepInput.from_event(started)
    except (KeyError, TypeError, ValueError):
        return _drop("malformed-input", origin="states", event_id=event_id)
    try:
        return services.workflow.execution_ended(step, end)
    except TransientAwsError:
        raise
    except DeployerError as error:
        return _drop("refused", origin="states", event_id=event_id, error_code=error.code)


def rollout_execution_ended(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """The same event for a rollout execution: the rollout ends FAILED if it had not ended
    (``RolloutService.execution_ended``)."""
    found = _execution_end(services, event, services.settings.rollout_state_machine_arn)
    if isinstance(found, dict):
        return found
    end, started = found
    event_id = str(event.get("id", ""))
    if not isinstance(started.get("rollout_id"), str):
        return _drop("malformed-input", origin="states", event_id=event_id)
    try:
        return services.rollouts.execution_ended(str(started["tenant_id"]), started["rollout_id"], end)
    except TransientAwsError:
        raise
    except DeployerError as error:
        return _drop("refused", origin="states", event_id=event_id, error_code=error.code)


def drift_check(services: Services) -> dict[str, Any]:
    try:
        return {"drift": services.drift.check_all().counts}
    except DeployerError as error:
        return _drop("drift-check-failed", origin="schedule", error_code=error.code)


def guarded(run: Any, *args: Any, retried: tuple[type[Exception], ...] = ()) -> dict[str, Any]:
    """The last line: a bug in one event must not make Lambda retry it, or EventBridge resend it.
    Only the errors named in ``retried`` leave the function, for Lambda to retry the event."""
    try:
        result: dict[str, Any] = run(*args)
        return result
    except retried:
        raise
    except Exception as error:
        logger.exception("event handler failed", extra={"error_type": type(error).__name__})
        return {"dropped": "internal-error"}
