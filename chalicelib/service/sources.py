"""What POST /deployments adds for automation: a template read from S3, and notification settings.

``DeploymentService.create`` calls ``prepare`` before it validates the template and ``created`` after
the record is written (its one hook). ``prepare`` reads ``template_url`` into ``template_body`` and
turns the caller's notification request into stored settings (the webhook secret goes to Secrets
Manager); ``created`` subscribes the deployment to its template object, so a new version redeploys it.

Trust: the template is read with the service's identity, but with S3's ``ExpectedBucketOwner`` set
to the target's account, so a tenant can only name templates in buckets of an account it deploys to,
never another tenant's bucket that happens to grant the service read access. The text is capped at
CloudFormation's TemplateURL limit (1 MB). One up to TemplateBody's 51,200 bytes is kept with the
operation and sent as TemplateBody; a larger one is read here only to be validated, and the workflow
sends CloudFormation its S3 location and version (TemplateURL), which CloudFormation reads with the
target role's identity (so that role needs s3:GetObject and s3:GetObjectVersion on it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from chalicelib.domain.automation import parse_s3_url
from chalicelib.domain.errors import UnprocessableRequest
from chalicelib.domain.model import Target
from chalicelib.domain.templates import MAX_TEMPLATE_URL_BYTES
from chalicelib.service.event_ports import AutomationStore, TemplateObject, TemplateObjects
from chalicelib.service.notifications import NotificationRequest, NotificationService

if TYPE_CHECKING:
    from chalicelib.service.deployments import NewDeployment


class DeploymentSources:
    def __init__(
        self, objects: TemplateObjects, store: AutomationStore, notifications: NotificationService
    ) -> None:
        self._objects = objects
        self._store = store
        self._notifications = notifications

    def check(self, new: NewDeployment) -> None:
        """What ``prepare`` refuses that needs no I/O and no target (the template_url's shape, the
        notification request's rules): ``create`` checks it before its first AWS call."""
        if new.template_url is not None:
            parse_s3_url(new.template_url)
        if new.notify is not None:
            self._notifications.check(new.notify)

    def prepare(self, tenant_id: str, target: Target, new: NewDeployment) -> NewDeployment:
        body, version, region = new.template_body, None, None
        if new.template_url is not None:
            read = self.read(new.template_url, target.account_id, None)
            body, version, region = read.body, read.version_id, read.region
        if not body:
            raise UnprocessableRequest(
                "Send template_body or template_url.",
                code="TEMPLATE_REQUIRED",
                details={"field": "template_body"},
            )
        if new.notify is not None:  # checked now; its webhook secret is stored by ``keep_notifications``
            self._notifications.check_for_account(target.account_id, new.notify)
        return replace(new, template_body=body, template_version=version, template_region=region)

    def keep_notifications(self, tenant_id: str, new: NewDeployment) -> NewDeployment:
        """Store the checked notifications' webhook secret: the last step before the deployment is
        written, so that a refused or skipped request leaves no secret behind."""
        if new.notify is None:
            return new
        return replace(new, notify=None, notifications=self._notifications.store(tenant_id, new.notify))

    def discard_notifications(self, new: NewDeployment) -> None:
        """``keep_notifications`` undone: the deployment it was kept for was not written."""
        self._notifications.discard(new.notifications)

    def subscribe(self, tenant_id: str, deployment_id: str, template_url: str | None) -> None:
        """Redeploy ``deployment_id`` when a new version of its template object lands. Made before the
        deployment's record is written: a throttle here then fails the request with nothing written (made
        after, it left a PENDING record with no execution, or a running one never redeployed). A
        subscription whose record never came is dropped by the object's next event (``template_changed``)."""
        if template_url is not None:
            self._store.subscribe_template(template_url, tenant_id, deployment_id)

    def read(self, url: str, account_id: str, version_id: str | None) -> TemplateObject:
        return self._objects.read(
            parse_s3_url(url),
            version_id=version_id,
            expected_owner=account_id,
            max_bytes=MAX_TEMPLATE_URL_BYTES,
        )


__all__ = ["DeploymentSources", "NotificationRequest"]
