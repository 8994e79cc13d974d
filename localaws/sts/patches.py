"""The moto internals the local STS relies on (``check_moto_internals``) and their patching (``install``).

``install()`` checks those internals first, so a moto upgrade fails loudly instead of patching something
that changed, then applies the wrappers of :mod:`localaws.sts.handlers` once per process.
"""

from __future__ import annotations

import inspect

from localaws.patching import Patcher, params
from localaws.sts.handlers import (
    _assume_role,
    _clocked_init,
    _enable_mfa_device,
    _get_caller_identity,
    _get_session_token,
    _setup_class,
)

_PATCHER = Patcher("localaws.sts")


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
    """Patch moto (process-wide, idempotent) so that STS behaves like AWS; see :mod:`localaws.sts`."""
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
