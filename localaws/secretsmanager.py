"""Secrets Manager refuses a secret value over 65,536 bytes, as AWS does.

Why this exists: moto 5.2.5 stores a ``SecretString`` or ``SecretBinary`` of any size. AWS refuses one
over 65,536 bytes (botocore's model: ``SecretStringType`` max 65536; Secrets Manager's quota: "Secret
value size: 65,536 bytes") with ``ValidationException``, and the service keeps a request's NoEcho values
in one secret (chalicelib/adapters/secrets.py), so a request with many large NoEcho values passed here
and failed on AWS. :func:`install` wraps ``CreateSecret``, ``PutSecretValue`` and ``UpdateSecret``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from localaws.patching import Patcher

__all__ = ["MAX_SECRET_BYTES", "check_moto_internals", "install"]

_PATCHER = Patcher("localaws.secretsmanager")
MAX_SECRET_BYTES = 65_536
_OPERATIONS = ("create_secret", "put_secret_value", "update_secret")


def _size(response: Any) -> tuple[str, int]:
    text = response._get_param("SecretString")
    if text is not None:
        return "secretString", len(str(text).encode())
    binary = response._get_param("SecretBinary")
    if binary is None:
        return "secretBinary", 0
    try:
        return "secretBinary", len(base64.b64decode(str(binary), validate=True))
    except (binascii.Error, ValueError):
        return "secretBinary", len(str(binary))


def _limited(original: Any) -> Any:
    def operation(self: Any) -> Any:
        field, size = _size(self)
        if size > MAX_SECRET_BYTES:
            from moto.secretsmanager.exceptions import ValidationException

            # AWS never echoes a secret's value in an error.
            raise ValidationException(
                f"1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must "
                f"have length less than or equal to {MAX_SECRET_BYTES}"
            )
        return original(self)

    return operation


def check_moto_internals() -> None:
    from moto.secretsmanager.exceptions import ValidationException
    from moto.secretsmanager.responses import SecretsManagerResponse

    for name in _OPERATIONS:
        _PATCHER.expect(
            callable(getattr(SecretsManagerResponse, name, None)), f"SecretsManagerResponse.{name}"
        )
    _PATCHER.expect(callable(getattr(SecretsManagerResponse, "_get_param", None)), "BaseResponse._get_param")
    _PATCHER.expect(ValidationException("x").code == 400, "ValidationException answers HTTP 400")


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        from moto.secretsmanager.responses import SecretsManagerResponse

        for name in _OPERATIONS:
            _PATCHER.wrap(SecretsManagerResponse, name, _limited)
