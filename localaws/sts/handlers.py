"""The wrappers of moto's STS and IAM handlers and models that ``install()`` applies.

Each ``_name(original)`` returns the replacement for one moto method: ``AssumeRole`` and
``GetSessionToken`` validate, check trust policies and MFA; ``GetCallerIdentity`` knows our sessions;
every request refuses expired credentials; ``EnableMFADevice`` checks its codes; session models'
``expiration`` follows ``CLOCK``.
"""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Callable
from typing import Any

from localaws.policy import ACCOUNT_RE, trust_policy_allows
from localaws.sts.clock import CLOCK
from localaws.sts.errors import _access_denied, _expired_token, _not_authorized, _protocol_of
from localaws.sts.identity import (
    _MFA_ATTR,
    SessionCredentials,
    _expiration_of,
    _find_role,
    _sessions,
    identify_caller,
)
from localaws.sts.mfa import _consecutive_codes_valid, _invalid_authentication_code, _verify_mfa
from localaws.sts.validation import (
    _EXTERNAL_ID_RE,
    _ROLE_ARN_RE,
    _SESSION_NAME_RE,
    MAX_DURATION,
    MAX_SESSION_TOKEN_DURATION,
    ROLE_CHAINING_MAX_DURATION,
    _check_duration,
    _check_mfa_fields,
    _check_string,
    _constraint,
    _raise_validation,
    _validation_error,
)


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
