"""Registering target accounts: the service generates each target's external ID and trust policy."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

from chalicelib.domain.errors import Conflict, NotFound, UnprocessableRequest
from chalicelib.domain.model import (
    DeploymentFilter,
    Page,
    Target,
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
    ) -> None:
        self._targets = targets
        self._deployments = deployments
        self._principal = service_principal_arn
        self._role_pattern = role_pattern

    def register(self, tenant_id: str, new: NewTarget) -> Target:
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
        self._targets.replace_target(updated)
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
