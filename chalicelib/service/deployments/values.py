"""The values a caller hands the deployment service: what to create, what to change, how its execution
waits, and which rollout item an operation is started for. Plain values, apart from the operations, as
the API's schemas, the rollouts and the automation hooks build and read them too."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.domain.automation import Notifications
from chalicelib.domain.model import Deployment
from chalicelib.domain.rollouts import ItemRef

if TYPE_CHECKING:
    from chalicelib.service.notifications import NotificationRequest


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
class ItemStart:
    """The rollout item an operation is started for (``ref``, which the operation's execution carries),
    and ``write``: the rollout store's write that records the item as started, for (deployment id,
    operation id). It goes into the transaction that writes the operation, so that an item is
    IN_PROGRESS exactly when its operation exists, with no write before or after it."""

    ref: ItemRef
    write: Callable[[str, str], Mapping[str, Any]] | None = field(default=None, compare=False, repr=False)


def start_writes(for_item: ItemStart | None, deployment: Deployment) -> tuple[Mapping[str, Any], ...]:
    """The writes that record ``for_item`` as started with ``deployment``'s operation, if it has any."""
    if for_item is None or for_item.write is None:
        return ()
    return (for_item.write(deployment.deployment_id, deployment.operation.operation_id),)
