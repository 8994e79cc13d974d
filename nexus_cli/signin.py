"""The guide's four sign-in methods, each ending in one in-memory ``boto3.Session``.

1. role ARN + external ID: ``sts:AssumeRole`` from the operator's default credentials or a source profile
   (with ``SerialNumber``/``TokenCode`` when ``--mfa-serial``/``--mfa-code`` are given);
2. access keys: the key ID on the command line, the secret from a no-echo prompt or
   ``AWS_SECRET_ACCESS_KEY``, an optional session token;
3. an AWS config profile, SSO profiles included (botocore resolves them from its SSO token cache);
4. ADFS: the IdP-initiated form flow (``nexus_cli.adfs``), one of the assertion's roles, then
   ``sts:AssumeRoleWithSAML`` (an unsigned call: the assertion is the credential).

For keys and profiles, MFA means ``sts:GetSessionToken`` with the device and code, so the session carries
``aws:MultiFactorAuthPresent``. Inputs are checked against AWS's own patterns before any AWS call, so a
malformed ARN is a usage error, not a round trip.

Why AssumeRole's AccessDenied is looked at twice: AWS answers the same AccessDenied for a wrong external
ID, a trust policy that does not name the caller, a trust policy that wants MFA, and a role that does not
exist. When the operator's own credentials are in the role's account (the bootstrap case), the CLI reads
the role with ``iam:GetRole``: NoSuchEntity means the ARN names no role (INVALID_ROLE_ARN); a trust policy
with an ``aws:MultiFactorAuth*`` condition and no MFA code given means MFA_REQUIRED; anything else stays
ACCESS_DENIED. From another account IAM cannot see the role, so the CLI says it cannot tell them apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.domain.aws_errors import translate
from chalicelib.domain.errors import DeployerError

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

    from nexus_cli.adfs import SamlRole

ROLE_ARN_RE = re.compile(r"arn:aws(-cn|-us-gov)?:iam::(\d{12}):role/([\x21-\x7E]{0,510}/)?([\w+=,.@-]{1,64})")
EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]{2,1224}")
MFA_SERIAL_RE = re.compile(r"[\w+=/:,.@-]{9,256}")
MFA_CODE_RE = re.compile(r"\d{6}")
ACCESS_KEY_RE = re.compile(r"[A-Z0-9]{16,128}")
SESSION_NAME = "nexus-credentials-test"
DEFAULT_REGION = "us-east-1"

METHOD_ROLE = "role-arn"
METHOD_KEYS = "access-keys"
METHOD_PROFILE = "profile"
METHOD_ADFS = "adfs"


class UsageProblem(ValueError):
    """Options that do not make one valid sign-in; reported before any AWS call (exit code 2)."""


@dataclass(frozen=True)
class SignInOptions:
    role_arn: str | None = None
    external_id: str | None = None
    source_profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    adfs_url: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    adfs_role: str | None = None
    mfa_serial: str | None = None
    mfa_code: str | None = field(default=None, repr=False)
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    session_name: str = SESSION_NAME

    @property
    def method(self) -> str:
        chosen = [
            name
            for name, given in (
                (METHOD_ROLE, self.role_arn),
                (METHOD_KEYS, self.access_key_id),
                (METHOD_PROFILE, self.profile),
                (METHOD_ADFS, self.adfs_url),
            )
            if given
        ]
        if not chosen:
            raise UsageProblem(
                "choose one sign-in method: --role-arn with --external-id, --access-key-id, --profile, "
                "or --adfs-url with --username"
            )
        if len(chosen) > 1:
            raise UsageProblem(f"choose one sign-in method, not {' and '.join(chosen)}")
        return chosen[0]

    def secrets(self) -> list[str]:
        """Values that must never be shown (output is scrubbed of them as a second line of defence)."""
        return [s for s in (self.secret_access_key, self.session_token, self.password) if s]


def validate(options: SignInOptions) -> str:
    """The method, once the options make sense; UsageProblem otherwise. No AWS call."""
    method = options.method
    if method == METHOD_ROLE:
        if not ROLE_ARN_RE.fullmatch(options.role_arn or ""):
            raise UsageProblem(
                f"--role-arn {options.role_arn!r} is not a role ARN (arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME)"
            )
        if options.external_id is None:
            raise UsageProblem("--role-arn needs --external-id (the target's external ID)")
        if not EXTERNAL_ID_RE.fullmatch(options.external_id):
            raise UsageProblem("--external-id must be 2 to 1224 characters of letters, digits and +=,.@:/-")
    elif options.external_id is not None:
        raise UsageProblem("--external-id goes with --role-arn")
    if options.source_profile and method != METHOD_ROLE:
        raise UsageProblem("--source-profile goes with --role-arn")
    if method == METHOD_KEYS and not ACCESS_KEY_RE.fullmatch(options.access_key_id or ""):
        raise UsageProblem("--access-key-id must be 16 to 128 upper-case letters and digits")
    if options.session_token and method != METHOD_KEYS:
        raise UsageProblem("--session-token goes with --access-key-id")
    if method == METHOD_ADFS:
        if not options.username:
            raise UsageProblem("--adfs-url needs --username")
        if options.mfa_serial or options.mfa_code:
            raise UsageProblem(
                "MFA with ADFS is ADFS's own (configure it there); drop --mfa-serial/--mfa-code"
            )
    elif options.adfs_role or options.username:
        raise UsageProblem("--role and --username go with --adfs-url")
    if options.adfs_role and not ROLE_ARN_RE.fullmatch(options.adfs_role):
        raise UsageProblem(f"--role {options.adfs_role!r} is not a role ARN")
    if bool(options.mfa_serial) != bool(options.mfa_code):
        raise UsageProblem("--mfa-serial and --mfa-code go together")
    if options.mfa_serial and not MFA_SERIAL_RE.fullmatch(options.mfa_serial):
        raise UsageProblem("--mfa-serial must be the MFA device's ARN or serial number (9-256 characters)")
    if options.mfa_code and not MFA_CODE_RE.fullmatch(options.mfa_code):
        raise UsageProblem("--mfa-code must be the 6 digits the MFA device shows now")
    return method


@dataclass
class SignedIn:
    session: boto3.Session
    method: str
    detail: str
    role_arn: str | None = None  # the IAM role signed into, when the method names one


class SignInFailed(Exception):
    """Sign-in reached AWS (or ADFS) and was refused; ``error`` carries the guide's code and hint."""

    def __init__(self, error: DeployerError, detail: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.detail = detail


def client_config() -> Config:
    from botocore.config import Config

    return Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=10, read_timeout=30)


def client(session: boto3.Session, service: str, options: SignInOptions, **extra: Any) -> Any:
    return session.client(  # type: ignore[call-overload]
        service,
        region_name=options.region,
        endpoint_url=options.endpoint_url,
        config=client_config(),
        **extra,
    )


def aws_error(error: Exception, operation: str) -> DeployerError:
    """Any botocore failure as the one translation module's DeployerError."""
    from botocore.exceptions import ClientError, NoCredentialsError, TokenRetrievalError

    if isinstance(error, ClientError):
        body = error.response.get("Error", {})
        return translate(str(body.get("Code", "")), str(body.get("Message", "")), operation=operation)
    if isinstance(error, NoCredentialsError):
        return translate("InvalidClientTokenId", "No AWS credentials were found.", operation=operation)
    if isinstance(error, TokenRetrievalError):  # an SSO token that is gone or expired
        return translate("ExpiredToken", str(error), operation=operation)
    return translate("InternalFailure", str(error), operation=operation)


def _static_session(options: SignInOptions, key: str, secret: str, token: str | None) -> boto3.Session:
    import boto3

    return boto3.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=options.region,
    )


def _mfa_session(base: boto3.Session, options: SignInOptions) -> boto3.Session:
    """GetSessionToken with the MFA device: the session then counts as MFA-authenticated."""
    credentials = client(base, "sts", options).get_session_token(
        SerialNumber=options.mfa_serial, TokenCode=options.mfa_code
    )["Credentials"]
    return _static_session(
        options, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )


def _requires_mfa(trust_policy: object) -> bool:
    text = trust_policy if isinstance(trust_policy, str) else json.dumps(trust_policy)
    return "multifactorauth" in text.lower()


def _diagnose_assume_denied(
    source: boto3.Session, options: SignInOptions, denied: DeployerError
) -> DeployerError:
    """Tell a missing role and an MFA condition from other refusals (see the module docstring)."""
    from botocore.exceptions import BotoCoreError, ClientError

    match = ROLE_ARN_RE.fullmatch(options.role_arn or "")
    assert match is not None
    role_account, role_name = match.group(2), match.group(4)
    try:
        caller_account = client(source, "sts", options).get_caller_identity()["Account"]
        if caller_account != role_account:
            denied.details = {
                "diagnosis": f"your credentials are in account {caller_account}, so IAM cannot show whether "
                f"role {role_name} exists in {role_account}: check it there"
            }
            return denied
        role = client(source, "iam", options).get_role(RoleName=role_name)["Role"]
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchEntity", "NoSuchEntityException"):
            return aws_error(error, "GetRole")  # INVALID_ROLE_ARN
        return denied
    except BotoCoreError:
        return denied
    if _requires_mfa(role.get("AssumeRolePolicyDocument")) and not options.mfa_code:
        return translate(
            "AccessDenied",
            f"{denied.message} (role {role_name}'s trust policy requires MFA: aws:MultiFactorAuthPresent)",
            operation="AssumeRole",
        )
    return denied


def _assume_role(options: SignInOptions) -> SignedIn:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    source = boto3.Session(profile_name=options.source_profile, region_name=options.region)
    request: dict[str, Any] = {
        "RoleArn": options.role_arn,
        "RoleSessionName": options.session_name,
        "ExternalId": options.external_id,
        "DurationSeconds": 900,
    }
    if options.mfa_serial:
        request.update(SerialNumber=options.mfa_serial, TokenCode=options.mfa_code)
    try:
        credentials = client(source, "sts", options).assume_role(**request)["Credentials"]
    except (ClientError, BotoCoreError) as error:
        translated = aws_error(error, "AssumeRole")
        if translated.code == "ACCESS_DENIED":
            translated = _diagnose_assume_denied(source, options, translated)
        raise SignInFailed(translated, f"AssumeRole {options.role_arn} was refused") from None
    session = _static_session(
        options, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    mfa = " with MFA" if options.mfa_serial else ""
    return SignedIn(
        session, METHOD_ROLE, f"assumed {options.role_arn} with the external ID{mfa}", options.role_arn
    )


def _keys_or_profile(options: SignInOptions, method: str) -> SignedIn:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    if method == METHOD_KEYS:
        session = _static_session(
            options, options.access_key_id or "", options.secret_access_key or "", options.session_token
        )
        detail = "access keys (memory only)"
    else:
        try:
            session = boto3.Session(profile_name=options.profile, region_name=options.region)
        except BotoCoreError as error:  # ProfileNotFound and friends: the operator's config, not AWS
            raise UsageProblem(str(error)) from None
        detail = f"profile {options.profile}"
    if options.mfa_serial:
        try:
            session = _mfa_session(session, options)
        except (ClientError, BotoCoreError) as error:
            raise SignInFailed(
                aws_error(error, "GetSessionToken"), "GetSessionToken with MFA was refused"
            ) from None
        detail += ", MFA session from GetSessionToken"
    return SignedIn(session, method, detail)


def _adfs(options: SignInOptions, choose: Callable[[list[SamlRole]], SamlRole]) -> SignedIn:
    import boto3
    from botocore import UNSIGNED
    from botocore.exceptions import BotoCoreError, ClientError

    from nexus_cli.adfs import AdfsError, fetch_assertion, roles_in

    try:
        assertion = fetch_assertion(options.adfs_url or "", options.username or "", options.password or "")
        roles = roles_in(assertion)
    except AdfsError as error:
        raise SignInFailed(
            translate("AccessDenied", str(error), operation="ADFS sign-in"), "ADFS sign-in failed"
        ) from None
    except OSError as error:  # requests' connection errors are OSErrors
        raise SignInFailed(
            translate("IDPCommunicationError", str(error), operation="ADFS sign-in"), "ADFS is unreachable"
        ) from None
    if not roles:
        raise SignInFailed(
            translate("AccessDenied", "the SAML assertion offers no AWS role", operation="ADFS sign-in"),
            "ADFS assigned this user no AWS role",
        )
    role = choose(roles)
    anonymous = boto3.Session(region_name=options.region)
    sts = client(anonymous, "sts", options)
    sts.meta.events.register("choose-signer.sts.AssumeRoleWithSAML", lambda **_: UNSIGNED)
    try:
        credentials = sts.assume_role_with_saml(
            RoleArn=role.role_arn, PrincipalArn=role.principal_arn, SAMLAssertion=assertion
        )["Credentials"]
    except (ClientError, BotoCoreError) as error:
        raise SignInFailed(
            aws_error(error, "AssumeRoleWithSAML"), f"AssumeRoleWithSAML {role.role_arn}"
        ) from None
    session = _static_session(
        options, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    return SignedIn(session, METHOD_ADFS, f"ADFS user {options.username} as {role.role_arn}", role.role_arn)


def sign_in(options: SignInOptions, choose_role: Callable[[list[SamlRole]], SamlRole]) -> SignedIn:
    """Sign in as the options say; SignInFailed with the guide's code and hint when AWS refuses."""
    method = validate(options)
    if method == METHOD_ROLE:
        return _assume_role(options)
    if method == METHOD_ADFS:
        return _adfs(options, choose_role)
    return _keys_or_profile(options, method)
