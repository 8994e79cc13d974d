"""The guide's "Test Credentials" checklist, run against a signed-in session.

In order, each needing the one before: AWS account access (the sign-in itself), STS identity
verification (``GetCallerIdentity``: the ARN), account ID confirmation (against ``--expect-account``,
else the account of the role ARN given), required IAM permissions (``iam:SimulatePrincipalPolicy`` for
the signed-in principal against a permission profile of ``chalicelib.domain.permissions``; the missing
actions listed by service). A failed check carries the translation module's code and hint; the checks
after it are skipped (``ok`` is None), as they could only repeat its failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.domain.aws_errors import HINT_ACCESS_DENIED
from chalicelib.domain.errors import DeployerError
from chalicelib.domain.permissions import group_by_service, load_profile, simulation_principal
from nexus_cli.signin import SignedIn, SignInOptions, aws_error, client

if TYPE_CHECKING:
    import boto3

ACCOUNT_ACCESS = "AWS account access"
STS_IDENTITY = "STS identity verification"
ACCOUNT_ID = "Account ID confirmation"
PERMISSIONS = "Required IAM permissions"
CHECK_NAMES = (ACCOUNT_ACCESS, STS_IDENTITY, ACCOUNT_ID, PERMISSIONS)


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    code: str | None = None
    hint: str | None = None

    @classmethod
    def failed(cls, name: str, detail: str, error: DeployerError) -> Check:
        return cls(name, False, f"{detail}: {error.message}", error.code, error.hint)


@dataclass
class Report:
    method: str
    checks: list[Check] = field(default_factory=list)
    account_id: str | None = None
    arn: str | None = None
    principal_arn: str | None = None
    missing_actions: list[str] = field(default_factory=list)
    profile: str = "default"

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks) and any(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "method": self.method,
            "account_id": self.account_id,
            "arn": self.arn,
            "principal_arn": self.principal_arn,
            "permission_profile": self.profile,
            "checks": [asdict(c) for c in self.checks],
            "missing_actions": self.missing_actions,
            "missing_by_service": group_by_service(self.missing_actions),
        }

    def skip_rest(self, reason: str) -> None:
        done = {c.name for c in self.checks}
        self.checks += [Check(name, None, f"skipped: {reason}") for name in CHECK_NAMES if name not in done]


def principal_for_simulation(
    session: boto3.Session, options: SignInOptions, arn: str, role_arn: str | None
) -> str | None:
    """The IAM ARN to simulate for a caller ARN: the user, or the role behind an assumed-role session."""
    found = simulation_principal(arn)
    if found is None or found.role_name is None:
        return found.arn if found else None  # federated users have no IAM entity of their own
    name = found.role_name
    if role_arn and role_arn.rsplit("/", 1)[-1] == name:
        return role_arn
    try:  # the exact ARN (with its path, as SSO roles have); the role may not be allowed to read itself
        return str(client(session, "iam", options).get_role(RoleName=name)["Role"]["Arn"])
    except Exception:  # noqa: BLE001 - any refusal: fall back to the path-less ARN
        return found.arn


def simulate(session: boto3.Session, options: SignInOptions, principal: str, actions: list[str]) -> list[str]:
    """The actions ``principal`` may not perform (any decision but ``allowed``)."""
    iam = client(session, "iam", options)
    missing: list[str] = []
    for page in iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=principal, ActionNames=actions
    ):
        missing += [r["EvalActionName"] for r in page["EvaluationResults"] if r["EvalDecision"] != "allowed"]
    return missing


def run_checks(
    signed_in: SignedIn, options: SignInOptions, *, expect_account: str | None, profile_name: str = "default"
) -> Report:
    from botocore.exceptions import BotoCoreError, ClientError

    report = Report(signed_in.method, profile=profile_name)
    session = signed_in.session
    try:
        identity = client(session, "sts", options).get_caller_identity()
    except (ClientError, BotoCoreError) as error:
        report.checks.append(
            Check.failed(ACCOUNT_ACCESS, signed_in.detail, aws_error(error, "GetCallerIdentity"))
        )
        report.skip_rest("no access to the account")
        return report
    report.account_id, report.arn = str(identity["Account"]), str(identity["Arn"])
    report.checks.append(Check(ACCOUNT_ACCESS, True, f"signed in: {signed_in.detail}"))
    report.checks.append(Check(STS_IDENTITY, True, report.arn))

    expected = expect_account or (signed_in.role_arn.split(":")[4] if signed_in.role_arn else None)
    if expected is None:
        report.checks.append(
            Check(ACCOUNT_ID, True, f"account {report.account_id} (pass --expect-account to confirm it)")
        )
    elif expected != report.account_id:
        report.checks.append(
            Check(
                ACCOUNT_ID,
                False,
                f"signed in to account {report.account_id}, expected {expected}",
                "ACCOUNT_MISMATCH",
                "Sign in to the target account: check the profile, keys, role ARN or ADFS role you chose.",
            )
        )
        report.skip_rest("wrong account")
        return report
    else:
        report.checks.append(Check(ACCOUNT_ID, True, f"account {report.account_id} as expected"))

    principal = principal_for_simulation(session, options, report.arn, signed_in.role_arn)
    report.principal_arn = principal
    if principal is None:
        report.checks.append(
            Check(PERMISSIONS, None, f"skipped: {report.arn} has no IAM policies to simulate")
        )
        return report
    actions = load_profile(profile_name).actions()
    try:
        report.missing_actions = simulate(session, options, principal, actions)
    except (ClientError, BotoCoreError) as error:
        report.checks.append(
            Check.failed(
                PERMISSIONS, f"could not simulate {principal}", aws_error(error, "SimulatePrincipalPolicy")
            )
        )
        return report
    if report.missing_actions:
        services = ", ".join(
            f"{g['service']} ({len(g['actions'])})" for g in group_by_service(report.missing_actions)
        )
        report.checks.append(
            Check(
                PERMISSIONS,
                False,
                f"{len(report.missing_actions)} of {len(actions)} actions not allowed for {principal}: {services}",
                "ACCESS_DENIED",
                HINT_ACCESS_DENIED,
            )
        )
    else:
        report.checks.append(
            Check(PERMISSIONS, True, f"all {len(actions)} actions of profile {profile_name!r} allowed")
        )
    return report
