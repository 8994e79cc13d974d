"""Checking a target's access before anything is deployed: the guide's "Test Credentials", in depth.

``validate`` runs five checks, in this order, and reports every one of them:

1. ``assume_role``: AssumeRole with the target's external ID succeeds;
2. ``external_id_enforced``: AssumeRole *without* the external ID is refused (the confused-deputy
   guard: a role that skips the condition fails this check even though deployments would work);
3. ``caller_identity``: STS GetCallerIdentity as the role (its ARN is the detail);
4. ``account_match``: that identity's account is the target's account;
5. ``permissions``: IAM simulates every action of the target's permission profile on the role;
   refused actions are listed, grouped by service, in ``missing_actions``.

A check that cannot run because an earlier one failed is reported failed, "skipped", with the root
cause's hint. Each failure's code and hint come from ``chalicelib/domain/aws_errors.py``, the table
the workflow uses too, so a deployment that fails on AssumeRole says what ``assume_role`` says.
Validation writes one thing: the outcome of ``external_id_enforced`` on the target, which blocks or
unblocks its deployments (chalicelib/service/targets.py). The assumed sessions never leave the adapter.

AWS answers AccessDenied both for a role that does not exist and for a trust policy or external ID
that refuses the service; without credentials in the target account nobody can tell them apart, so
``assume_role`` reports ACCESS_DENIED with a hint that covers both, never a guessed INVALID_ROLE_ARN.

Who runs the checks: ``TargetChecks``, under the one role target trust policies name (the service
role). The HTTP API's role cannot assume target roles, so on AWS its ``AccessService`` hands the checks
to the ``InspectTarget`` function, which runs as the service role (``CredentialChecks`` is the port;
``chalicelib/adapters/inspection.py`` the invoking side).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.aws_errors import (
    HINT_ACCOUNT_MISMATCH,
    HINT_EXTERNAL_ID_NOT_ENFORCED,
    HINT_MISSING_PERMISSIONS,
)
from chalicelib.domain.bootstrap import (
    QuickCreateLink,
    bootstrap_template,
    quick_create_body,
    quick_create_link,
    quick_create_template,
    region_forwarding_template,
)
from chalicelib.domain.errors import Conflict, DeployerError
from chalicelib.domain.model import Target
from chalicelib.domain.permissions import group_by_service, load_profile
from chalicelib.service.ports import (
    CallerIdentity,
    CredentialChecks,
    RoleProbe,
    RoleSession,
    TemplatePublisher,
)
from chalicelib.service.targets import TargetService

CHECK_NAMES = ("assume_role", "external_id_enforced", "caller_identity", "account_match", "permissions")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    code: str | None = None

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "code": self.code, "detail": self.detail, "hint": self.hint}

    @classmethod
    def from_public(cls, data: dict[str, Any]) -> Check:
        return cls(
            str(data["name"]), bool(data["ok"]), str(data["detail"]), data.get("hint"), data.get("code")
        )


@dataclass(frozen=True)
class AccessReport:
    target_id: str
    account_id: str
    permission_profile: str
    checks: tuple[Check, ...]
    missing_actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def public(self) -> dict[str, Any]:
        return {
            "target_id": self.target_id,
            "ok": self.ok,
            "account_id": self.account_id,
            "permission_profile": self.permission_profile,
            "checks": [check.public() for check in self.checks],
            "missing_actions": self.missing_actions,
        }

    @classmethod
    def from_public(cls, data: dict[str, Any]) -> AccessReport:
        """The report back from ``public()`` (what the InspectTarget function answers)."""
        return cls(
            str(data["target_id"]),
            str(data["account_id"]),
            str(data["permission_profile"]),
            tuple(Check.from_public(check) for check in data["checks"]),
            list(data.get("missing_actions", [])),
        )


def _failed(name: str, error: DeployerError) -> Check:
    return Check(name, False, error.message, error.hint, error.code)


def _skipped(name: str, cause: Check) -> Check:
    return Check(name, False, f"skipped: {cause.name} failed ({cause.code})", cause.hint, "SKIPPED")


class AccessService:
    def __init__(
        self,
        targets: TargetService,
        checks: CredentialChecks,
        event_bus_arn: str | None = None,
        publisher: TemplatePublisher | None = None,
    ) -> None:
        self._targets = targets
        self._checks = checks
        # The central bus the bootstrap template forwards stack events to (completion without polling).
        self._event_bus_arn = event_bus_arn
        # The service's bucket for quick-create templates (NEXUS_BOOTSTRAP_BUCKET); None: no link, the CLI instead.
        self._publisher = publisher

    def permissions(self, profile_name: str) -> dict[str, Any]:
        return load_profile(profile_name).policy()

    def bootstrap_template(self, tenant_id: str, target_id: str) -> dict[str, Any]:
        target = self._targets.get(tenant_id, target_id)
        return bootstrap_template(target, load_profile(target.permission_profile), self._event_bus_arn)

    def quick_create_link(self, tenant_id: str, target_id: str) -> QuickCreateLink:
        """Put the target's quick-create template in the service's bucket; the link that deploys it.

        Idempotent: the object is named by its content, so a second call writes the same object and
        answers the same link. The link's length is checked before anything is written.
        """
        target = self._targets.get(tenant_id, target_id)
        if self._publisher is None:
            raise Conflict(
                "This service has no bucket for bootstrap templates (NEXUS_BOOTSTRAP_BUCKET), so it offers "
                "no CloudFormation quick-create link.",
                code="QUICK_CREATE_NOT_AVAILABLE",
                hint=f"Run `nexus targets bootstrap {target.target_id} --profile NAME` with an administrator "
                f"profile of account {target.account_id}, or download the bootstrap template.",
            )
        template = quick_create_template(target, load_profile(target.permission_profile), self._event_bus_arn)
        body, key = quick_create_body(template)
        link = quick_create_link(target, self._publisher.url(key))
        self._publisher.publish(key, body)
        return link

    def region_forwarding_template(self, tenant_id: str, target_id: str) -> dict[str, Any]:
        target = self._targets.get(tenant_id, target_id)
        if not self._event_bus_arn:
            raise Conflict(
                "This service does not take stack events: there is nothing to forward.",
                code="EVENTS_NOT_TAKEN",
                hint="Deploy the bootstrap template alone; operations poll their stacks.",
            )
        return region_forwarding_template(target, self._event_bus_arn)

    def validate(self, tenant_id: str, target_id: str) -> AccessReport:
        return self._checks.validate(self._targets.get(tenant_id, target_id))


class TargetChecks:
    """The checks themselves, with sessions of the target's role (run under the service role)."""

    def __init__(self, targets: TargetService, probe: RoleProbe) -> None:
        self._targets = targets
        self._probe = probe

    def validate(self, target: Target) -> AccessReport:
        profile = load_profile(target.permission_profile)
        checks: list[Check] = []
        missing: list[dict[str, Any]] = []

        role: RoleSession | None = None
        try:
            role = self._probe.assume(
                role_arn=target.role_arn,
                external_id=target.external_id,
                session_name=f"nexus-validate-{target.target_id}",
            )
            checks.append(Check("assume_role", True, f"assumed {target.role_arn} with the external ID"))
        except DeployerError as error:
            checks.append(_failed("assume_role", error))
        if role is None:
            cause = checks[0]
            checks.extend(_skipped(name, cause) for name in CHECK_NAMES[1:])
            return AccessReport(target.target_id, target.account_id, profile.name, tuple(checks))

        guard = self._external_id_enforced(target.role_arn, target.target_id)
        checks.append(guard)
        if guard.ok or guard.code == "EXTERNAL_ID_NOT_ENFORCED":  # a conclusive answer: deployments obey it
            self._targets.record_external_id_check(target, guard.ok)

        identity: CallerIdentity | None = None
        try:
            identity = role.caller_identity()
            checks.append(Check("caller_identity", True, identity.arn))
        except DeployerError as error:
            checks.append(_failed("caller_identity", error))
        if identity is None:
            checks.append(_skipped("account_match", checks[-1]))
        elif identity.account == target.account_id:
            checks.append(Check("account_match", True, f"account {identity.account} is the target's account"))
        else:
            checks.append(
                Check(
                    "account_match",
                    False,
                    f"the role acts in account {identity.account}, the target is account {target.account_id}",
                    HINT_ACCOUNT_MISMATCH,
                    "ACCOUNT_MISMATCH",
                )
            )

        actions = profile.actions()
        try:
            decisions = {d.action: d.decision for d in role.simulate(actions)}
        except DeployerError as error:
            checks.append(_failed("permissions", error))
        else:
            refused = [a for a in actions if decisions.get(a) != "allowed"]
            denied = sum(1 for a in refused if decisions.get(a) == "explicitDeny")
            missing = group_by_service(refused)
            if refused:
                detail = f"{len(refused)} of {len(actions)} actions of profile {profile.name} are refused"
                if denied:
                    detail += f" ({denied} by an explicit Deny)"
                checks.append(
                    Check("permissions", False, detail, HINT_MISSING_PERMISSIONS, "MISSING_PERMISSIONS")
                )
            else:
                detail = f"all {len(actions)} actions of profile {profile.name} are allowed"
                checks.append(Check("permissions", True, detail))
        return AccessReport(target.target_id, target.account_id, profile.name, tuple(checks), missing)

    def _external_id_enforced(self, role_arn: str, target_id: str) -> Check:
        name = "external_id_enforced"
        try:
            self._probe.assume(role_arn=role_arn, external_id=None, session_name=f"nexus-noextid-{target_id}")
        except DeployerError as error:
            if error.code == "ACCESS_DENIED":
                return Check(name, True, "AssumeRole without the external ID was refused")
            return _failed(name, error)
        return Check(
            name,
            False,
            "AssumeRole without the external ID succeeded: the trust policy does not require sts:ExternalId",
            HINT_EXTERNAL_ID_NOT_ENFORCED,
            "EXTERNAL_ID_NOT_ENFORCED",
        )
