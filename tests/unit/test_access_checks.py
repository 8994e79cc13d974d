"""Test Credentials' permission check, with a role probe in memory: IAM's simulation may answer fewer
decisions than it was asked for (or answers a decision this code does not know); every action without an
explicit ``allowed`` counts as missing, never as granted."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.domain.errors import TargetAccessError
from chalicelib.domain.model import Target, trust_policy_for
from chalicelib.domain.permissions import load_profile
from chalicelib.service.access import AccessService, TargetChecks
from chalicelib.service.ports import ActionDecision, CallerIdentity, RoleSession
from chalicelib.service.targets import TargetService

ACCOUNT = "111111111111"
SERVICE_ROLE = "arn:aws:iam::123456789012:role/Svc"
TARGET = Target(
    tenant_id="t",
    target_id="tgt-" + "0" * 24,
    name="n",
    account_id=ACCOUNT,
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/NexusDeploymentRole",
    regions=("us-east-1",),
    external_id="nx-external",
    trust_policy=trust_policy_for(SERVICE_ROLE, "nx-external"),
    created_at="2026-12-05T00:00:00.000Z",
    permission_profile="cloudformation-only",
)


@dataclass
class Targets:
    """The target store, in memory: the one target, and the external-ID checks recorded on it."""

    recorded: list[bool] = field(default_factory=list)

    def get_target(self, tenant_id: str, target_id: str) -> Target | None:
        return TARGET if (tenant_id, target_id) == (TARGET.tenant_id, TARGET.target_id) else None

    def record_external_id_check(self, target: Target, enforced: bool, checked_at: str) -> None:
        self.recorded.append(enforced)


@dataclass
class Session:
    decisions: dict[str, str]

    def caller_identity(self) -> CallerIdentity:
        return CallerIdentity(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/NexusDeploymentRole/s", "AROA")

    def simulate(self, actions: list[str]) -> list[ActionDecision]:
        return [ActionDecision(a, self.decisions[a]) for a in actions if a in self.decisions]


@dataclass
class Probe:
    session: Session

    def assume(self, *, role_arn: str, external_id: str | None, session_name: str) -> RoleSession:
        if external_id is None:
            raise TargetAccessError("not authorized to perform sts:AssumeRole", code="ACCESS_DENIED")
        return self.session


def report_for(decisions: dict[str, str]) -> dict[str, object]:
    store = Targets()
    targets = TargetService(store, store, SERVICE_ROLE)  # type: ignore[arg-type]
    service = AccessService(targets, TargetChecks(targets, Probe(Session(decisions))))
    report = service.validate(TARGET.tenant_id, TARGET.target_id).public()
    assert store.recorded == [True]  # the external-ID check was conclusive and recorded
    return report


def test_actions_the_simulation_answered_nothing_for_count_as_missing():
    actions = load_profile("cloudformation-only").actions()
    answered = dict.fromkeys(actions[:-3], "allowed")  # the last three get no decision at all
    report = report_for(answered)
    assert report["ok"] is False
    missing = [a for group in report["missing_actions"] for a in group["actions"]]  # type: ignore[attr-defined]
    assert sorted(missing) == sorted(actions[-3:])
    [permissions] = [c for c in report["checks"] if c["name"] == "permissions"]  # type: ignore[attr-defined]
    assert permissions["ok"] is False
    assert permissions["detail"] == f"3 of {len(actions)} actions of profile cloudformation-only are refused"


def test_an_unknown_decision_is_not_a_grant():
    actions = load_profile("cloudformation-only").actions()
    decisions = dict.fromkeys(actions, "allowed")
    decisions[actions[0]] = "allowedByMagic"
    report = report_for(decisions)
    missing = [a for group in report["missing_actions"] for a in group["actions"]]  # type: ignore[attr-defined]
    assert missing == [actions[0]]


def test_all_allowed_passes():
    actions = load_profile("cloudformation-only").actions()
    assert report_for(dict.fromkeys(actions, "allowed"))["ok"] is True
