"""Creating a deployment: a new record that claims its stack, or a failed create run again on the
record it left when no stack was ever made, with the template read from template_url and the
notification settings kept by the automation hooks (chalicelib/service/sources.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from chalicelib.domain.errors import DeployerError, UnprocessableRequest
from chalicelib.domain.fingerprint import config_hash
from chalicelib.domain.model import (
    Action,
    Deployment,
    DeploymentStatus,
    Operation,
    OperationMode,
    OperationStatus,
    Outcome,
    Target,
    new_id,
    utc_now,
)
from chalicelib.domain.noecho import ParameterSplit
from chalicelib.service.deployments.checks import DeploymentChecks, checked_for_create, never_made_a_stack
from chalicelib.service.deployments.noecho_secrets import secrets_kept
from chalicelib.service.deployments.starts import DeploymentStarts
from chalicelib.service.deployments.templates import Template
from chalicelib.service.deployments.values import ItemStart, NewDeployment, start_writes

logger = logging.getLogger(__name__)


class DeploymentCreation(DeploymentChecks, DeploymentStarts):
    def create(
        self,
        tenant_id: str,
        new: NewDeployment,
        *,
        skip_unchanged: bool = False,
        mode: OperationMode = OperationMode.DEPLOY,
        for_item: ItemStart | None = None,
        unclaimed: bool = False,
    ) -> Deployment:
        """``unclaimed``: the caller has just read the stack's claim and found none (a rollout item), so
        it is not read again; the claim's conditional write still refuses a deployment that took the
        stack since (``Conflict`` STACK_ALREADY_DEPLOYED)."""
        if mode is OperationMode.APPLY:
            raise UnprocessableRequest("mode must be deploy or plan.", code="INVALID_MODE")
        sent = new.template_body
        checked = self.check_new(new)
        target = self._targets.get(tenant_id, new.target_id)
        self._check_region(target, new.region)
        self._targets.check_external_id(target)
        if self._sources is not None:  # hook: template_url, notifications (chalicelib/service/sources.py)
            new = self._sources.prepare(tenant_id, target, new)
        split = checked if checked is not None and new.template_body == sent else checked_for_create(new)
        fingerprint = config_hash(new.template_body, split.public, new.tags, target.role_arn)
        holder = (
            None
            if unclaimed
            else self._store.claimed_deployment_id(target.target_id, new.region, new.stack_name)
        )
        existing = self._store.get_deployment(tenant_id, holder) if holder else None
        unchanged = existing is not None and skip_unchanged and self._unchanged(existing, fingerprint)
        if existing is not None and unchanged and not split.has_new_secrets:
            return replace(existing, outcome=Outcome.SKIPPED)
        if existing is not None and never_made_a_stack(existing):
            return self._create_again(existing, new, split, mode, fingerprint, for_item)
        self._check_unlocked(target.account_id, new.region, new.stack_name)
        deployment_id = new_id("dep")
        if self._sources is not None:
            self._sources.subscribe(tenant_id, deployment_id, new.template_url)
        with self._notifications_kept(tenant_id, new) as new:
            deployment = self._new_deployment(
                tenant_id, deployment_id, target, new, mode, split, fingerprint, for_item
            )
        self._subscribed_again(deployment)
        return self._start(deployment, for_item)

    def _subscribed_again(self, deployment: Deployment) -> None:
        """Subscribe once more now that the record exists: an "Object Created" event handled between the
        first subscription and the record's write found no deployment and dropped it. Best effort: the
        first one was made."""
        if self._sources is None or deployment.template_url is None:
            return
        try:
            self._sources.subscribe(deployment.tenant_id, deployment.deployment_id, deployment.template_url)
        except DeployerError as error:
            logger.warning(
                "template subscription not renewed",
                extra={"deployment_id": deployment.deployment_id, "error_code": error.code},
            )

    def _new_deployment(
        self,
        tenant_id: str,
        deployment_id: str,
        target: Target,
        new: NewDeployment,
        mode: OperationMode,
        split: ParameterSplit,
        fingerprint: str,
        for_item: ItemStart | None = None,
    ) -> Deployment:
        """Write the new deployment (PENDING) and its operation's request (and ``for_item``'s start)."""
        now = utc_now()
        operation = Operation(
            new_id("op"),
            Action.CREATE,
            OperationStatus.PENDING,
            now,
            mode=mode,
            adopt=new.adopt,
            holds_secrets=split.has_new_secrets,
        )
        deployment = Deployment(
            tenant_id=tenant_id,
            deployment_id=deployment_id,
            target_id=target.target_id,
            account_id=target.account_id,
            region=new.region,
            stack_name=new.stack_name,
            status=DeploymentStatus.PENDING,
            operation=operation,
            created_at=now,
            updated_at=now,
            parameters=split.public,
            tags=dict(new.tags),
            template_url=new.template_url,
            notifications=new.notifications,
            config_hash=fingerprint,
        )
        request = self._request(
            deployment,
            Template(new.template_body, new.template_url, new.template_version, new.template_region),
            split,
        )
        with secrets_kept(self._secrets, operation.operation_id, split):
            self._store.create_deployment(deployment, request, start_writes(for_item, deployment))
        return deployment

    @contextmanager
    def _notifications_kept(self, tenant_id: str, new: NewDeployment) -> Iterator[NewDeployment]:
        """``new`` with its webhook secret stored, deleted again if the block fails (no record refers to it)."""
        if self._sources is None:
            yield new
            return
        kept = self._sources.keep_notifications(tenant_id, new)
        try:
            yield kept
        except BaseException:
            self._sources.discard_notifications(kept)
            raise

    def _create_again(
        self,
        existing: Deployment,
        new: NewDeployment,
        split: ParameterSplit,
        mode: OperationMode,
        fingerprint: str,
        for_item: ItemStart | None,
    ) -> Deployment:
        """A new create on a deployment whose create failed before any stack existed (say, the role
        was not there yet): the caller re-posts once the cause is fixed, and the same deployment runs."""
        self._check_unlocked(existing.account_id, existing.region, existing.stack_name)
        if self._sources is not None:
            self._sources.subscribe(existing.tenant_id, existing.deployment_id, new.template_url)
        with self._notifications_kept(existing.tenant_id, new) as new:
            renewed = replace(existing, template_url=new.template_url, notifications=new.notifications)
            written = self._write_operation(
                renewed,
                Action.CREATE,
                Template(new.template_body, new.template_url, new.template_version, new.template_region),
                split,
                new.tags,
                mode=mode,
                fingerprint=fingerprint,
                adopt=new.adopt,
                for_item=for_item,
            )
        return self._start(written, for_item)
