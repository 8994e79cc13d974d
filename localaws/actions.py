"""moto finds a request's action method without listing every member of its response class.

Why this exists: moto 5.2.5's ``BaseResponse.call_action`` asks ``method_names_from_class(cls)`` for the
names of all the class's functions (``inspect.getmembers``: ``dir()`` of a class of a few hundred
members, each looked up) and then only tests whether the action's name is among them. It does that for
every request, and deploying the service into a fresh local AWS (every test does) makes about 140:
some 20 ms of CPU per deployment.

:func:`install` makes that name ``moto.core.responses`` calls answer an object whose ``in`` asks the one
question directly: is the class's attribute of that name a plain function (what
``inspect.getmembers(cls, inspect.isfunction)`` keeps). Same answer for every name, looked up when asked,
so a method patched in or added later is seen at once. The canaries pin moto's ``call_action`` (which
only tests membership) and ``method_names_from_class``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from localaws.patching import Patcher, params, source_digest

__all__ = ["check_moto_internals", "install"]

_PATCHER = Patcher("localaws.actions")
# sha256 of moto 5.2.5's BaseResponse.call_action (uses method_names only as `action in method_names`)
# and of method_names_from_class (getmembers with inspect.isfunction).
_CALL_ACTION_SHA256 = "26076963fd17fd1a40be642032b5a8d90f159c19d01b80a5f0b0c839770ee0d6"
_METHOD_NAMES_SHA256 = "9dbac89d082b655fee902c450e69de9dbadf9699ad06411298494984b55138c3"


class FunctionNames:
    """The names of ``cls``'s functions, as a container that is only ever asked ``name in``."""

    def __init__(self, cls: object) -> None:
        self._cls = cls

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and inspect.isfunction(getattr(self._cls, name, None))


def check_moto_internals() -> None:
    from moto.core import utils
    from moto.core.responses import BaseResponse

    from localaws import concurrency

    responses: Any = importlib.import_module("moto.core.responses")
    current = responses.method_names_from_class
    original_names = getattr(current, "__wrapped__", current)
    _PATCHER.expect(
        original_names is utils.method_names_from_class and params(original_names) == ["clazz"],
        "moto.core.responses.method_names_from_class(clazz) from moto.core.utils",
    )
    _PATCHER.expect(
        source_digest(original_names) == _METHOD_NAMES_SHA256,
        "method_names_from_class is no longer inspect.getmembers(clazz, inspect.isfunction)",
    )
    call_action = concurrency.original_call_action() or BaseResponse.call_action
    _PATCHER.expect(
        source_digest(call_action) == _CALL_ACTION_SHA256,
        "BaseResponse.call_action changed (it only tested `action in method_names`)",
    )


def _function_names(original: Any) -> Any:
    def method_names_from_class(clazz: object) -> FunctionNames:
        return FunctionNames(clazz)

    return method_names_from_class


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        _PATCHER.wrap(
            importlib.import_module("moto.core.responses"), "method_names_from_class", _function_names
        )
