"""Connecting an AWS account from the console with credentials the user types, used once, in memory.

* ``test_credentials``: the guide's Test Credentials on entered access keys (or an ADFS role) before
  anything is created: account access, STS identity, the account ID against the target's, and whether
  the identity may create the bootstrap stack (IAM simulates ``BOOTSTRAP_ACTIONS`` for it). Keys used
  without MFA whose user has an MFA device get ``MFA_REQUIRED`` naming it when refused (``_mfa_unused``).
* ``saml_roles``: the guide's Fetch Roles: sign in at the ADFS URL (SSRF-guarded) and list the roles
  the assertion offers.
* ``bootstrap``: with the same credentials, check that they act in the target's account, then deploy
  the target's bootstrap template in its first region and the stack-event forwarding rule in each other
  region, exactly as ``nexus targets bootstrap`` does (``chalicelib/service/bootstrap.py``). The request
  waits for the stacks up to ``wait_seconds`` (API Gateway answers within 30 s); stacks still in
  progress then are followed with ``bootstrap_status``, which reads them through the target's own
  deployment role once it exists, since the user's credentials are gone by then.

Secrets never leave: the credentials live in the adapter's session for the length of one request,
are not written anywhere, and every message this service answers is scrubbed of them (``_scrubbed``)
as a second line of defence, since AWS and ADFS choose their error texts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain.adfs import AdfsError, SamlRole, roles_in
from chalicelib.domain.aws_errors import HINT_ACCOUNT_MISMATCH, translate
from chalicelib.domain.bootstrap import FORWARDER_OUTPUT, FORWARDER_ROLE_PARAMETER
from chalicelib.domain.errors import Conflict, DeployerError, ErrorKind, InvalidRequest
from chalicelib.domain.permissions import group_by_service, simulation_principal
from chalicelib.domain.stack_status import StackPhase, phase_of
from chalicelib.service.access import AccessService, Check
from chalicelib.service.bootstrap import BOOTSTRAP_STACK, BootstrapFailed, StackOutcome, deploy_stack
from chalicelib.service.onboarding_ports import (
    AccessKeys,
    AccountSession,
    AccountSignIn,
    AdfsClient,
    AdfsLogin,
    Credentials,
)
from chalicelib.service.ports import CallerIdentity, StackLookup
from chalicelib.service.targets import TargetService

_DENIED = frozenset({"ACCESS_DENIED", "MISSING_PERMISSIONS"})

# What creating the bootstrap stack takes: CloudFormation itself, and what its resources need
# (AWS::IAM::Role with inline policies, AWS::IAM::ManagedPolicy, AWS::Events::Rule with a role).
BOOTSTRAP_ACTIONS = (
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "iam:CreateRole",
    "iam:GetRole",
    "iam:PutRolePolicy",
    "iam:CreatePolicy",
    "iam:AttachRolePolicy",
    "iam:PassRole",
    "events:PutRule",
    "events:PutTargets",
)
CHECK_NAMES = ("account_access", "caller_identity", "account_match", "bootstrap_permissions")


@dataclass(frozen=True)
class OnboardingSettings:
    wait_seconds: float = 25.0  # how long POST /targets/{id}/bootstrap waits for its stacks
    poll_seconds: float = 2.0


@dataclass(frozen=True)
class CredentialReport:
    method: str
    account_id: str | None
    arn: str | None
    checks: tuple[Check, ...]
    missing_actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def public(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "method": self.method,
            "account_id": self.account_id,
            "arn": self.arn,
            "checks": [c.public() for c in self.checks],
            "missing_actions": self.missing_actions,
        }


@dataclass(frozen=True)
class BootstrapReport:
    target_id: str
    account_id: str
    stacks: tuple[StackOutcome, ...]
    error: DeployerError | None = None

    @property
    def settled(self) -> bool:
        return self.error is not None or all(s.settled for s in self.stacks)

    @property
    def ok(self) -> bool:
        return self.error is None and all(phase_of(s.status) is StackPhase.SUCCEEDED for s in self.stacks)

    def public(self) -> dict[str, Any]:
        return {
            "target_id": self.target_id,
            "account_id": self.account_id,
            "ok": self.ok,
            "settled": self.settled,
            "stacks": [s.public() for s in self.stacks],
            "error": self.error.as_dict() if self.error else None,
        }


class SignInRefused(DeployerError):
    """AWS or ADFS refused the credentials the user typed: the request's fault (400), not an upstream one.

    It keeps the translation's code (ACCESS_DENIED, SESSION_EXPIRED, MFA_REQUIRED, ...) and hint."""

    kind = ErrorKind.INVALID


def _refused(error: DeployerError) -> DeployerError:
    if error.kind is not ErrorKind.UPSTREAM:
        return error
    return SignInRefused(error.message, code=error.code, hint=error.hint, details=error.details)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "****")
    return text


def _scrubbed_error(error: DeployerError, secrets: list[str]) -> DeployerError:
    error.message = _scrub(error.message, secrets)
    error.hint = _scrub(error.hint, secrets)
    error.args = (error.message,)
    error.details = json.loads(_scrub(json.dumps(error.details), secrets))
    return error


@contextmanager
def _scrubbed(secrets: list[str]) -> Iterator[None]:
    try:
        yield
    except DeployerError as error:
        raise _scrubbed_error(error, secrets) from None


def _mfa_unused(
    check: Check, credentials: Credentials, session: AccountSession, caller_arn: str, refused: list[str]
) -> Check:
    """A refusal to access keys used without MFA, when their IAM user has an MFA device: its policies
    may deny what is asked without MFA (AWS's "force MFA" policy does, in words that never name MFA).
    With the ``refused`` actions known, they are simulated again as if MFA were present: only when that
    allows some does the check say MFA_REQUIRED and name the device to enter. When the simulation itself
    was refused (nothing to compare), the check keeps its code and its hint gains the device."""
    if not isinstance(credentials, AccessKeys) or credentials.mfa_serial or check.code not in _DENIED:
        return check
    found = simulation_principal(caller_arn)
    if found is None or found.role_name is not None:
        return check  # not an IAM user: GetSessionToken cannot help
    devices = session.mfa_devices(caller_arn.rsplit("/", 1)[-1])
    if not devices:
        return check
    enter = f"Enter the MFA device {devices[0]} and its current 6-digit code, then Test Credentials again."
    if not refused:
        return replace(
            check, hint=f"{check.hint} If the user's policies deny requests made without MFA: {enter}"
        )
    try:
        with_mfa = session.simulate(found.arn, refused, assume_mfa=True)
    except DeployerError:
        return check
    allowed = sorted(d.action for d in with_mfa if d.allowed)
    if not allowed:
        return check  # MFA would not help: the policies lack these actions
    hint = (
        f"These keys were tested without MFA; with MFA their user's policies allow {len(allowed)} of the "
        f"{len(refused)} refused actions. {enter}"
    )
    return replace(check, hint=hint, code="MFA_REQUIRED")


class OnboardingService:
    def __init__(
        self,
        targets: TargetService,
        access: AccessService,
        sign_in: AccountSignIn,
        adfs: AdfsClient,
        stacks: StackLookup,
        settings: OnboardingSettings,
    ) -> None:
        self._targets = targets
        self._access = access
        self._sign_in = sign_in
        self._adfs = adfs
        # Reads the bootstrap stacks through the target's role (the InspectTarget function from the API).
        self._stacks = stacks
        self._settings = settings

    # -- Fetch Roles ---------------------------------------------------------------------------------
    def saml_roles(self, login: AdfsLogin) -> list[SamlRole]:
        with _scrubbed(login.secrets()):
            roles = self._roles(self._assertion(login))
        if not roles:
            raise _refused(
                translate("AccessDenied", "the SAML assertion offers no AWS role", operation="ADFS sign-in")
            )
        return roles

    def _assertion(self, login: AdfsLogin) -> str:
        try:
            return self._adfs.assertion(login.adfs_url, login.username, login.password)
        except AdfsError as error:
            raise _refused(translate("AccessDenied", str(error), operation="ADFS sign-in")) from None

    @staticmethod
    def _roles(assertion: str) -> list[SamlRole]:
        try:
            return roles_in(assertion)
        except AdfsError as error:
            raise _refused(translate("AccessDenied", str(error), operation="ADFS sign-in")) from None

    def _session(self, credentials: Credentials) -> tuple[str, AccountSession]:
        if isinstance(credentials, AccessKeys):
            mfa = ", MFA session from GetSessionToken" if credentials.mfa_serial else ""
            return f"access keys (this request only){mfa}", self._sign_in.with_keys(credentials)
        assertion = self._assertion(credentials)
        offered = self._roles(assertion)
        role = next((r for r in offered if r.role_arn == credentials.role_arn), None)
        if role is None:
            raise InvalidRequest(
                f"ADFS does not offer the role {credentials.role_arn} to this user.",
                code="ROLE_NOT_OFFERED",
                hint="Click Fetch Roles and pick one of the roles it lists.",
                details={"offered": [r.role_arn for r in offered]},
            )
        return f"ADFS user {credentials.username} as {role.role_arn}", self._sign_in.with_saml(
            assertion, role
        )

    # -- Test Credentials on entered credentials -------------------------------------------------------
    def test_credentials(
        self, tenant_id: str, target_id: str | None, credentials: Credentials
    ) -> CredentialReport:
        expected = self._targets.get(tenant_id, target_id).account_id if target_id else None
        method = "access-keys" if isinstance(credentials, AccessKeys) else "adfs"
        secrets = credentials.secrets()
        checks: list[Check] = []
        try:
            with _scrubbed(secrets):
                detail, session = self._session(credentials)
                identity = session.caller_identity()
        except DeployerError as error:
            failed = Check("account_access", False, error.message, error.hint, error.code)
            skipped = [
                Check(n, False, "skipped: account_access failed", error.hint, "SKIPPED")
                for n in CHECK_NAMES[1:]
            ]
            return CredentialReport(method, None, None, (failed, *skipped))
        checks.append(Check("account_access", True, f"signed in: {detail}"))
        checks.append(Check("caller_identity", True, identity.arn))
        checks.append(self._account_check(identity, expected))
        missing: list[dict[str, Any]] = []
        found = simulation_principal(identity.arn)
        principal = found.arn if found else None
        if principal is None:
            checks.append(
                Check(
                    "bootstrap_permissions",
                    True,
                    f"{identity.arn} is the account's root user: nothing to simulate",
                )
            )
        else:
            try:
                with _scrubbed(secrets):
                    decisions = {d.action: d for d in session.simulate(principal, list(BOOTSTRAP_ACTIONS))}
            except DeployerError as error:
                check = Check("bootstrap_permissions", False, error.message, error.hint, error.code)
                checks.append(_mfa_unused(check, credentials, session, identity.arn, []))
            else:
                refused = [a for a in BOOTSTRAP_ACTIONS if not (a in decisions and decisions[a].allowed)]
                missing = group_by_service(refused)
                if refused:
                    check = Check(
                        "bootstrap_permissions",
                        False,
                        f"{len(refused)} of {len(BOOTSTRAP_ACTIONS)} actions the bootstrap stack needs are "
                        f"refused to {principal}",
                        "Attach a policy that allows the missing actions (an administrator's keys have them), "
                        "or let an administrator of the account deploy the bootstrap template.",
                        "MISSING_PERMISSIONS",
                    )
                    checks.append(_mfa_unused(check, credentials, session, identity.arn, refused))
                else:
                    checks.append(
                        Check(
                            "bootstrap_permissions",
                            True,
                            f"{principal} may create the bootstrap stack ({len(BOOTSTRAP_ACTIONS)} actions allowed)",
                        )
                    )
        return CredentialReport(method, identity.account, identity.arn, tuple(checks), missing)

    @staticmethod
    def _account_check(identity: CallerIdentity, expected: str | None) -> Check:
        if expected is None:
            return Check("account_match", True, f"account {identity.account} (no target to compare with)")
        if identity.account == expected:
            return Check("account_match", True, f"account {identity.account} is the target's account")
        return Check(
            "account_match",
            False,
            f"these credentials act in account {identity.account}, the target is account {expected}",
            HINT_ACCOUNT_MISMATCH,
            "ACCOUNT_MISMATCH",
        )

    # -- bootstrap -----------------------------------------------------------------------------------
    def bootstrap(
        self,
        tenant_id: str,
        target_id: str,
        credentials: Credentials,
        progress: Callable[[str], None] | None = None,
    ) -> BootstrapReport:
        secrets = credentials.secrets()
        if isinstance(credentials, AdfsLogin):
            with _scrubbed(secrets):  # the refusal quotes the URL's host, which may hold what was typed
                self._adfs.check_url(credentials.adfs_url)  # refused before the target is read
        target = self._targets.get(tenant_id, target_id)
        account_template = json.dumps(self._access.bootstrap_template(tenant_id, target_id))
        try:
            with _scrubbed(secrets):
                _, session = self._session(credentials)
                identity = session.caller_identity()
        except DeployerError as error:
            raise _refused(error) from None
        if identity.account != target.account_id:
            raise Conflict(
                f"These credentials act in account {identity.account}; the target is account {target.account_id}.",
                code="ACCOUNT_MISMATCH",
                hint=HINT_ACCOUNT_MISMATCH,
            )
        first, *others = target.regions
        outcomes: list[StackOutcome] = []
        try:
            with _scrubbed(secrets):
                main = deploy_stack(
                    session.stacks(first),
                    BOOTSTRAP_STACK,
                    account_template,
                    region=first,
                    progress=progress,
                    timeout=self._settings.wait_seconds,
                    poll_seconds=self._settings.poll_seconds,
                    raise_on_timeout=False,
                )
                outcomes.append(main)
                forwarder = (
                    session.stacks(first).describe(BOOTSTRAP_STACK).outputs.get(FORWARDER_OUTPUT)
                    if main.settled and others
                    else None
                )
                if forwarder:
                    region_template = json.dumps(
                        self._access.region_forwarding_template(tenant_id, target_id)
                    )
                    for region in others:
                        outcomes.append(
                            deploy_stack(
                                session.stacks(region),
                                f"{BOOTSTRAP_STACK}-events",
                                region_template,
                                region=region,
                                parameters={FORWARDER_ROLE_PARAMETER: forwarder},
                                progress=progress,
                                timeout=self._settings.wait_seconds,
                                poll_seconds=self._settings.poll_seconds,
                                raise_on_timeout=False,
                            )
                        )
        except BootstrapFailed as failure:
            return BootstrapReport(target.target_id, target.account_id, tuple(outcomes), failure)
        return BootstrapReport(target.target_id, target.account_id, tuple(outcomes))

    def bootstrap_status(self, tenant_id: str, target_id: str) -> BootstrapReport:
        """The bootstrap stacks as the target's deployment role sees them (the user's keys are gone)."""
        target = self._targets.get(tenant_id, target_id)
        outcomes = []
        for index, region in enumerate(target.regions):
            name = BOOTSTRAP_STACK if index == 0 else f"{BOOTSTRAP_STACK}-events"
            try:
                stack = self._stacks.find_stack(
                    target, region=region, stack=name, session_name=f"nexus-bootstrap-{target.target_id}"
                )
            except DeployerError as error:
                outcomes.append(
                    StackOutcome(name, region, "WAITING_FOR_ROLE", settled=False, reason=error.code)
                )
                continue
            if stack is None:
                outcomes.append(StackOutcome(name, region, "NOT_FOUND", settled=True, reason="not deployed"))
                continue
            phase = phase_of(stack.status)
            outcomes.append(
                StackOutcome(
                    name,
                    region,
                    stack.status,
                    settled=phase is not StackPhase.IN_PROGRESS,
                    reason=stack.status_reason,
                )
            )
        return BootstrapReport(target.target_id, target.account_id, tuple(outcomes))
