"""moto's response serializer, without re-deriving the same attribute aliases for every value.

Why this exists: profiling a fleet rollout showed moto 5.2.5's response serializer
(``moto/core/serialize.py``) taking about 70% of the CPU of a DynamoDB ``GetItem``, and GetItem
is the service's most frequent call (every workflow step and every ``GET`` reads a record). The
serializer walks the operation's output shape; for every member of every structure (and each
DynamoDB ``AttributeValue`` is a structure of ten members) ``ResponseSerializer.get_value`` builds
an ``AttributePickerContext``, and ``XFormedAttributePicker`` builds six alias providers and asks
each for the names under which the member might be stored on the result object, then tries them.

For a result that is a plain ``dict`` (all of DynamoDB's, and many others), those candidate names
depend only on the member's shape and key: no provider reads anything else of a ``dict`` that can
vary (``ExplicitAlias`` looks for a ``Meta`` attribute, which a ``dict`` never has, and
``ClassPrefixAlias`` reads the class name, always ``dict``). :func:`install` wraps
``ResponseSerializer.get_value`` so that, for a ``dict`` and moto's default picker with no response
transformers, the candidates are derived once per (shape, key) by moto's own picker and then tried in
moto's order with moto's own ``get_value``; anything else goes to moto unchanged. The bytes of every
response stay the same; ``tests/localaws/test_serialization.py`` compares them.

Everything moto-internal this relies on is checked by :func:`check_moto_internals` (including hashes
of the sources whose behaviour the cache assumes), which :func:`install` calls first, so a moto
upgrade fails loudly.
"""

from __future__ import annotations

import threading
from typing import Any

from localaws.patching import MotoInternalsChanged, source_digest

__all__ = ["check_moto_internals", "install"]

_MODULE = "moto.core.serialize"
# sha256 of inspect.getsource(...) in moto 5.2.5, of everything whose behaviour the cache reproduces.
_SOURCE_SHA256 = {
    "ResponseSerializer.get_value": "5ac16904b91c293555159f2e4726b73cc5d7fb9c1c414a6d912d9e2f45da539e",
    "ResponseSerializer._serialize_type_structure": "f9b47068f40ce489e55e7a0bf78accec38597d27168dc3d095ac2fc18312d4a8",
    "AttributePicker.__call__": "c15da8ec29c1afa44772407fe6280d59a519fcbf52216dc90eb31fb6fbb136ce",
    "AttributePicker.get_possible_keys": "cb284052c5ea7fe1b0534936022c95397d8ed8fb7630d51a445614127bc25c17",
    "XFormedAttributePicker.get_possible_keys": "f0d20f55f37fd8a1f74e7fae117327a99c8e14b0f9459a0059d3c8d3c6e50a41",
    "ExplicitAlias": "50e6df2c5ef1bb8c32e68a5c1182475f9d8410357bcc7345c4d9a67591898b91",
    "ShapeNameAlias": "3aac05bf01b44d5c9b9a24488b0f85ecf0b95191d7e2c1a52fc25af44d86ce6c",
    "NoAlias": "54b6a9dd71d3de735461647c699fe3a2cfb79d584f6b744a328b9cfe3f7fd0e5",
    "ShapePrefixAlias": "bc24d299803babd2f2be87fc05993e6c9beb9a16a6b5bf40e08e90b13c269741",
    "ClassPrefixAlias": "badfb8d077e500ff236ef92b2e0394ca14430e7068e3ab4f719a014328b52238",
    "ModelAlias": "dc305f0cc88422f9b7657a3115a488665befc6e934a38331d16a6cd9ad8cc554",
}
_GET_VALUE_SHA256 = "9b06b87ce416131ecb2924b3d067f2f4950e8ca3a06e5ce3a03d17ca2f0bd3dc"
_KEY_SHA256 = "563aa7bc75bd5bb00e8ec1a83d50632f117017699b52161e0467c029b50c10f8"
_DEFAULT_PROVIDERS = (
    "ExplicitAlias",
    "ShapeNameAlias",
    "NoAlias",
    "ShapePrefixAlias",
    "ClassPrefixAlias",
    "ModelAlias",
)

_lock = threading.Lock()
_original: Any = None
_candidates: dict[tuple[Any, str], tuple[str, ...]] = {}  # (shape, key) -> names to try, in order
_moto: Any = None  # moto.core.serialize, bound by install() (moto is imported only when patching)


def _lookup(dotted: str) -> Any:
    import importlib

    obj: Any = importlib.import_module(_MODULE)
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def check_moto_internals() -> None:
    """Fail loudly when a moto internal this module wraps or reproduces has moved or changed."""
    problems: list[str] = []
    for dotted, expected in _SOURCE_SHA256.items():
        try:
            obj = _original if dotted == "ResponseSerializer.get_value" and _original else _lookup(dotted)
        except AttributeError as exc:
            problems.append(f"{_MODULE}.{dotted} is missing ({exc})")
            continue
        if source_digest(obj) != expected:
            problems.append(
                f"{_MODULE}.{dotted} changed upstream: re-compare it with localaws/serialization.py"
            )
    try:
        providers = [provider.__name__ for provider in _lookup("DEFAULT_ALIAS_PROVIDERS")]
        if tuple(providers) != _DEFAULT_PROVIDERS:
            problems.append(f"DEFAULT_ALIAS_PROVIDERS changed: {providers}")
        _lookup("MISSING")
        from moto.core import utils

        # moto.core.utils.get_value (as moto.core.serialize imports it), which the dict lookup reproduces
        for function, expected in (
            (_lookup("get_value"), _GET_VALUE_SHA256),
            (utils._get_value_for_key, _KEY_SHA256),
        ):
            if source_digest(function) != expected:
                problems.append(
                    f"moto.core.utils.{function.__name__} changed: re-check the plain-dict lookup"
                )
    except AttributeError as exc:
        problems.append(str(exc))
    if problems:
        raise MotoInternalsChanged(
            "localaws.serialization relies on moto internals that changed (pin moto==5.2.5 or update the "
            "patch): " + "; ".join(problems)
        )


def _get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
    """moto's ``ResponseSerializer.get_value``, with a plain dict's candidate names derived once."""
    picker = self._value_picker
    if (
        type(value) is not dict
        or type(picker) is not _moto.XFormedAttributePicker
        or picker.alias_providers is not _moto.DEFAULT_ALIAS_PROVIDERS
        or picker.response_transformers
    ):
        return _original(self, value, key, shape)
    names = _candidates.get((shape, key))
    if names is None:
        context = _moto.AttributePickerContext(
            obj=value,
            key=key,
            shape=shape,
            operation_model=self.operation_model,
            service_model=self.operation_model.service_model,
            key_path=".".join(self.path),
        )
        names = _candidates.setdefault((shape, key), tuple(picker.get_possible_keys(context)))
    missing = _moto.MISSING
    for name in names:
        # moto.core.utils.get_value on a dict: a dotted name is a path, any other a plain lookup.
        found = _moto.get_value(value, name, missing) if "." in name else value.get(name, missing)
        if found is not missing:
            return found
    return None


def install() -> None:
    global _original, _moto
    with _lock:
        if _original is not None:
            return
        check_moto_internals()
        import moto.core.serialize as moto_serialize
        from moto.core.serialize import ResponseSerializer

        _moto = moto_serialize
        _original = ResponseSerializer.get_value
        setattr(ResponseSerializer, "get_value", _get_value)  # noqa: B010 - a deliberate monkeypatch
