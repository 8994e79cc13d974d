"""The interfaces the services need from the outside world, as ``typing.Protocol``s.

The adapters in ``chalicelib/adapters`` implement them with boto3; tests may implement them in
memory. The small frozen dataclasses here are the data that crosses those boundaries, so the
service layer never sees a boto3 response shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.metrics import Metric
from chalicelib.domain.model import (
    Deployment,
    DeploymentEvent,
    DeploymentFilter,
    OperationRequest,
    Page,
    Target,
)
from chalicelib.domain.plans import PlannedChange
from chalicelib.domain.rollouts import (
    ItemEndNews,
    ItemRef,
    ItemStatus,
    Rollout,
    RolloutFilter,
    RolloutItem,
    RolloutSpec,
)

if TYPE_CHECKING:
    from chalicelib.service.access import AccessReport


@dataclass(frozen=True)
class StackInfo:
    stack_id: str
    stack_name: str
    status: str
    status_reason: str | None
    outputs: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackEventInfo:
    event_id: str
    timestamp: str
    logical_id: str
    resource_type: str
    status: str
    reason: str | None
    client_request_token: str | None


@dataclass(frozen=True)
class ChangeSetInfo:
    status: str  # CREATE_PENDING | CREATE_IN_PROGRESS | CREATE_COMPLETE | FAILED | DELETE_*
    status_reason: str | None
    execution_status: str | None
    has_changes: bool
    changes: tuple[PlannedChange, ...] = ()


@dataclass(frozen=True)
class StackSpec:
    stack_name: str
    template_body: str
    parameters: dict[str, str]
    tags: dict[str, str]
    use_previous: tuple[str, ...] = ()  # parameters sent as UsePreviousValue (NoEcho values never kept)
    template_url: str | None = None  # instead of template_body: an S3 object CloudFormation reads itself

    def template_argument(self) -> dict[str, str]:
        return (
            {"TemplateURL": self.template_url} if self.template_url else {"TemplateBody": self.template_body}
        )


class ParameterSecrets(Protocol):
    """Where NoEcho values wait between the request and the stack call (chalicelib/domain/noecho.py)."""

    def put(self, owner_id: str, values: dict[str, str]) -> None:
        """Keep ``values`` for ``owner_id`` (an operation or a rollout id)."""

    def get(self, owner_id: str) -> dict[str, str] | None:
        """The values kept for ``owner_id``; None when there are none (never kept, or deleted)."""

    def delete(self, owner_id: str) -> None:
        """Forget them now; nothing happens when there are none."""


class TargetStore(Protocol):
    def put_target(self, target: Target) -> None: ...
    def edit_target(self, target: Target) -> None:
        """Write the target's name, regions and profile; NotFound if it was deleted meanwhile."""

    def get_target(self, tenant_id: str, target_id: str) -> Target | None: ...
    def list_targets(self, tenant_id: str, limit: int, next_token: str | None) -> Page: ...
    def delete_target(self, tenant_id: str, target_id: str) -> None: ...
    def record_external_id_check(self, target: Target, enforced: bool, checked_at: str) -> None: ...


class DeploymentStore(Protocol):
    def create_deployment(
        self, deployment: Deployment, request: OperationRequest, also: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Write a new deployment and claim its (target, region, stack name); Conflict if taken.
        ``also``: writes of the caller's, in the same transaction (``ItemStart.write``);
        StartGuardFailed, and nothing written, if one of them is refused."""

    def begin_operation(
        self,
        deployment: Deployment,
        request: OperationRequest,
        also: Sequence[Mapping[str, Any]] = (),
        *,
        release_name: bool = False,
    ) -> None:
        """Replace the deployment's operation; Conflict if its current operation still runs. ``also``:
        as in ``create_deployment``. ``release_name``: free its stack name in the same write (forget)."""

    def save_deployment(self, deployment: Deployment, final_event: DeploymentEvent | None = None) -> bool:
        """Persist progress of the deployment's current operation; refused for a stale operation.

        With ``final_event`` (the operation has ended): the record and that event are written together,
        once; a retried step that finds the operation already ended writes nothing and gets False."""

    def release_stack_name(self, deployment: Deployment) -> None: ...
    def claimed_deployment_id(self, target_id: str, region: str, stack_name: str) -> str | None:
        """The live deployment that holds (target, region, stack name), if any."""

    def request_cancel(self, deployment_id: str, operation_id: str) -> None:
        """Record that the operation should be cancelled (its own item: the workflow's writes keep it)."""

    def cancel_requested(self, deployment_id: str, operation_id: str) -> bool: ...

    def get_deployment(self, tenant_id: str, deployment_id: str) -> Deployment | None: ...
    def get_request(self, deployment_id: str, operation_id: str) -> OperationRequest | None: ...
    def list_deployments(
        self, tenant_id: str, filters: DeploymentFilter, *, limit: int, next_token: str | None
    ) -> Page: ...
    def count_deployments(self, tenant_id: str, filters: DeploymentFilter) -> int: ...
    def append_events(self, deployment_id: str, events: list[DeploymentEvent]) -> None: ...
    def list_events(self, deployment_id: str, limit: int, next_token: str | None) -> Page: ...


class LockStore(Protocol):
    def acquire_lock(self, key: str, owner: str, lease_seconds: int) -> bool:
        """Take or renew the lock; True when ``owner`` holds it afterwards."""

    def renew_lock(self, key: str, owner: str, lease_seconds: int) -> bool:
        """Extend the lease of ``owner``'s lock; False when ``owner`` does not hold it (never takes it)."""

    def release_lock(self, key: str, owner: str) -> None: ...
    def lock_holder(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class StackStatusEvent:
    """One CloudFormation "Stack Status Change" event, as the completion waiter needs it."""

    client_request_token: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class Signalled:
    """What a stack event found at its stack's waiter record: the task token it took (None: the event
    was kept for the next waiter), and the log keys the record keeps for the operation it waits for,
    when the event is that operation's ({} otherwise: ``wait`` stored none, or another operation waits)."""

    task_token: str | None
    log_keys: Mapping[str, str] = field(default_factory=dict)


class CompletionWaiters(Protocol):
    """Where a waiting execution's task token meets the stack events that release it (one per stack).

    Events and waiters race: an event may arrive before its waiter registers. Each side does one
    atomic write that also reads what the other left, so whichever comes second releases the task.
    """

    def wait(
        self,
        key: str,
        operation_id: str,
        task_token: str,
        tokens: tuple[str, ...],
        log_keys: Mapping[str, str] | None = None,
    ) -> StackStatusEvent | None:
        """Register the waiter, with the log keys of its operation (kept for the events of ``tokens``);
        answer an event for ``tokens`` recorded before it (consuming it)."""

    def signal(self, key: str, event: StackStatusEvent) -> Signalled:
        """Take the task token this event releases (then no longer waiting), or keep the event for the
        next waiter; with the log keys of the operation the event is for, if the record keeps them."""

    def wake(self, key: str, operation_id: str) -> str | None:
        """Take the task token of ``operation_id``'s waiter, if it is waiting."""

    def restore(self, key: str, task_token: str) -> bool:
        """Give back a token ``signal`` or ``wake`` took whose release failed (False: a waiter came since)."""

    def restore_event(self, key: str, event: StackStatusEvent, tokens: tuple[str, ...]) -> bool:
        """Give back an event ``wait`` used up whose release failed (False: one for ``tokens`` came since)."""

    def mark_events_lost(self, account_id: str, region: str, seconds: int) -> None:
        """No stack event came from this account and region when it should have: poll there a while."""

    def events_lost(self, account_id: str, region: str) -> bool:
        """Whether ``mark_events_lost`` marked this account and region and its time has not run out."""


class TaskCallbacks(Protocol):
    def release(self, task_token: str, output: dict[str, Any]) -> bool:
        """SendTaskSuccess; False when the task is no longer waiting (released already, or timed out)."""


class TokenStore(Protocol):
    def tenant_for_token_hash(self, token_sha256: str) -> str | None: ...
    def put_token(self, token_sha256: str, tenant_id: str, label: str) -> None: ...


class WorkflowStarter(Protocol):
    def start(self, execution_name: str, execution_input: dict[str, Any]) -> str: ...


class StackGateway(Protocol):
    """CloudFormation in one target account and region, through an assumed role."""

    def describe_stack(self, stack: str) -> StackInfo | None: ...
    def create_stack(self, spec: StackSpec, client_request_token: str) -> str: ...
    def create_change_set(
        self, spec: StackSpec, change_set_name: str, change_set_type: str = "UPDATE"
    ) -> None:
        """CREATE for a stack that does not exist yet (it appears in REVIEW_IN_PROGRESS), else UPDATE."""

    def describe_change_set(self, stack: str, change_set_name: str) -> ChangeSetInfo:
        """The change set's status and, once computed, all its resource changes (every page)."""

    def execute_change_set(self, stack: str, change_set_name: str, client_request_token: str) -> None: ...
    def delete_change_set(self, stack: str, change_set_name: str) -> None: ...
    def delete_stack(
        self, stack_id: str, client_request_token: str, retain_resources: tuple[str, ...] = ()
    ) -> None: ...
    def cancel_update_stack(self, stack_id: str, client_request_token: str) -> None: ...
    def continue_update_rollback(
        self, stack_id: str, client_request_token: str, resources_to_skip: tuple[str, ...] = ()
    ) -> None: ...
    def new_events(
        self, stack_id: str, client_request_token: str, since_event_id: str | None, not_before: str
    ) -> list[StackEventInfo]:
        """This operation's events newer than ``since_event_id``, oldest first."""


class TargetAccess(Protocol):
    """Opens a session in a target account; credentials stay inside the returned gateway."""

    def stacks(self, *, role_arn: str, external_id: str, session_name: str, region: str) -> StackGateway: ...
    def refuses_without_external_id(self, *, role_arn: str, session_name: str) -> bool:
        """True when AssumeRole *without* an external ID is refused (AccessDenied), as it must be."""


class IdempotencyGuard(Protocol):
    def run(
        self, key: str, fingerprint: str, produce: Callable[[], dict[str, Any]], lambda_context: Any = None
    ) -> dict[str, Any]:
        """Run ``produce`` once per key; replay its result; Conflict when the fingerprint differs."""


@dataclass(frozen=True)
class CallerIdentity:
    account: str
    arn: str
    user_id: str


@dataclass(frozen=True)
class ActionDecision:
    action: str
    decision: str  # IAM's EvalDecision: allowed | implicitDeny | explicitDeny

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"


class RoleSession(Protocol):
    """A role assumed in a target account; its credentials never leave the adapter."""

    def caller_identity(self) -> CallerIdentity: ...
    def simulate(self, actions: list[str]) -> list[ActionDecision]:
        """``iam:SimulatePrincipalPolicy`` on the assumed role itself, one decision per action."""


class TemplatePublisher(Protocol):
    """Where bootstrap templates wait for CloudFormation's quick-create link (the service's S3 bucket)."""

    def url(self, key: str) -> str:
        """The https:// URL CloudFormation reads the object at ``key`` from (no I/O)."""

    def publish(self, key: str, body: str) -> None:
        """Write ``body`` at ``key``; writing the same key again writes the same object."""


class RoleProbe(Protocol):
    """Assumes target roles to check them, with or without the external ID."""

    def assume(self, *, role_arn: str, external_id: str | None, session_name: str) -> RoleSession: ...


class CredentialChecks(Protocol):
    """Test Credentials on a target (``chalicelib/service/access.py``): run where target roles trust."""

    def validate(self, target: Target) -> AccessReport: ...


class StackLookup(Protocol):
    """Reads one stack through the target's role; None when CloudFormation has no such stack.

    Raises TargetAccessError when the role cannot be assumed."""

    def find_stack(
        self, target: Target, *, region: str, stack: str, session_name: str
    ) -> StackInfo | None: ...


class ItemEnds(Protocol):
    """The rollouts' side of a deployment's end (``RolloutService.end_from_deployment``)."""

    def end_from_deployment(self, tenant_id: str, item: ItemRef, deployment: Deployment) -> ItemEndNews:
        """Record the item's end from its ended deployment; not ended when the item cannot be ended
        from it (not running that operation), so its workflow reads it itself. With
        the token of the StartItem task that waits for the end, if the item's record holds one."""


class RolloutStore(Protocol):
    """Rollouts, their items and their spec (``chalicelib/adapters/rollouts.py``)."""

    def create_rollout(self, rollout: Rollout, items: list[RolloutItem], spec: RolloutSpec) -> None: ...
    def get_rollout(self, tenant_id: str, rollout_id: str) -> Rollout | None: ...
    def list_rollouts(
        self, tenant_id: str, filters: RolloutFilter, *, limit: int, next_token: str | None
    ) -> tuple[list[Rollout], str | None]:
        """A page of the tenant's rollouts (oldest id first) and the next page's token."""

    def save_rollout(self, rollout: Rollout, *, pause_spent: bool = False) -> None:
        """Write progress; leaves the ``failed`` counter and ``cancel_requested`` as they are, and
        ``pause_requested`` too unless ``pause_spent`` (cleared in the same write)."""

    def request_cancel(self, tenant_id: str, rollout_id: str) -> None: ...
    def request_pause(self, tenant_id: str, rollout_id: str, requested: bool) -> None:
        """Set (or clear) the flag the workflow reads between waves."""

    def get_spec(self, rollout_id: str) -> RolloutSpec | None: ...
    def get_item(self, rollout_id: str, index: int) -> RolloutItem | None: ...
    def list_items(self, rollout_id: str) -> list[RolloutItem]: ...
    def item_and_rollout(
        self, tenant_id: str, rollout_id: str, index: int
    ) -> tuple[RolloutItem | None, Rollout | None]:
        """The item and its rollout, in one read (either None if missing)."""

    def start_write(self, item: RolloutItem) -> Mapping[str, Any]:
        """The write that records ``item`` (IN_PROGRESS) only while it is PENDING, for the transaction
        that writes its operation (``ItemStart.write``)."""

    def save_item(self, item: RolloutItem, *, reopen: bool = False, only_pending: bool = False) -> bool:
        """Write an item's progress unless it has ended (False then); ``reopen`` writes it regardless;
        ``only_pending``: only while it is PENDING."""

    def end_items(
        self, tenant_id: str, items: list[RolloutItem], on_ended: Callable[[int], None] | None = None
    ) -> int:
        """``end_item`` for many items none of which FAILED, in as few writes as the store can; how many
        it ended (not those that had started or ended meanwhile). ``on_ended`` hears each write's count
        as it is written, so a failure part-way loses none of those already ended."""

    def end_item(self, tenant_id: str, item: RolloutItem, *, only_pending: bool = False) -> bool:
        """Record the item's final status once (False if it had ended, or with ``only_pending`` had
        started); FAILED adds 1 to ``failed``."""

    def end_running_item(
        self, ref: ItemRef, operation_id: str, status: ItemStatus, changes: list[dict[str, Any]] | None
    ) -> tuple[bool, RolloutItem | None]:
        """End the item with ``status`` (not FAILED) only while it runs ``operation_id``, in one write
        that answers with the item: (True, as written), or (False, as it is; None if there is none)."""


class Metrics(Protocol):
    """Where the services count what happens (chalicelib/domain/metrics.py lists every metric)."""

    def add(self, metric: Metric, value: float = 1.0, **dimensions: str) -> None:
        """One data point; ``dimensions`` name exactly the metric's own. Never raises for I/O."""


class NoMetrics:
    """The ``Metrics`` of a service built without any (some tests): counts nothing."""

    def add(self, metric: Metric, value: float = 1.0, **dimensions: str) -> None:
        metric.check(dimensions)
