"""Registering target accounts: the service generates each target's external ID and trust policy.

Two refusals guard the service's own identity:
- the central account (the service's own) is not a target, unless an operator names it
  (``NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET``), and then never through the service's own role: a tenant
  must not be able to have the service act in its own account with its own permissions;
- a target whose role can be assumed *without* the external ID (the confused deputy the external ID
  exists to stop) takes no deployment until its trust policy is fixed, unless
  ``NEXUS_ALLOW_UNENFORCED_EXTERNAL_ID`` says otherwise. The workflow tries that AssumeRole before a
  target's first stack call and again once a recheck interval has passed; Test Credentials (validate)
  records its own check too, which is how a fixed trust policy unblocks the target.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

from chalicelib.domain.aws_errors import HINT_EXTERNAL_ID_NOT_ENFORCED
from chalicelib.domain.errors import Conflict, NotFound, UnprocessableRequest
from chalicelib.domain.model import (
    DeploymentFilter,
    Page,
    Target,
    age_seconds,
    new_external_id,
    new_id,
    trust_policy_for,
    utc_now,
)
from chalicelib.domain.regions import partition_of
from chalicelib.service.ports import DeploymentStore, TargetStore


@dataclass(frozen=True)
class TargetChange:
    """What ``PATCH /targets/{id}`` may change; None keeps the value. Never the account, role or
    external ID: the trust policy the target's admin installed names them."""

    name: str | None = None
    regions: tuple[str, ...] | None = None
    permission_profile: str | None = None


@dataclass(frozen=True)
class TargetGuards:
    central_account: str = ""  # the service's own account
    central_account_allowed: bool = False  # NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET names it
    allow_unenforced_external_id: bool = False
    external_id_recheck_seconds: int = 24 * 3600


@dataclass(frozen=True)
class NewTarget:
    name: str
    account_id: str
    role_arn: str
    regions: tuple[str, ...]
    permission_profile: str = "default"


class TargetService:
    def __init__(
        self,
        targets: TargetStore,
        deployments: DeploymentStore,
        service_principal_arn: str,
        role_pattern: str = "*",
        guards: TargetGuards | None = None,
    ) -> None:
        self._guards = guards or TargetGuards()
        self._targets = targets
        self._deployments = deployments
        self._principal = service_principal_arn
        self._role_pattern = role_pattern

    def register(self, tenant_id: str, new: NewTarget) -> Target:
        self._check_not_the_service(new)
        role_name = new.role_arn.split(":role/", 1)[1]
        if not fnmatch.fnmatchcase(role_name, self._role_pattern):
            raise UnprocessableRequest(
                f"The service may only assume target roles named {self._role_pattern}; got {role_name}.",
                code="ROLE_NAME_NOT_ALLOWED",
                hint=f"Create the deployment role in the target account with a name matching "
                f"{self._role_pattern} (the bootstrap template does), then register that ARN.",
                details={"field": "role_arn", "pattern": self._role_pattern},
            )
        external_id = new_external_id()
        target = Target(
            tenant_id=tenant_id,
            target_id=new_id("tgt"),
            name=new.name,
            account_id=new.account_id,
            role_arn=new.role_arn,
            regions=new.regions,
            external_id=external_id,
            trust_policy=trust_policy_for(self._principal, external_id),
            created_at=utc_now(),
            permission_profile=new.permission_profile,
        )
        self._targets.put_target(target)
        return target

    def _check_not_the_service(self, new: NewTarget) -> None:
        central = self._guards.central_account
        if not central or new.account_id != central:
            return
        if not self._guards.central_account_allowed:
            raise UnprocessableRequest(
                f"Account {central} is NexusAI Deployer's own account and cannot be a target.",
                code="CENTRAL_ACCOUNT_NOT_ALLOWED",
                hint="Register the accounts you deploy to. An operator who really wants stacks in the "
                f"service's own account sets NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET={central} and gives the "
                "target a deployment role of its own (never the service's role).",
                details={"field": "account_id"},
            )
        if new.role_arn == self._principal:
            raise UnprocessableRequest(
                "The service's own role cannot be a target's deployment role.",
                code="SERVICE_ROLE_NOT_ALLOWED",
                hint="Create a deployment role in the account (the bootstrap template does) and register it.",
                details={"field": "role_arn"},
            )

    def check_external_id(self, target: Target) -> None:
        """Refuse work for a target whose last check found the external ID not enforced."""
        if target.external_id_enforced is False and not self._guards.allow_unenforced_external_id:
            raise Conflict(
                f"Target {target.target_id}'s role {target.role_arn} can be assumed without its external ID: "
                "no deployment runs there until its trust policy requires it.",
                code="EXTERNAL_ID_NOT_ENFORCED",
                hint=HINT_EXTERNAL_ID_NOT_ENFORCED + " Then run Test Credentials "
                "(POST /targets/{id}/validate) to record the fix.",
                details={"target_id": target.target_id, "checked_at": target.external_id_checked_at},
            )

    def external_id_check_due(self, target: Target) -> bool:
        if target.external_id_enforced is not True or target.external_id_checked_at is None:
            return True
        return age_seconds(target.external_id_checked_at) >= self._guards.external_id_recheck_seconds

    def record_external_id_check(self, target: Target, enforced: bool) -> Target:
        checked = replace(target, external_id_enforced=enforced, external_id_checked_at=utc_now())
        self._targets.record_external_id_check(target, enforced, str(checked.external_id_checked_at))
        return checked

    def get(self, tenant_id: str, target_id: str) -> Target:
        target = self._targets.get_target(tenant_id, target_id)
        if target is None:
            raise NotFound(f"Target {target_id} does not exist.", code="TARGET_NOT_FOUND")
        return target

    def update(self, tenant_id: str, target_id: str, change: TargetChange) -> Target:
        target = self.get(tenant_id, target_id)
        if change.regions is not None:
            partition = target.role_arn.split(":")[1]
            foreign = [r for r in change.regions if partition_of(r) != partition]
            if foreign:
                raise UnprocessableRequest(
                    f"Regions {foreign} are not in the partition {partition} of the target's role.",
                    code="REGION_NOT_IN_PARTITION",
                    hint="A target's regions must all be in its role's partition (aws, aws-cn, aws-us-gov).",
                    details={"field": "regions", "regions": foreign},
                )
            for region in sorted(set(target.regions) - set(change.regions)):
                live = self._deployments.count_deployments(
                    tenant_id, DeploymentFilter(target_id=target_id, region=region, live=True)
                )
                if live:
                    raise Conflict(
                        f"Region {region} of target {target_id} still has {live} live deployment(s).",
                        code="REGION_IN_USE",
                        hint="Delete (or forget) the deployments in that region first "
                        "(GET /deployments?target_id=...&region=...), then remove the region.",
                        details={"region": region, "live_deployments": live},
                    )
        updated = replace(
            target,
            name=change.name if change.name is not None else target.name,
            regions=change.regions if change.regions is not None else target.regions,
            permission_profile=change.permission_profile or target.permission_profile,
        )
        self._targets.edit_target(updated)
        return updated

    def list(self, tenant_id: str, limit: int, next_token: str | None) -> Page:
        return self._targets.list_targets(tenant_id, limit, next_token)

    def delete(self, tenant_id: str, target_id: str) -> None:
        self.get(tenant_id, target_id)
        live = self._deployments.count_deployments(
            tenant_id, DeploymentFilter(target_id=target_id, live=True)
        )
        if live:
            raise Conflict(
                f"Target {target_id} still has {live} live deployment(s).",
                code="TARGET_IN_USE",
                hint="Delete the target's deployments first (DELETE /deployments/{id}), then the target.",
                details={"live_deployments": live},
            )
        self._targets.delete_target(tenant_id, target_id)
