"""KMS keys whose signing key pair is made on first use, not with the key.

Why this exists: moto 5.2.5 gives every KMS key an asymmetric private key as it creates it
(``Key.__init__`` calls ``generate_private_key(key_spec)``), a 2048-bit RSA key for the default
``SYMMETRIC_DEFAULT`` spec, which nothing but ``Sign``, ``Verify`` and ``GetPublicKey`` ever reads. The
service's table has server-side encryption on, so moto makes DynamoDB's default key for it, and every
fresh local AWS (one per test) paid about 45 ms of CPU for an RSA key it never used.

:func:`install` makes moto's ``generate_private_key`` (as ``moto.kms.models`` calls it) answer a key
that generates the real one, with moto's own function and the same spec, the first time it is used,
then forwards every call and attribute to it. The key is made once per KMS key (under a lock); a replica
key, which moto makes with ``copy()``, shares it as before. What a key can do, and every answer, is
unchanged.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from localaws.patching import Patcher, params

__all__ = ["check_moto_internals", "install"]

_PATCHER = Patcher("localaws.kms")
_made = threading.Lock()  # module-wide: a lock in the key would stop moto's copy() of it from sharing


class _MadeOnFirstUse:
    """Stands for ``generate(key_spec)``'s key until something reads it."""

    def __init__(self, generate: Any, key_spec: str) -> None:
        self._generate = generate
        self._key_spec = key_spec
        self._key: Any = None

    def _real(self) -> Any:
        with _made:
            if self._key is None:
                self._key = self._generate(self._key_spec)
            return self._key

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        signature: bytes = self._real().sign(message, signing_algorithm)
        return signature

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        return bool(self._real().verify(message, signature, signing_algorithm))

    def public_key(self) -> bytes:
        public: bytes = self._real().public_key()
        return public

    def __getattr__(self, name: str) -> Any:  # key_size, private_key, ...: the real key's
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._real(), name)


def _deferred(original: Any) -> Any:
    def generate_private_key(key_spec: str) -> Any:
        return _MadeOnFirstUse(original, key_spec)

    return generate_private_key


def check_moto_internals() -> None:
    from moto.kms.utils import AbstractPrivateKey

    models: Any = importlib.import_module("moto.kms.models")

    current = models.generate_private_key
    original = getattr(current, "__wrapped__", current)
    _PATCHER.expect(params(original) == ["key_spec"], "moto.kms.models.generate_private_key(key_spec)")
    _PATCHER.expect(
        {"sign", "verify", "public_key"} <= AbstractPrivateKey.__abstractmethods__,
        "AbstractPrivateKey's sign, verify and public_key",
    )


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        _PATCHER.wrap(importlib.import_module("moto.kms.models"), "generate_private_key", _deferred)
