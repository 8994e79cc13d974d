"""Checking a target role from the inside: assume it, ask STS who we are, simulate its permissions.

``IamRoleProbe.assume`` goes through the workflow's own ``StsTargetAccess.session``, so validation
and deployment make the same AssumeRole call and translate its failure the same way. The assumed
session stays inside the returned ``AssumedRoleSession``; callers only get identities and decisions.

Permissions are simulated by the role on itself (``iam:SimulatePrincipalPolicy`` with
``PolicySourceArn`` = the role ARN, as the bootstrap template allows), in pages of at most 100
actions, following IAM's ``Marker`` when a page of results is truncated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.config import Config

from chalicelib.adapters.errors import aws_call
from chalicelib.adapters.sts import StsTargetAccess
from chalicelib.service.ports import ActionDecision, CallerIdentity

if TYPE_CHECKING:
    import boto3

MAX_ACTIONS_PER_CALL = 100


class AssumedRoleSession:
    def __init__(self, session: boto3.Session, role_arn: str, config: Config) -> None:
        self._session = session
        self._role_arn = role_arn
        self._config = config

    def caller_identity(self) -> CallerIdentity:
        with aws_call("GetCallerIdentity"):
            found = self._session.client("sts", config=self._config).get_caller_identity()
        return CallerIdentity(account=found["Account"], arn=found["Arn"], user_id=found["UserId"])

    def simulate(self, actions: list[str]) -> list[ActionDecision]:
        iam = self._session.client("iam", config=self._config)
        decisions: list[ActionDecision] = []
        for start in range(0, len(actions), MAX_ACTIONS_PER_CALL):
            chunk = actions[start : start + MAX_ACTIONS_PER_CALL]
            marker: str | None = None
            while True:
                with aws_call("SimulatePrincipalPolicy"):
                    if marker is None:
                        page = iam.simulate_principal_policy(
                            PolicySourceArn=self._role_arn, ActionNames=chunk
                        )
                    else:
                        page = iam.simulate_principal_policy(
                            PolicySourceArn=self._role_arn, ActionNames=chunk, Marker=marker
                        )
                decisions.extend(
                    ActionDecision(r["EvalActionName"], r["EvalDecision"]) for r in page["EvaluationResults"]
                )
                marker = page.get("Marker") if page.get("IsTruncated") else None
                if marker is None:
                    break
        return decisions


class IamRoleProbe:
    def __init__(self, access: StsTargetAccess, client_config: Config, region: str) -> None:
        self._access = access
        self._config = client_config
        self._region = region

    def assume(self, *, role_arn: str, external_id: str | None, session_name: str) -> AssumedRoleSession:
        session = self._access.session(
            role_arn=role_arn, external_id=external_id, session_name=session_name, region=self._region
        )
        return AssumedRoleSession(session, role_arn, self._config)
