"""Registering target accounts: the service generates each target's external ID and trust policy."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from chalicelib.domain.errors import Conflict, NotFound, UnprocessableRequest
from chalicelib.domain.model import Page, Target, new_external_id, new_id, trust_policy_for, utc_now
from chalicelib.service.ports import DeploymentStore, TargetStore


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

    def list(self, tenant_id: str, limit: int, next_token: str | None) -> Page:
        return self._targets.list_targets(tenant_id, limit, next_token)

    def delete(self, tenant_id: str, target_id: str) -> None:
        self.get(tenant_id, target_id)
        live = self._deployments.count_live_deployments(tenant_id, target_id)
        if live:
            raise Conflict(
                f"Target {target_id} still has {live} live deployment(s).",
                code="TARGET_IN_USE",
                hint="Delete the target's deployments first (DELETE /deployments/{id}), then the target.",
                details={"live_deployments": live},
            )
        self._targets.delete_target(tenant_id, target_id)
