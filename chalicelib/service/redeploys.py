"""Redeploys started by events: a "Redeploy Requested" event or message, or a new template version in S3.

Every redeploy is ``DeploymentService.update`` (so it takes the same checks, lock and workflow as
PUT /deployments/{id}), preceded by a claim: a DynamoDB conditional put keyed by (deployment,
revision), with a TTL. The revision is the event's explicit ``revision``, else the S3 object's version
id, else the event's or message's id, so EventBridge's at-least-once delivery, SNS retries and a
client that sends the same request a thousand times start one redeploy. A claim whose update is
refused (an operation already running, a template that no longer fits) is released, so a later
delivery of the same revision may try again; when AWS refused it (throttling), the handler fails the
event so that Lambda delivers it again (``RedeployReport.transient``). A claim left behind by a
claimer that ended without beginning its redeploy (the release throttled too, or its Lambda died) is
taken over once it is older than its lease (``claim_lease_seconds``).

Trust model (see ``chalicelib/events/handlers.py`` for the checks at the edge): a redeploy request
names its tenant (``tenant_id``) and everything it names is looked up under that tenant only; the
event must come from the service's own account (its default bus, its own SNS topic), whose IAM
policies decide who may send one. An S3 event names no tenant: it only says "look again" to the
deployments subscribed to that object, and each reads the new version with the bucket owner pinned
to its own target account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from chalicelib.domain.automation import CLAIM_LEASE_SECONDS, RedeployRequest, S3Location, revision_key
from chalicelib.domain.errors import DeployerError, InvalidRequest, NotFound, TransientAwsError
from chalicelib.domain.model import (
    Deployment,
    DeploymentEvent,
    DeploymentFilter,
    DeploymentStatus,
    EventSource,
    Outcome,
    epoch_seconds,
    utc_now,
)
from chalicelib.observability import binding
from chalicelib.service.deployments import DeploymentChange, DeploymentService
from chalicelib.service.event_ports import AutomationStore, RevisionClaim
from chalicelib.service.ports import DeploymentStore
from chalicelib.service.sources import DeploymentSources

logger = logging.getLogger(__name__)

MAX_DEPLOYMENTS_PER_EVENT = 200
MAX_REASON_CHARS = 256

# Builds the change only once the claim is held: reading S3 is not free.
ChangeFactory = Callable[[], DeploymentChange]


def _logged_as(deployment: Deployment) -> AbstractContextManager[None]:
    """One deployment of a redeploy: its lines carry its tenant and id (and the operation it starts),
    none of them left on the next deployment's lines."""
    return binding(tenant_id=deployment.tenant_id, deployment_id=deployment.deployment_id)


def _fixed(change: DeploymentChange) -> ChangeFactory:
    return lambda: change


@dataclass(frozen=True)
class RedeploySettings:
    claim_ttl_seconds: int = 7 * 24 * 3600
    # A claim older than this has no live claimer: longer than the event handlers' Lambda timeout
    # (30 s, .chalice/config.json; tests/package/test_limits_and_names.py fails if a claiming function's
    # timeout reaches it), shorter than the minute Lambda waits before it runs a failed event again,
    # so that retry can take over a claim whose redeploy never began.
    claim_lease_seconds: int = CLAIM_LEASE_SECONDS


@dataclass
class RedeployReport:
    started: dict[str, str] = field(default_factory=dict)  # deployment id -> operation id
    duplicates: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # deployment id -> error code
    unchanged: list[str] = field(default_factory=list)  # S3: the new version is the deployed template
    # Of ``refused``: refused by a throttled or briefly failing AWS (TransientAwsError), their claims
    # released. The event's handler fails for these, so that Lambda runs the event again: the ones
    # started are then duplicates, and these are tried again.
    transient: list[str] = field(default_factory=list)

    def public(self) -> dict[str, object]:
        return {
            "started": dict(self.started),
            "duplicates": list(self.duplicates),
            "not_found": list(self.not_found),
            "refused": dict(self.refused),
            "unchanged": list(self.unchanged),
        }


class RedeployService:
    def __init__(
        self,
        deployments: DeploymentService,
        store: AutomationStore,
        history: DeploymentStore,
        sources: DeploymentSources,
        settings: RedeploySettings,
    ) -> None:
        self._deployments = deployments
        self._store = store
        self._history = history
        self._sources = sources
        self._settings = settings

    def redeploy(self, request: RedeployRequest) -> RedeployReport:
        if not request.deployment_ids and request.selector.empty:
            raise InvalidRequest("A redeploy must name deployment_ids or a selector.", code="NO_SELECTION")
        report = RedeployReport()
        for deployment in self._matching(request, report):
            change = DeploymentChange(
                None, {**deployment.parameters, **request.parameters} if request.parameters else None, None
            )
            with _logged_as(deployment):
                self._redeploy_one(
                    deployment,
                    request.revision,
                    request.origin,
                    _fixed(change),
                    request.reason,
                    report,
                )
        return report

    def template_changed(self, location: S3Location, version_id: str | None, event_id: str) -> RedeployReport:
        """A new object landed at ``location``: redeploy every live deployment built from it."""
        report = RedeployReport()
        revision = f"s3:{version_id}" if version_id else f"event:{event_id}"
        for subscriber in self._store.template_subscribers(location.url):
            try:
                deployment = self._deployments.get(subscriber.tenant_id, subscriber.deployment_id)
            except NotFound:
                deployment = None
            if deployment is None or not deployment.live or deployment.template_url != location.url:
                self._store.unsubscribe_template(location.url, subscriber.deployment_id)
                report.not_found.append(subscriber.deployment_id)
                continue

            def change(deployment: Deployment = deployment) -> DeploymentChange:
                read = self._sources.read(location.url, deployment.account_id, version_id)
                return DeploymentChange(
                    read.body, None, None, template_version=read.version_id, template_region=read.region
                )

            with _logged_as(deployment):
                self._redeploy_one(
                    deployment,
                    revision,
                    "s3",
                    change,
                    f"new version {version_id or '(unversioned)'} of {location.url}",
                    report,
                    skip_unchanged=True,
                )
        return report

    # -- helpers ---------------------------------------------------------------------------------

    def _redeploy_one(
        self,
        deployment: Deployment,
        revision: str,
        origin: str,
        change: ChangeFactory,
        reason: str,
        report: RedeployReport,
        *,
        skip_unchanged: bool = False,
    ) -> None:
        key = revision_key(revision)
        claim = self._store.claim_revision(
            deployment.deployment_id,
            key,
            self._settings.claim_ttl_seconds,
            origin,
            self._settings.claim_lease_seconds,
        )
        if not claim.taken and not self._taken_over(deployment, key, claim, origin):
            report.duplicates.append(deployment.deployment_id)
            return
        try:
            updated = self._deployments.update(
                deployment.tenant_id, deployment.deployment_id, change(), skip_unchanged=skip_unchanged
            )
        except DeployerError as error:
            self._store.release_revision(deployment.deployment_id, key)
            report.refused[deployment.deployment_id] = error.code
            if isinstance(error, TransientAwsError):
                report.transient.append(deployment.deployment_id)
            logger.warning(
                "redeploy refused",
                extra={
                    "origin": origin,
                    "deployment_id": deployment.deployment_id,
                    "error_code": error.code,
                    "error": error.message,
                },
            )
            return
        if updated.outcome is Outcome.SKIPPED:
            report.unchanged.append(deployment.deployment_id)
            return
        report.started[deployment.deployment_id] = updated.operation.operation_id
        text = f"redeploy requested by {origin} (revision key {key})"
        if reason:
            text += f": {reason[:MAX_REASON_CHARS]}"
        try:
            self._history.append_events(
                deployment.deployment_id,
                [
                    DeploymentEvent(
                        utc_now(), EventSource.ORCHESTRATOR, "REDEPLOY", deployment.stack_name, text
                    )
                ],
            )
        except DeployerError as error:
            # The redeploy runs: failing the event for its history line would only make its retry find
            # the claim taken (a duplicate), the line still unwritten.
            logger.warning("REDEPLOY event of %s not written: %s", deployment.deployment_id, error.message)

    def _taken_over(self, deployment: Deployment, key: str, claim: RevisionClaim, origin: str) -> bool:
        """Take over a claim whose claimer is gone (older than its lease) without having begun the
        redeploy: its update was refused and the claim's release failed (AWS throttling both), or its
        Lambda died between the claim and the update. Held, the claim made every later delivery of the
        revision a duplicate, and the redeploy was lost. A redeploy that began shows as an operation of
        the deployment started since the claim (read just before it, after the lease had run out), unless
        its workflow never started (StartExecution throttled: recorded FAILED, nothing ran): then this
        is a duplicate, as is any claim another delivery took over first."""
        if claim.stale_since is None:
            return False
        began = epoch_seconds(deployment.operation.started_at) >= claim.stale_since
        if began and not deployment.never_started:
            return False
        taken = self._store.take_over_revision(
            deployment.deployment_id, key, claim.stale_since, self._settings.claim_ttl_seconds, origin
        )
        if taken:
            logger.warning(
                "redeploy claim taken over: its claimer ended without beginning the redeploy",
                extra={
                    "origin": origin,
                    "deployment_id": deployment.deployment_id,
                    "claimed_at": claim.stale_since,
                },
            )
        return taken

    def _matching(self, request: RedeployRequest, report: RedeployReport) -> Iterator[Deployment]:
        if request.deployment_ids:
            for deployment_id in request.deployment_ids[:MAX_DEPLOYMENTS_PER_EVENT]:
                try:
                    yield self._deployments.get(request.tenant_id, deployment_id)
                except NotFound:
                    report.not_found.append(deployment_id)
            return
        selector, count, token = request.selector, 0, None
        while True:
            page = self._deployments.list(
                request.tenant_id,
                DeploymentFilter(target_id=selector.target_id, stack_name=selector.stack_name, live=True),
                limit=100,
                next_token=token,
            )
            for item in page.items:
                if item["status"] == DeploymentStatus.DELETED.value:
                    continue
                if not selector.matches(item["target_id"], item["stack_name"], item["tags"]):
                    continue
                count += 1
                if count > MAX_DEPLOYMENTS_PER_EVENT:
                    logger.warning("selector truncated", extra={"limit": count - 1})
                    return
                yield self._deployments.get(request.tenant_id, item["deployment_id"])
            token = page.next_token
            if token is None:
                return
