"""What event-driven automation adds to a deployment: a template source, notifications, drift.

Three small values that ride on the ``Deployment`` record, and the rules that need no I/O:

* ``template_url`` (``s3://bucket/key``): the deployment's template lives in S3; a new version of
  that object redeploys it. Only the parsed pointer is kept on the record; the fetched text (at most
  TemplateURL's 1 MB) is stored as the operation's template up to TemplateBody's 51,200 bytes; a
  larger one is handed to CloudFormation as a TemplateURL at the version read.
* ``Notifications``: an SNS topic and/or an HTTPS webhook told of every operation's outcome. The
  webhook's signing secret is never on the record: only the name of the Secrets Manager secret that
  holds it (``webhook_secret_ref``).
* ``DriftInfo``: the last scheduled drift check of the stack, as CloudFormation reported it.

A ``RedeployRequest`` is what an EventBridge event or SNS message asks for, once parsed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from chalicelib.domain.errors import UnprocessableRequest

# Matched whole (fullmatch: ``$`` would take a trailing newline), in ASCII classes.
S3_URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\x00-\x1f\x7f]{1,1024})")
SNS_TOPIC_ARN = re.compile(
    r"arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:(?P<account>[0-9]{12}):[A-Za-z0-9_-]{1,256}"
)
# A redeploy claim older than this has no live claimer and may be taken over (the default of
# NEXUS_REDEPLOY_CLAIM_LEASE_SECONDS; chalicelib/service/redeploys.py says why 45 s).
CLAIM_LEASE_SECONDS = 45


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def https_url(self, region: str, version_id: str | None) -> str:
        """The object as CloudFormation's TemplateURL takes it (path style, which also works for
        bucket names with dots), at ``version_id`` when the bucket is versioned."""
        suffix = ".cn" if region.startswith("cn-") else ""
        query = f"?versionId={quote(version_id, safe='')}" if version_id else ""
        return f"https://s3.{region}.amazonaws.com{suffix}/{self.bucket}/{quote(self.key)}{query}"


def parse_s3_url(url: str) -> S3Location:
    match = S3_URL.fullmatch(url)
    if match is None:
        raise UnprocessableRequest(
            f"template_url {url!r} is not an s3://bucket/key URL.",
            code="INVALID_TEMPLATE_URL",
            hint="Send template_url as s3://BUCKET/KEY (the bucket must belong to the target's account).",
            details={"field": "template_url"},
        )
    return S3Location(match["bucket"], match["key"])


def topic_account(topic_arn: str) -> str | None:
    match = SNS_TOPIC_ARN.fullmatch(topic_arn)
    return match["account"] if match else None


@dataclass(frozen=True)
class Notifications:
    sns_topic_arn: str | None = None
    webhook_url: str | None = None
    webhook_secret_ref: str | None = None  # Secrets Manager secret name; the secret is never stored here

    def public(self) -> dict[str, Any]:
        return {
            "sns_topic_arn": self.sns_topic_arn,
            "webhook_url": self.webhook_url,
            "webhook_signed": self.webhook_secret_ref is not None,
        }

    def as_item(self) -> dict[str, Any]:
        return {
            "sns_topic_arn": self.sns_topic_arn,
            "webhook_url": self.webhook_url,
            "webhook_secret_ref": self.webhook_secret_ref,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Notifications | None:
        if not item:
            return None
        return cls(
            sns_topic_arn=_opt(item.get("sns_topic_arn")),
            webhook_url=_opt(item.get("webhook_url")),
            webhook_secret_ref=_opt(item.get("webhook_secret_ref")),
        )


class DriftStatus(StrEnum):
    IN_SYNC = "IN_SYNC"
    DRIFTED = "DRIFTED"
    UNKNOWN = "UNKNOWN"  # the check could not run or did not finish; ``reason`` says why


@dataclass(frozen=True)
class DriftInfo:
    status: DriftStatus
    checked_at: str
    drifted_resources: int | None = None
    reason: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "checked_at": self.checked_at,
            "drifted_resources": self.drifted_resources,
            "reason": self.reason,
        }

    def as_item(self) -> dict[str, Any]:
        return self.public()

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> DriftInfo | None:
        if not item:
            return None
        count = item.get("drifted_resources")
        return cls(
            status=DriftStatus(item["status"]),
            checked_at=str(item["checked_at"]),
            drifted_resources=None if count is None else int(count),
            reason=_opt(item.get("reason")),
        )


@dataclass(frozen=True)
class Selector:
    """Which of a tenant's deployments a redeploy names when it names no ids; every field must match."""

    target_id: str | None = None
    stack_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def matches(self, target_id: str, stack_name: str, tags: dict[str, str]) -> bool:
        return (
            (self.target_id is None or self.target_id == target_id)
            and (self.stack_name is None or self.stack_name == stack_name)
            and all(tags.get(k) == v for k, v in self.tags.items())
        )

    @property
    def empty(self) -> bool:
        return self.target_id is None and self.stack_name is None and not self.tags


@dataclass(frozen=True)
class RedeployRequest:
    tenant_id: str
    revision: str  # debounce key: the explicit ``revision``, else the event's / message's id
    deployment_ids: tuple[str, ...] = ()
    selector: Selector = field(default_factory=Selector)
    parameters: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    origin: str = "eventbridge"


def revision_key(revision: str) -> str:
    """A fixed-length key for any revision string (event ids, S3 version ids, caller-chosen labels)."""
    return hashlib.sha256(revision.encode("utf-8")).hexdigest()[:32]


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)
