"""Reading template text safely, as CloudFormation does: JSON, or YAML with CloudFormation's short tags only.

moto parses templates with ``yaml.load(..., Loader=yaml.Loader)``, PyYAML's *unsafe* loader, in four
places (``Stack.parse_template``, ``ChangeSet._parse_template``, GetTemplateSummary and ValidateTemplate),
after registering its tag constructor on that loader process-wide. A template carrying
``!!python/object/apply:os.system [...]`` would run that command inside the local AWS. :func:`install`
gives those moto modules a ``yaml`` whose ``load`` is :func:`load_template` whatever loader they ask for
(and whose ``add_multi_constructor`` does nothing), so no template is ever read by an unsafe loader.

:func:`load_template` is a ``SafeLoader`` that knows CloudFormation's short forms (``!Ref``, ``!GetAtt``,
``!Sub`` over a string, a list or a mapping, ``!Condition``, ...), reads ``!GetAtt A.B`` as ``[A, B]`` and
timestamps as text (``AWSTemplateFormatVersion: 2010-09-09`` stays the string CloudFormation sees), and
refuses a document whose aliases expand past :data:`MAX_EXPANDED_VALUES` values.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from chalicelib.domain.templates import short_form
from localaws.cloudformation.state import _validation_error

MAX_EXPANDED_VALUES = 200_000  # far above any real template; a "billion laughs" document goes past it


class _CloudFormationLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's short-form tags; timestamps stay text."""


_CloudFormationLoader.add_multi_constructor("!", short_form)  # the service reads short tags the same way
_CloudFormationLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)


def _expanded_size(document: Any) -> int:
    """How many values ``document`` holds once its shared parts (YAML aliases) are written out."""
    sizes: dict[int, int] = {}
    pending: list[tuple[Any, bool]] = [(document, False)]
    while pending:
        value, ready = pending.pop()
        if not isinstance(value, dict | list) or id(value) in sizes:
            continue
        children = [
            c for c in (value.values() if isinstance(value, dict) else value) if isinstance(c, dict | list)
        ]
        if ready:
            scalars = (
                (len(value) - len(children)) if isinstance(value, list) else len(value) * 2 - len(children)
            )
            sizes[id(value)] = 1 + scalars + sum(sizes.get(id(c), 0) for c in children)
            if sizes[id(value)] > MAX_EXPANDED_VALUES:
                return sizes[id(value)]
            continue
        pending.append((value, True))
        pending.extend((child, False) for child in children if id(child) not in sizes)
    return sizes.get(id(document), 1)


def load_template(text: Any) -> Any:
    """The template ``text`` as Python values: JSON first, then CloudFormation YAML, never unsafe."""
    if isinstance(text, dict | list):
        return text
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if str(text).lstrip().startswith("{"):
            raise _validation_error(
                f"Template format error: JSON not well-formed. (line {error.lineno}, column {error.colno})"
            ) from None
    except (ValueError, TypeError, RecursionError):
        pass
    try:
        document = yaml.load(text, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise _validation_error(f"Template format error: YAML not well-formed.{where}") from None
    except RecursionError:
        raise _validation_error("Template format error: the template nests too deeply") from None
    if _expanded_size(document) > MAX_EXPANDED_VALUES:
        raise _validation_error(
            f"Template format error: the YAML expands to more than {MAX_EXPANDED_VALUES:,} values through "
            "its aliases"
        )
    return document


def mapping_items(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) of every mapping inside ``value``, depth first, without recursion."""
    pending: list[Any] = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, list):
            pending.extend(current)
        elif isinstance(current, Mapping):
            for key, item in current.items():
                yield key, item
                pending.append(item)


def _load(stream: Any, Loader: Any = None) -> Any:
    return load_template(stream)


def _no_constructor(*args: Any, **kwargs: Any) -> None:
    """moto registers its tag constructor on yaml.Loader before each parse: not any more."""


def safe_yaml() -> types.SimpleNamespace:
    """A stand-in for the ``yaml`` module in moto's CloudFormation modules: every load is safe."""
    return types.SimpleNamespace(
        load=_load,
        safe_load=_load,
        add_multi_constructor=_no_constructor,
        add_constructor=_no_constructor,
        Loader=_CloudFormationLoader,
        SafeLoader=_CloudFormationLoader,
        FullLoader=_CloudFormationLoader,
        SequenceNode=yaml.SequenceNode,
        MappingNode=yaml.MappingNode,
        ScalarNode=yaml.ScalarNode,
        YAMLError=yaml.YAMLError,
        dump=yaml.safe_dump,
        safe_dump=yaml.safe_dump,
    )


MOTO_MODULES_USING_YAML = (
    "moto.cloudformation.models",
    "moto.cloudformation.responses",
    "moto.cloudformation.utils",
)


def install() -> list[str]:
    """Replace ``yaml`` in moto's CloudFormation modules; returns what was missing (empty when done)."""
    import importlib

    problems = []
    shim = safe_yaml()
    for name in MOTO_MODULES_USING_YAML:
        module = importlib.import_module(name)
        if not hasattr(module, "yaml"):
            problems.append(f"{name} no longer imports yaml")
            continue
        module.yaml = shim  # type: ignore[attr-defined]
    return problems
