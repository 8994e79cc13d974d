"""The "check moto's internals, then patch once" skeleton that every localaws module shares.

Each localaws module changes moto 5.2.5 in place, relying on internals moto does not promise to keep.
So each one first checks those internals and fails loudly (:class:`MotoInternalsChanged`, naming what
moved) instead of patching something that changed, and applies each patch once per process, marked so a
second ``install()`` is a no-op. This module holds that skeleton once:

* :class:`Patcher`: one module's checks (``expect``) and patches (``wrap`` an existing method, ``add`` an
  operation moto lacks), with its install lock and patch mark;
* :func:`missing_internals`: a table of ``(module, dotted name, parameter names)`` checked in one pass;
* :func:`source_digest` / :func:`params`: what a canary compares.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "MOTO_VERSION",
    "MotoInternalsChanged",
    "Patcher",
    "missing_internals",
    "params",
    "source",
    "source_digest",
]

#: The only moto version the localaws patches were written and verified against.
MOTO_VERSION = "5.2.5"


class MotoInternalsChanged(RuntimeError):
    """A moto internal a localaws patch relies on moved or changed: pin moto or update the patch."""


def params(func: object) -> list[str]:
    """The parameter names of ``func``, in order."""
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


_sources: dict[Any, str] = {}
_sources_lock = threading.Lock()


def source(obj: Any) -> str:
    """``inspect.getsource(obj)``, read once per object in a process: every ``install()`` checks moto's
    internals again (each ``LocalAws`` installs its patches), and reading and tokenizing moto's source
    files each time cost those checks 12 ms of CPU per ``LocalAws`` (0.7 ms with this). A patched or
    replaced attribute is another object, so it is read anew."""
    with _sources_lock:
        if obj not in _sources:
            _sources[obj] = inspect.getsource(obj)
        return _sources[obj]


def source_digest(function: Any) -> str:
    """SHA-256 of a function's source: a canary for a moto function that a patch reproduces or wraps."""
    return hashlib.sha256(source(function).encode()).hexdigest()


def missing_internals(
    required: Iterable[tuple[str, str, tuple[str, ...] | None]], originals: Mapping[str, Any] | None = None
) -> list[str]:
    """What moved among ``(module, dotted attribute, leading parameter names or None)`` entries.

    Attributes of classes are read statically (a staticmethod stays one); a patched function is checked
    through its ``__nexus_original__``; ``originals`` maps a dotted name to the original a patch replaced.
    """
    problems: list[str] = []
    for module_name, dotted, expected in required:
        try:
            obj: Any = importlib.import_module(module_name)
            for part in dotted.split("."):
                obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{module_name}.{dotted} is missing ({exc})")
            continue
        if expected is None:
            continue
        target = (originals or {}).get(dotted) or obj
        target = target.__func__ if isinstance(target, staticmethod | classmethod) else target
        target = getattr(target, "__nexus_original__", target)
        try:
            names = params(target)
        except (TypeError, ValueError) as exc:
            problems.append(f"{module_name}.{dotted} has no inspectable signature ({exc})")
            continue
        if names[: len(expected)] != list(expected):
            problems.append(
                f"{module_name}.{dotted} signature changed: expected {expected}, found {tuple(names)}"
            )
    return problems


class Patcher:
    """One localaws module's checks and patches: ``expect`` in ``check_moto_internals``, then ``wrap``/``add``
    under ``lock`` in ``install``. A patched attribute carries ``mark``, so patching twice does nothing."""

    def __init__(self, module: str) -> None:
        self.module = module  # "localaws.sts"
        self.mark = f"_{module.replace('.', '_')}_patched"
        self.lock = threading.Lock()

    def expect(self, condition: bool, what: str) -> None:
        """Raise :class:`MotoInternalsChanged` naming ``what`` unless ``condition`` holds."""
        if not condition:
            raise MotoInternalsChanged(
                f"{self.module}: moto internals changed ({what}). These patches were written for moto "
                f"{MOTO_VERSION}; re-check {self._source()} against the installed moto before using it."
            )

    def _source(self) -> str:
        """Where the patches live: the module's file, or its package's folder (``localaws/sts/``)."""
        path = self.module.replace(".", "/")
        return f"{path}/" if (Path(__file__).parent.parent / path).is_dir() else f"{path}.py"

    def expect_source(self, owner: type, name: str, sha256: str) -> Any:
        """``owner.name`` as moto has it (under a wrap of ours, if installed): present, and its source's
        SHA-256 ``sha256`` (the version a patch reproduces or wraps); raise :class:`MotoInternalsChanged`
        otherwise."""
        method = getattr(owner, name, None)
        original = getattr(method, "__wrapped__", method)
        where = f"{owner.__module__}.{owner.__qualname__}.{name}"
        self.expect(original is not None, f"{where} is missing")
        self.expect(source_digest(original) == sha256, f"{where} changed upstream")
        return original

    def is_ours(self, obj: object) -> bool:
        return bool(getattr(obj, self.mark, False))

    def wrap(self, owner: type | ModuleType, name: str, factory: Callable[[Any], Any]) -> None:
        """Replace ``owner.name`` (a class's attribute, or a module's function as that module calls it) by
        ``factory(current)``, once; the original stays as ``__wrapped__``."""
        current = inspect.getattr_static(owner, name)
        layer: Any = current
        while layer is not None:  # another module may have wrapped ours since: look down the chain
            if self.is_ours(layer):
                return
            layer = getattr(layer, "__wrapped__", None)
        replacement = factory(current)
        replacement.__name__ = name
        replacement.__qualname__ = f"{owner.__name__}.{name}"
        replacement.__wrapped__ = current  # keeps check_moto_internals() reading the original signature
        setattr(replacement, self.mark, True)
        setattr(owner, name, replacement)

    def add(self, owner: type, name: str, operation: Callable[..., Any]) -> None:
        """Give ``owner`` an operation moto lacks (``name``), once."""
        if self.is_ours(inspect.getattr_static(owner, name, None)):
            return
        setattr(operation, self.mark, True)
        setattr(owner, name, operation)

    def lacks(self, owner: type, name: str) -> bool:
        """True while moto has no ``owner.name`` of its own (absent, or the one this module added)."""
        current = inspect.getattr_static(owner, name, None)
        return current is None or self.is_ours(current)
