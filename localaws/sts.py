"""STS that behaves like AWS, for the embedded local AWS (moto 5.2.5).

Why this exists
---------------
The deployer assumes a role in each target account with an external ID. That is the whole security model
(the external ID stops the confused deputy), so tests must be able to prove that a wrong or missing
external ID, a foreign principal or a missing role is refused. moto checks none of it: its ``AssumeRole``
hands out credentials for any ARN, ignores the trust policy and the external ID, ignores MFA codes, never
expires a session, and ``GetSessionToken`` returns the same fixed keys to everybody. ``install()`` patches
moto, process-wide, so that:

1. ``AssumeRole`` validates its input as AWS does (``RoleArn`` pattern, ``ExternalId`` length/pattern,
   ``RoleSessionName``, ``DurationSeconds`` 900..43200, MFA field shapes) -> ``ValidationError`` (400);
   then requires the role to exist in the target account and its trust policy to allow the caller
   (principal, action, ``Deny`` wins, conditions on ``sts:ExternalId``, ``aws:MultiFactorAuthPresent``,
   ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``sts:RoleSessionName``) -> otherwise ``AccessDenied``
   (403) with AWS's message ``User: <caller> is not authorized to perform: sts:AssumeRole on resource:
   <role>``; then checks ``DurationSeconds`` against the role's ``MaxSessionDuration`` and the one-hour
   limit of role chaining.
2. Credentials from STS expire: once their ``Expiration`` has passed, every call signed with them, to any
   service, answers as AWS does: ``ExpiredToken`` "The security token included in the request is expired"
   (HTTP 403) for query-protocol services (STS, IAM, CloudFormation, ...), ``ExpiredTokenException`` with the
   same message (HTTP 400) for JSON services (DynamoDB, Step Functions, Lambda, ...), and S3's own
   ``ExpiredToken`` "The provided token has expired." (HTTP 400).
3. MFA is real: ``SerialNumber``/``TokenCode`` on ``AssumeRole`` and ``GetSessionToken`` are checked against
   the seed of the caller's enabled virtual MFA device (RFC 6238 TOTP, 30 s steps, 6 digits, one step of
   clock skew accepted). As on AWS, a code works once: a code of the time step of a code the device
   already signed in with, or of an earlier step, is refused like a wrong one (RFC 6238 section 5.2;
   AWS answers the same ``AccessDenied``), so a second call with the same code must wait for the next.
   ``GetSessionToken`` returns unique credentials that act as the calling user, carry
   the MFA flag into ``aws:MultiFactorAuthPresent`` and expire.

The patches live at moto's response/model level (``TokenResponse.assume_role``/``get_session_token``,
``BaseResponse.setup_class``, ``STSBackend.get_caller_identity``, ``IAMBackend.enable_mfa_device``,
``AssumedRole``/``Token`` constructors), so they apply both to the
in-process ``moto.mock_aws()`` and to a ``moto.server.ThreadedMotoServer`` running in the same process.
``check_moto_internals()`` fails loudly if those internals change; ``install()`` calls it first.

Time: ``CLOCK``
---------------
Everything time-dependent here (session expiry, the ``Expiration`` that STS returns, TOTP validation) reads
``CLOCK``: real UTC time plus ``CLOCK.offset`` seconds. Tests move time with ``CLOCK.advance(seconds)`` and
must undo it with ``CLOCK.reset()`` (e.g. in a fixture's teardown)::

    creds = sts.assume_role(RoleArn=arn, RoleSessionName="s", DurationSeconds=900)["Credentials"]
    CLOCK.advance(901)          # the session is now expired
    ...                         # any call with creds -> ClientError "ExpiredToken"
    CLOCK.reset()

MFA
---
Register a virtual MFA device for an IAM user with ``enable_virtual_mfa(iam_client, user_name, name)``
(moto's ``CreateVirtualMFADevice`` + ``EnableMFADevice``); it returns ``(serial_number, seed)``. As on AWS,
``EnableMFADevice`` for a virtual device now requires two consecutive current codes
(``InvalidAuthenticationCode``, 403, otherwise); the helper computes them. Compute the
current code with ``totp_code(seed)`` and pass both to ``AssumeRole``/``GetSessionToken``.

Bootstrapping an account
------------------------
``account_credentials(account_id)`` mints credentials ``(access_key_id, secret_access_key)`` that act in
``account_id`` (as moto's default identity ``arn:aws:sts::<account>:user/moto``), e.g. to create the target
role there before the code under test assumes it. They never expire. They are made directly in moto's
backends, so they work in-process and with a ``ThreadedMotoServer`` in the same interpreter.

Trust policies are evaluated by :mod:`localaws.policy` (``trust_policy_allows``, re-exported here).

Not modelled: identity policies of the caller (moto's ``enable_iam_authentication`` does that), SCPs,
session policies, session tags, ``AssumeRoleWithWebIdentity``/``AssumeRoleWithSAML`` trust policies,
``GetFederationToken`` (still moto's fixed keys), and whether the codes that enabled a device count as
used (they do not here).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import inspect
import json
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

from werkzeug.exceptions import HTTPException

from localaws.patching import MOTO_VERSION, Patcher, params
from localaws.policy import (
    ACCOUNT_RE,
    ARN_RE,
    Caller,
    trust_policy_allows,
)

__all__ = [
    "CLOCK",
    "MFA_INVALID_CODE",
    "MFA_UNKNOWN_DEVICE",
    "MOTO_VERSION",
    "AccountCredentials",
    "Caller",
    "Clock",
    "account_credentials",
    "check_moto_internals",
    "enable_virtual_mfa",
    "identify_caller",
    "install",
    "totp_code",
    "trust_policy_allows",
]

_MFA_ATTR = "_localaws_mfa"
_SESSIONS_ATTR = "_localaws_sessions"
_PATCHER = Patcher("localaws.sts")

_ROLE_ARN_RE = re.compile(
    r"arn:aws(-cn|-us-gov)?:iam::(\d{12}):role/([\x21-\x7E]{0,510}/)?([\w+=,.@-]{1,64})", re.ASCII
)
_EXTERNAL_ID_RE = re.compile(r"[\w+=,.@:/-]*", re.ASCII)
_SESSION_NAME_RE = re.compile(r"[\w+=,.@-]*", re.ASCII)
_SERIAL_RE = re.compile(r"[\w+=/:,.@-]*", re.ASCII)
_TOKEN_CODE_RE = re.compile(r"\d{6}", re.ASCII)

MIN_DURATION = 900
MAX_DURATION = 43200
MAX_SESSION_TOKEN_DURATION = 129600
ROLE_CHAINING_MAX_DURATION = 3600
TOTP_STEP = 30
TOTP_DIGITS = 6

EXPIRED_MESSAGE = "The security token included in the request is expired"
S3_EXPIRED_MESSAGE = "The provided token has expired."
MFA_INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
MFA_UNKNOWN_DEVICE = "MultiFactorAuthentication failed, unable to validate MFA code."


# ---------------------------------------------------------------------------------------------- clock
class Clock:
    """Real UTC time plus an adjustable offset in seconds (``advance``/``reset``), shared process-wide."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        """Seconds since the epoch, shifted by ``offset``."""
        return time.time() + self.offset

    def now(self) -> datetime.datetime:
        """Naive UTC datetime (moto's convention), shifted by ``offset``."""
        return datetime.datetime.fromtimestamp(self.time(), datetime.UTC).replace(tzinfo=None)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0


CLOCK = Clock()


# ----------------------------------------------------------------------------------------------- TOTP
def _seed_bytes(seed_base32: str | bytes) -> bytes:
    text = seed_base32.decode("ascii") if isinstance(seed_base32, bytes) else seed_base32
    text = text.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def totp_code(seed_base32: str | bytes, at: float | None = None) -> str:
    """RFC 6238 code (HMAC-SHA1, 30 s step, 6 digits) for a base32 seed at ``at`` (default ``CLOCK.time()``).

    ``seed_base32`` may be the ``bytes`` that boto3 returns as ``VirtualMFADevice.Base32StringSeed``.
    """
    moment = CLOCK.time() if at is None else at
    counter = int(moment // TOTP_STEP)
    digest = hmac.new(_seed_bytes(seed_base32), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**TOTP_DIGITS:0{TOTP_DIGITS}d}"


def _totp_step(seed_base32: str, code: str, at: float) -> int | None:
    """The time step whose code ``code`` is, within one step of ``at``; None when it is none of them."""
    for skew in (-1, 0, 1):
        moment = at + skew * TOTP_STEP
        if hmac.compare_digest(totp_code(seed_base32, moment), code):
            return int(moment // TOTP_STEP)
    return None


# A device's last accepted step lives on moto's device object, so a fresh local AWS starts with none.
_USED_STEP = "nexus_last_accepted_step"
_USED_STEP_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------- errors
class AwsHttpError(HTTPException):
    """An AWS error response that moto passes through unchanged (any protocol, any HTTP status)."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        protocol: str = "query",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.extra_headers = dict(headers or {})
        self.code = status
        self.error_code = error_code
        self.message = message
        self.protocol = protocol
        if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
            self.content_type = "application/json"
            self.description = json.dumps({"__type": error_code, "message": message})
        else:
            self.content_type = "text/xml"
            error = f"<Code>{escape(error_code)}</Code><Message>{escape(message)}</Message>"
            if protocol == "rest-xml":  # S3's shape
                self.description = f"<?xml version='1.0' encoding='UTF-8'?><Error>{error}</Error>"
            else:
                self.description = (
                    f"<ErrorResponse><Error><Type>Sender</Type>{error}</Error>"
                    "<RequestId>localaws</RequestId></ErrorResponse>"
                )

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [
            ("Content-Type", self.content_type),
            ("X-Amzn-ErrorType", self.error_code),
            *self.extra_headers.items(),
        ]

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return self.description or ""

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"


def _access_denied(message: str) -> AwsHttpError:
    return AwsHttpError(403, "AccessDenied", message)


def _not_authorized(caller_arn: str, role_arn: str) -> AwsHttpError:
    return _access_denied(
        f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )


def _validation_error(message: str) -> Exception:
    from moto.sts.exceptions import STSValidationError

    return STSValidationError(message)


def _constraint(value: object, field: str, rule: str) -> str:
    return f"Value '{value}' at '{field}' failed to satisfy constraint: Member must {rule}"


def _raise_validation(errors: list[str]) -> None:
    if errors:
        count = len(errors)
        plural = "s" if count > 1 else ""
        raise _validation_error(f"{count} validation error{plural} detected: " + "; ".join(errors))


def _check_string(
    errors: list[str], value: str | None, field: str, min_len: int, max_len: int, pattern: re.Pattern[str]
) -> None:
    if value is None:
        return
    if len(value) < min_len:
        errors.append(_constraint(value, field, f"have length greater than or equal to {min_len}"))
    if len(value) > max_len:
        errors.append(_constraint(value, field, f"have length less than or equal to {max_len}"))
    if not pattern.fullmatch(value):
        errors.append(_constraint(value, field, f"satisfy regular expression pattern: {pattern.pattern}"))


def _check_duration(errors: list[str], duration: int | None, maximum: int) -> None:
    if duration is None:
        return
    if duration < MIN_DURATION:
        errors.append(
            _constraint(duration, "durationSeconds", f"have value greater than or equal to {MIN_DURATION}")
        )
    if duration > maximum:
        errors.append(_constraint(duration, "durationSeconds", f"have value less than or equal to {maximum}"))


def _check_mfa_fields(errors: list[str], serial: str | None, token_code: str | None) -> None:
    _check_string(errors, serial, "serialNumber", 9, 256, _SERIAL_RE)
    if token_code is not None and not _TOKEN_CODE_RE.fullmatch(token_code):
        errors.append(
            _constraint(token_code, "tokenCode", r"satisfy regular expression pattern: [\d]* of length 6")
        )


# --------------------------------------------------------------------------------------------- caller
@dataclass
class SessionCredentials:
    """A GetSessionToken session: acts as the user who asked for it."""

    user_id: str
    arn: str
    account: str
    expiration: datetime.datetime
    mfa: bool
    session_token: str


def _sessions(sts_backend: Any) -> dict[str, SessionCredentials]:
    """GetSessionToken sessions of one account, stored on moto's backend so a moto reset clears them."""
    sessions: dict[str, SessionCredentials] | None = getattr(sts_backend, _SESSIONS_ATTR, None)
    if sessions is None:
        sessions = {}
        setattr(sts_backend, _SESSIONS_ATTR, sessions)
    return sessions


def session_of(account: str, partition: str, access_key: str) -> SessionCredentials | None:
    """The GetSessionToken session of ``access_key`` in ``account``, if it is one."""
    from moto.sts.models import sts_backends

    return _sessions(sts_backends[account][partition]).get(access_key)


def session_mfa(assumed: Any) -> bool:
    """Whether an assumed-role session was created with MFA (``aws:MultiFactorAuthPresent``)."""
    return bool(getattr(assumed, _MFA_ATTR, False))


def _describe_arn(arn: str) -> tuple[str, str]:
    """(kind, name) of a caller ARN."""
    match = ARN_RE.fullmatch(arn)
    if not match:
        return "unknown", ""
    resource = match.group(4)
    if resource == "root":
        return "root", ""
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        return kind, rest.split("/")[0]
    if kind in ("user", "federated-user"):
        return kind, rest.rsplit("/", 1)[-1]
    return "unknown", ""


def identify_caller(response: Any) -> Caller:
    """Identify the caller of a moto STS request the way ``TokenResponse.get_caller_identity`` does."""
    backend = response.backend
    access_key = response.get_access_key()
    user_id, arn, account = backend.get_caller_identity(access_key, response.region)
    kind, name = _describe_arn(arn)
    session = _sessions(backend).get(access_key)
    assumed = backend.get_assumed_role_from_access_key(access_key)
    if assumed is not None:
        return Caller(
            user_id=user_id,
            arn=arn,
            account=account,
            kind=kind,
            name=name,
            temporary=True,
            mfa=session_mfa(assumed),
            role_arn=_canonical_role_arn(assumed.role_arn),
        )
    if session is not None:
        return Caller(user_id, arn, account, kind, name, temporary=True, mfa=session.mfa)
    return Caller(user_id, arn, account, kind, name, temporary=False, mfa=False)


def _canonical_role_arn(role_arn: str) -> str:
    """The ARN of the existing role (with its path) when moto knows it, else the ARN as given."""
    role = _find_role(role_arn)
    return str(role.arn) if role is not None else role_arn


def _find_role(role_arn: str) -> Any | None:
    """The moto IAM role that ``role_arn`` names (looked up by name in the ARN's account), or None."""
    from moto.iam.models import iam_backends

    match = _ROLE_ARN_RE.fullmatch(role_arn)
    if not match:
        return None
    partition = "aws" + (match.group(1) or "")
    account, name = match.group(2), match.group(4)
    for role in iam_backends[account][partition].get_roles():
        if role.name == name:
            return role
    return None


# ------------------------------------------------------------------------------------------------ MFA
def _verify_mfa(caller: Caller, serial: str | None, token_code: str | None) -> None:
    """Raise AccessDenied unless ``token_code`` is a current code of ``serial``, the caller's device, newer
    than the last code it accepted."""
    from moto.iam.models import iam_backends

    if not serial or not token_code:
        raise _access_denied(MFA_UNKNOWN_DEVICE)
    match = ARN_RE.fullmatch(serial)
    if not match or match.group(3) != caller.account:
        raise _access_denied(MFA_UNKNOWN_DEVICE)
    device = iam_backends[caller.account][match.group(1)].virtual_mfa_devices.get(serial)
    if device is None or device.enable_date is None or device.user is None:
        raise _access_denied(MFA_UNKNOWN_DEVICE)
    if caller.kind == "user" and caller.arn.split(":")[2] == "iam" and device.user.arn != caller.arn:
        raise _access_denied(MFA_UNKNOWN_DEVICE)
    step = _totp_step(device.base32_string_seed, token_code, CLOCK.time())
    with _USED_STEP_LOCK:  # two calls at once with one code: one of them gets it
        last = getattr(device, _USED_STEP, None)
        if step is None or (last is not None and step <= last):
            raise _access_denied(MFA_INVALID_CODE)
        setattr(device, _USED_STEP, step)


def enable_virtual_mfa(iam_client: Any, user_name: str, device_name: str) -> tuple[str, str]:
    """Create a virtual MFA device, enable it for ``user_name`` with two consecutive codes.

    Returns ``(serial_number, base32_seed)``; pass ``totp_code(seed)`` as ``TokenCode``.
    """
    device = iam_client.create_virtual_mfa_device(VirtualMFADeviceName=device_name)["VirtualMFADevice"]
    raw_seed = device["Base32StringSeed"]
    seed = raw_seed.decode("ascii") if isinstance(raw_seed, bytes) else str(raw_seed)
    serial = str(device["SerialNumber"])
    now = CLOCK.time()
    iam_client.enable_mfa_device(
        UserName=user_name,
        SerialNumber=serial,
        AuthenticationCode1=totp_code(seed, now - TOTP_STEP),
        AuthenticationCode2=totp_code(seed, now),
    )
    return serial, seed


def _invalid_authentication_code() -> Exception:
    """IAM's ``InvalidAuthenticationCode``; moto serializes it with IAM's error shape (HTTP 403)."""
    from moto.core.exceptions import ServiceException

    class InvalidAuthenticationCode(ServiceException):
        code = "InvalidAuthenticationCode"
        message = "Authentication code for device is not valid."

    return InvalidAuthenticationCode()


def _consecutive_codes_valid(seed: str, code_1: str, code_2: str, at: float) -> bool:
    """AWS's rule for EnableMFADevice: two consecutive codes, around now."""
    for step in (-2, -1, 0, 1):
        first = totp_code(seed, at + step * TOTP_STEP)
        second = totp_code(seed, at + (step + 1) * TOTP_STEP)
        if hmac.compare_digest(first, code_1) and hmac.compare_digest(second, code_2):
            return True
    return False


def _enable_mfa_device(original: Callable[..., Any]) -> Callable[..., Any]:
    def enable_mfa_device(
        self: Any, user_name: str, serial_number: str, authentication_code_1: str, authentication_code_2: str
    ) -> Any:
        device = self.virtual_mfa_devices.get(serial_number)
        if device is not None and not _consecutive_codes_valid(
            device.base32_string_seed, authentication_code_1, authentication_code_2, CLOCK.time()
        ):
            raise _invalid_authentication_code()
        return original(self, user_name, serial_number, authentication_code_1, authentication_code_2)

    return enable_mfa_device


# ------------------------------------------------------------------------------------ patched methods
def _int_or_none(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(str(value))


def _assume_role(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def assume_role(self: Any) -> Any:
        role_arn: str = self._get_param("RoleArn") or ""
        external_id: str | None = self._get_param("ExternalId")
        session_name: str | None = self._get_param("RoleSessionName")
        serial: str | None = self._get_param("SerialNumber")
        token_code: str | None = self._get_param("TokenCode")
        duration = _int_or_none(self._get_param("DurationSeconds"))

        errors: list[str] = []
        if len(role_arn) > 2048:
            errors.append(_constraint(role_arn, "roleArn", "have length less than or equal to 2048"))
        _check_string(errors, external_id, "externalId", 2, 1224, _EXTERNAL_ID_RE)
        _check_string(errors, session_name, "roleSessionName", 2, 64, _SESSION_NAME_RE)
        _check_duration(errors, duration, MAX_DURATION)
        _check_mfa_fields(errors, serial, token_code)
        _raise_validation(errors)
        if not _ROLE_ARN_RE.fullmatch(role_arn):
            raise _validation_error("Request ARN is invalid")

        caller = identify_caller(self)
        mfa = caller.mfa
        if serial is not None or token_code is not None:
            _verify_mfa(caller, serial, token_code)
            mfa = True
        context: dict[str, str] = {
            "aws:principalarn": caller.principal_arn,
            "aws:principalaccount": caller.account,
        }
        if external_id is not None:
            context["sts:externalid"] = external_id
        if session_name is not None:
            context["sts:rolesessionname"] = session_name
        if mfa or caller.temporary:
            context["aws:multifactorauthpresent"] = "true" if mfa else "false"
        role = _find_role(role_arn)
        if role is None or not trust_policy_allows(role.assume_role_policy_document, caller, context):
            raise _not_authorized(caller.arn, role_arn)

        if duration is not None:
            if duration > int(role.max_session_duration or ROLE_CHAINING_MAX_DURATION):
                raise _validation_error(
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                )
            if caller.kind == "assumed-role" and duration > ROLE_CHAINING_MAX_DURATION:
                raise _validation_error(
                    "The requested DurationSeconds exceeds the 1 hour session limit "
                    "for roles assuming other roles."
                )

        result = original(self)
        credentials = result.result["Credentials"]
        setattr(credentials, _MFA_ATTR, mfa)
        return result

    return assume_role


def _get_session_token(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    del original  # replaced entirely: moto returns the same fixed keys to every caller

    def get_session_token(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends
        from moto.sts.utils import random_session_token

        serial: str | None = self._get_param("SerialNumber")
        token_code: str | None = self._get_param("TokenCode")
        duration = _int_or_none(self._get_param("DurationSeconds"))
        errors: list[str] = []
        _check_duration(errors, duration, MAX_SESSION_TOKEN_DURATION)
        _check_mfa_fields(errors, serial, token_code)
        _raise_validation(errors)

        caller = identify_caller(self)
        if caller.temporary:
            raise _access_denied("Cannot call GetSessionToken with session credentials")
        mfa = False
        if serial is not None or token_code is not None:
            _verify_mfa(caller, serial, token_code)
            mfa = True
        key = iam_backends[caller.account][self.partition].create_temp_access_key()
        session = SessionCredentials(
            user_id=caller.user_id,
            arn=caller.arn,
            account=caller.account,
            expiration=CLOCK.now() + datetime.timedelta(seconds=duration or MAX_DURATION),
            mfa=mfa,
            session_token=random_session_token(),
        )
        _sessions(sts_backends[caller.account][self.partition])[key.access_key_id] = session
        return ActionResult(
            {
                "Credentials": {
                    "AccessKeyId": key.access_key_id,
                    "SecretAccessKey": key.secret_access_key,
                    "SessionToken": session.session_token,
                    "Expiration": session.expiration,
                }
            }
        )

    return get_session_token


def _get_caller_identity(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_caller_identity(self: Any, access_key_id: str, region: str) -> Any:
        session = _sessions(self).get(access_key_id)
        if session is not None:
            return session.user_id, session.arn, session.account
        return original(self, access_key_id, region)

    return get_caller_identity


def _expiration_of(account: str, partition: str, access_key: str) -> datetime.datetime | None:
    from moto.sts.models import sts_backends

    backend = sts_backends[account][partition]
    assumed = backend.get_assumed_role_from_access_key(access_key)
    if assumed is not None:
        expiration: datetime.datetime = assumed.expiration
        return expiration
    session = _sessions(backend).get(access_key)
    return session.expiration if session is not None else None


def _protocol_of(response: Any) -> str:
    from moto.core.utils import get_service_model

    try:
        return str(get_service_model(response.boto3_service_name).protocol)
    except Exception:  # noqa: BLE001 - an unknown service model: answer in the query protocol's shape
        return "query"


def _expired_token(protocol: str) -> AwsHttpError:
    """AWS's answer to expired credentials: S3 says it its own way, JSON services add ``Exception``."""
    if protocol == "rest-xml":
        return AwsHttpError(400, "ExpiredToken", S3_EXPIRED_MESSAGE, protocol)
    if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
        return AwsHttpError(400, "ExpiredTokenException", EXPIRED_MESSAGE, protocol)
    return AwsHttpError(403, "ExpiredToken", EXPIRED_MESSAGE, protocol)


def _setup_class(original: Callable[..., Any]) -> Callable[..., Any]:
    def setup_class(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        access_key = getattr(self, "access_key", None)
        account = getattr(self, "current_account", None)
        if access_key and account and ACCOUNT_RE.fullmatch(str(account)):
            expiration = _expiration_of(str(account), str(self.partition), str(access_key))
            if expiration is not None and CLOCK.now() >= expiration:
                raise _expired_token(_protocol_of(self))
        return result

    return setup_class


def _clocked_init(original: Callable[..., None], signature: inspect.Signature) -> Callable[..., None]:
    """Make a model's ``expiration`` follow ``CLOCK`` (moto computes it from the real clock)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        duration = signature.bind(self, *args, **kwargs).arguments["duration"]
        self.expiration = CLOCK.now() + datetime.timedelta(seconds=int(duration))

    return __init__


# ------------------------------------------------------------------------------------- installation
def check_moto_internals() -> None:
    """Raise RuntimeError with a clear message if a moto internal that ``install()`` relies on changed."""
    from moto.core.responses import ActionResult, BaseResponse
    from moto.iam.models import IAMBackend, VirtualMfaDevice
    from moto.sts.models import AssumedRole, STSBackend, Token
    from moto.sts.responses import TokenResponse

    for name in ("assume_role", "get_session_token", "get_caller_identity", "backend", "get_access_key"):
        _PATCHER.expect(hasattr(TokenResponse, name), f"TokenResponse.{name} is missing")
    _PATCHER.expect(
        params(TokenResponse.assume_role) == ["self"], "TokenResponse.assume_role(self) signature"
    )
    _PATCHER.expect(
        params(BaseResponse.setup_class)[:4] == ["self", "request", "full_url", "headers"],
        "BaseResponse.setup_class(self, request, full_url, headers, ...) signature",
    )
    _PATCHER.expect(
        isinstance(inspect.getattr_static(ActionResult, "result"), property), "ActionResult.result property"
    )
    _PATCHER.expect(
        params(STSBackend.get_caller_identity) == ["self", "access_key_id", "region"],
        "STSBackend.get_caller_identity(self, access_key_id, region) signature",
    )
    _PATCHER.expect(
        hasattr(STSBackend, "get_assumed_role_from_access_key"), "STSBackend.get_assumed_role_from_access_key"
    )
    _PATCHER.expect("duration" in params(AssumedRole.__init__), "AssumedRole.__init__(..., duration, ...)")
    _PATCHER.expect("duration" in params(Token.__init__), "Token.__init__(duration, ...)")
    for name in ("get_roles", "create_temp_access_key", "get_user_from_access_key_id"):
        _PATCHER.expect(hasattr(IAMBackend, name), f"IAMBackend.{name} is missing")
    _PATCHER.expect(
        params(IAMBackend.enable_mfa_device)
        == ["self", "user_name", "serial_number", "authentication_code_1", "authentication_code_2"],
        "IAMBackend.enable_mfa_device(self, user_name, serial_number, code_1, code_2) signature",
    )
    _PATCHER.expect(
        params(VirtualMfaDevice.__init__) == ["self", "account_id", "region_name", "device_name"],
        "VirtualMfaDevice.__init__ signature",
    )


def install() -> None:
    """Patch moto (process-wide, idempotent) so that STS behaves like AWS; see the module docstring."""
    with _PATCHER.lock:
        check_moto_internals()
        from moto.core.responses import BaseResponse
        from moto.iam.models import IAMBackend
        from moto.sts.models import AssumedRole, STSBackend, Token
        from moto.sts.responses import TokenResponse

        _PATCHER.wrap(TokenResponse, "assume_role", _assume_role)
        _PATCHER.wrap(TokenResponse, "get_session_token", _get_session_token)
        _PATCHER.wrap(STSBackend, "get_caller_identity", _get_caller_identity)
        _PATCHER.wrap(BaseResponse, "setup_class", _setup_class)
        _PATCHER.wrap(IAMBackend, "enable_mfa_device", _enable_mfa_device)
        for model in (AssumedRole, Token):
            _PATCHER.wrap(model, "__init__", lambda init: _clocked_init(init, inspect.signature(init)))


class AccountCredentials(NamedTuple):
    """Credentials acting in one account; unpack as ``key, secret`` or use ``boto3_kwargs()``."""

    access_key_id: str
    secret_access_key: str

    def boto3_kwargs(self) -> dict[str, str]:
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}


def account_credentials(account_id: str, partition: str = "aws") -> AccountCredentials:
    """Credentials that act in ``account_id`` as its administrator would (in-process moto only).

    The key is a moto temporary key without a session, so it never expires and the caller is moto's
    default identity in that account (``arn:aws:sts::<account_id>:user/moto``).
    """
    from moto.iam.models import iam_backends

    key = iam_backends[account_id][partition].create_temp_access_key()
    return AccountCredentials(str(key.access_key_id), str(key.secret_access_key))
