"""AWS's input validation of ``AssumeRole``/``GetSessionToken``: field patterns, lengths and durations.

A request that breaks a constraint is refused with STS's ``ValidationError`` (400) listing every broken
constraint, worded as AWS words them.
"""

from __future__ import annotations

import re

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
