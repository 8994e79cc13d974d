"""Sessions from credentials a user typed, and CloudFormation with them (``onboarding_ports``).

``Boto3AccountSignIn.with_keys`` builds a boto3 session from access keys (after ``GetSessionToken``
when an MFA serial and code are given, so the session counts as MFA-authenticated, in its permission
simulation too); ``with_saml``
exchanges an ADFS assertion with ``AssumeRoleWithSAML`` (an unsigned call: the assertion is the
credential). The session lives in the returned object, which the service drops at the end of the
request; nothing here logs or stores it. The same ``BotoBootstrapStacks`` serves the CLI's
``nexus targets bootstrap``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.adfs_http import GuardedHttp
from chalicelib.adapters.errors import aws_call, error_message
from chalicelib.domain.adfs import SamlRole, sign_in
from chalicelib.service.onboarding_ports import AccessKeys
from chalicelib.service.ports import ActionDecision, CallerIdentity, StackEventInfo, StackInfo

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_iam.type_defs import ContextEntryTypeDef

CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
MFA_PRESENT: ContextEntryTypeDef = {
    "ContextKeyName": "aws:MultiFactorAuthPresent",
    "ContextKeyValues": ["true"],
    "ContextKeyType": "boolean",
}


class BotoBootstrapStacks:
    def __init__(self, cfn: Any) -> None:
        self._cfn = cfn

    def find(self, stack_name: str) -> StackInfo | None:
        with aws_call("DescribeStacks"):
            try:
                stacks = self._cfn.describe_stacks(StackName=stack_name)["Stacks"]
            except ClientError as error:
                if "does not exist" in error_message(error):
                    return None
                raise
        live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
        return _info(live[0]) if live else None

    def create(self, stack_name: str, template_body: str, parameters: dict[str, str]) -> None:
        with aws_call("CreateStack"):
            self._cfn.create_stack(
                StackName=stack_name,
                TemplateBody=template_body,
                Parameters=_parameters(parameters),
                Capabilities=CAPABILITIES,
            )

    def update(self, stack_name: str, template_body: str, parameters: dict[str, str]) -> bool:
        with aws_call("UpdateStack"):
            try:
                self._cfn.update_stack(
                    StackName=stack_name,
                    TemplateBody=template_body,
                    Parameters=_parameters(parameters),
                    Capabilities=CAPABILITIES,
                )
            except ClientError as error:
                if "No updates are to be performed" in error_message(error):
                    return False
                raise
        return True

    def describe(self, stack_name: str) -> StackInfo:
        with aws_call("DescribeStacks"):
            return _info(self._cfn.describe_stacks(StackName=stack_name)["Stacks"][0])

    def events(self, stack_name: str) -> list[StackEventInfo]:
        with aws_call("DescribeStackEvents"):
            found = self._cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
        return [
            StackEventInfo(
                event_id=str(e["EventId"]),
                timestamp=str(e["Timestamp"]),
                logical_id=str(e.get("LogicalResourceId", "")),
                resource_type=str(e.get("ResourceType", "")),
                status=str(e.get("ResourceStatus", "")),
                reason=e.get("ResourceStatusReason"),
                client_request_token=e.get("ClientRequestToken"),
            )
            for e in reversed(found)
        ]


def _parameters(parameters: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]


def _info(stack: dict[str, Any]) -> StackInfo:
    return StackInfo(
        stack_id=str(stack["StackId"]),
        stack_name=str(stack["StackName"]),
        status=str(stack["StackStatus"]),
        status_reason=stack.get("StackStatusReason"),
        outputs={str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs", [])},
    )


class Boto3AccountSession:
    def __init__(self, session: boto3.Session, config: Config, *, mfa: bool = False) -> None:
        self._session = session
        self._config = config
        # A GetSessionToken session made with an MFA code: its requests carry aws:MultiFactorAuthPresent,
        # a simulation only sees the key when it is passed as a context entry.
        self._mfa = mfa

    def caller_identity(self) -> CallerIdentity:
        with aws_call("GetCallerIdentity"):
            found = self._session.client("sts", config=self._config).get_caller_identity()
        return CallerIdentity(account=found["Account"], arn=found["Arn"], user_id=found["UserId"])

    def simulate(
        self, principal_arn: str, actions: list[str], *, assume_mfa: bool = False
    ) -> list[ActionDecision]:
        iam = self._session.client("iam", config=self._config)
        decisions: list[ActionDecision] = []
        # Without it a policy that denies everything unless MFA is present ("BoolIfExists": {
        # "aws:MultiFactorAuthPresent": "false"}) denies every simulated action to an MFA session too.
        context = [MFA_PRESENT] if self._mfa or assume_mfa else []
        with aws_call("SimulatePrincipalPolicy"):
            for page in iam.get_paginator("simulate_principal_policy").paginate(
                PolicySourceArn=principal_arn, ActionNames=actions, ContextEntries=context
            ):
                decisions += [
                    ActionDecision(r["EvalActionName"], r["EvalDecision"]) for r in page["EvaluationResults"]
                ]
        return decisions

    def mfa_devices(self, user_name: str) -> list[str]:
        iam = self._session.client("iam", config=self._config)
        try:
            devices = iam.list_mfa_devices(UserName=user_name)["MFADevices"]
        except (ClientError, BotoCoreError):
            return []  # not allowed to list them (or IAM is out of reach): nothing to say about MFA
        return [str(d["SerialNumber"]) for d in devices]

    def stacks(self, region: str) -> BotoBootstrapStacks:
        return BotoBootstrapStacks(
            self._session.client("cloudformation", region_name=region, config=self._config)
        )


class Boto3AccountSignIn:
    def __init__(self, config: Config, region: str) -> None:
        self._config = config
        self._region = region

    def _session(self, key: str, secret: str, token: str | None) -> boto3.Session:
        import boto3

        return boto3.Session(
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            region_name=self._region,
        )

    def with_keys(self, keys: AccessKeys) -> Boto3AccountSession:
        session = self._session(keys.access_key_id, keys.secret_access_key, keys.session_token)
        if keys.mfa_serial and keys.mfa_code:
            with aws_call("GetSessionToken"):
                credentials = session.client("sts", config=self._config).get_session_token(
                    SerialNumber=keys.mfa_serial, TokenCode=keys.mfa_code
                )["Credentials"]
            session = self._session(
                credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
            )
            return Boto3AccountSession(session, self._config, mfa=True)
        return Boto3AccountSession(session, self._config)

    def with_saml(self, assertion: str, role: SamlRole) -> Boto3AccountSession:
        import boto3
        from botocore import UNSIGNED

        sts = boto3.Session(region_name=self._region).client(
            "sts", config=self._config.merge(Config(signature_version=UNSIGNED))
        )
        with aws_call("AssumeRoleWithSAML"):
            credentials = sts.assume_role_with_saml(
                RoleArn=role.role_arn, PrincipalArn=role.principal_arn, SAMLAssertion=assertion
            )["Credentials"]
        session = self._session(
            credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )
        return Boto3AccountSession(session, self._config)


class GuardedAdfsClient:
    """ADFS sign-in through the SSRF-guarded client; a fresh cookie jar for each sign-in."""

    def __init__(self, allowed_hosts: frozenset[str], ca_file: str | None) -> None:
        self._hosts = allowed_hosts
        self._ca_file = ca_file

    def check_url(self, url: str) -> None:
        GuardedHttp(self._hosts).allowed(url)

    def assertion(self, url: str, username: str, password: str) -> str:
        http = GuardedHttp(self._hosts, ca_file=self._ca_file)
        return sign_in(http.get, http.post, url, username, password)
