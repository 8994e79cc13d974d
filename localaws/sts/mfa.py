"""Virtual MFA: RFC 6238 TOTP codes, and the check of an MFA code against the caller's enabled device.

A code works once per device (a code of the step of the last accepted code, or of an earlier step, is
refused), and enabling a virtual device takes two consecutive current codes, as on AWS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import threading
from typing import Any

from localaws.policy import ARN_RE, Caller
from localaws.sts.clock import CLOCK
from localaws.sts.errors import _access_denied

TOTP_STEP = 30
TOTP_DIGITS = 6

MFA_INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
MFA_UNKNOWN_DEVICE = "MultiFactorAuthentication failed, unable to validate MFA code."


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
