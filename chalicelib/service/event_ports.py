"""The ports of event-driven automation: template objects, the redeploy ledger, drift, notifications.

Kept beside ``ports.py`` rather than in it so the automation's adapters (``adapters/s3.py``,
``adapters/automation_store.py``, ``adapters/drift.py``, ``adapters/notify.py``) can change without
touching the core service's interfaces. Same rules: ``typing.Protocol`` only, frozen dataclasses for
what crosses the boundary, no boto3 shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from chalicelib.domain.automation import DriftInfo, S3Location
from chalicelib.domain.model import Deployment


@dataclass(frozen=True)
class TemplateObject:
    body: str
    version_id: str | None
    region: str | None = None  # the bucket's region (S3's x-amz-bucket-region), where TemplateURL points


class TemplateObjects(Protocol):
    def read(
        self, location: S3Location, *, version_id: str | None, expected_owner: str, max_bytes: int
    ) -> TemplateObject:
        """The object's text; refused (PayloadTooLarge) above ``max_bytes``, or when the bucket is not
        owned by ``expected_owner`` (S3's ExpectedBucketOwner)."""


@dataclass(frozen=True)
class TemplateSubscriber:
    tenant_id: str
    deployment_id: str


@dataclass(frozen=True)
class RevisionClaim:
    """What a claim of (deployment, revision) came to: ``taken`` by this call; else, when the claim
    held is older than its lease (its claimer is gone), when that claim was made (``stale_since``,
    seconds since the epoch)."""

    taken: bool
    stale_since: float | None = None


class AutomationStore(Protocol):
    def claim_revision(
        self, deployment_id: str, revision_key: str, ttl_seconds: int, origin: str, lease_seconds: int
    ) -> RevisionClaim:
        """Conditional put: taken for the first claim of (deployment, revision) while its TTL lasts."""

    def take_over_revision(
        self, deployment_id: str, revision_key: str, stale_since: float, ttl_seconds: int, origin: str
    ) -> bool:
        """Conditional put: the claim made at ``stale_since`` is now this call's; False when another
        call took it over first."""

    def release_revision(self, deployment_id: str, revision_key: str) -> None: ...
    def subscribe_template(self, url: str, tenant_id: str, deployment_id: str) -> None: ...
    def unsubscribe_template(self, url: str, deployment_id: str) -> None: ...
    def template_subscribers(self, url: str) -> list[TemplateSubscriber]: ...
    def active_deployments(self) -> Iterator[Deployment]:
        """Every tenant's ACTIVE deployments (a paginated scan: for the scheduled drift check only)."""

    def record_drift(self, tenant_id: str, deployment_id: str, drift: DriftInfo) -> None:
        """Set only the deployment's ``drift`` (an UpdateItem), never the operation the workflow owns."""


@dataclass(frozen=True)
class DriftResult:
    done: bool
    stack_drift_status: str | None  # DRIFTED | IN_SYNC | UNKNOWN | NOT_CHECKED
    drifted_resources: int | None
    reason: str | None


class DriftGateway(Protocol):
    def start(self, stack: str) -> str:
        """DetectStackDrift; returns the detection id."""

    def result(self, detection_id: str) -> DriftResult:
        """DescribeStackDriftDetectionStatus."""


class DriftAccess(Protocol):
    def drift(self, *, role_arn: str, external_id: str, session_name: str, region: str) -> DriftGateway: ...


class SecretStore(Protocol):
    def put(self, name: str, value: str) -> str:
        """Store ``value`` under ``name``; return the reference to keep (the secret's name)."""

    def get(self, reference: str) -> str: ...

    def delete(self, reference: str) -> None:
        """Delete the secret at once (no recovery window); one already gone is not an error."""


class TopicPublisher(Protocol):
    def publish(self, topic_arn: str, subject: str, message: str, attributes: dict[str, str]) -> None: ...


class WebhookPoster(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body``; return the HTTP status. Raises NotificationFailed when nothing answered."""
