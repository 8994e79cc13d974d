"""Comparing a stack with a new template and parameters: no-op updates, Add/Modify/Remove, Replacement."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from localaws.cloudformation.schemas import type_schema, value_at
from localaws.cloudformation.validation import _parse_template


def _effective_parameters(template_dict: Any, parameters: Mapping[str, Any] | None) -> dict[str, str]:
    """Declared parameters with their defaults, overridden by the given values, all as text."""

    def norm(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, default=str)

    declared = (template_dict or {}).get("Parameters") or {}
    defaults = {k: norm((v or {}).get("Default")) for k, v in declared.items()}
    return {**defaults, **{k: norm(v) for k, v in (parameters or {}).items()}}


def _pristine_template(stack: Any) -> dict[str, Any]:
    """The stack's template as submitted (moto mutates ``template_dict`` while creating resources)."""
    try:
        return _parse_template(stack.template)
    except Exception:  # noqa: BLE001 - fall back to moto's copy
        template: dict[str, Any] = stack.template_dict
        return template


def _noop(
    stack: Any, template_dict: Any, parameters: Mapping[str, Any], tags: Mapping[str, str] | None
) -> bool:
    """True when an update would change nothing (same template, effective parameters and tags)."""
    old_template = _pristine_template(stack)
    if old_template != template_dict:
        return False
    if _effective_parameters(old_template, stack.parameters) != _effective_parameters(
        template_dict, parameters
    ):
        return False
    return tags is None or dict(tags) == dict(stack.tags or {})


def _refers_to(value: Any, names: set[str]) -> bool:
    text = json.dumps(value, default=str)
    return any(f'"Ref": "{n}"' in text or "${" + n + "}" in text for n in names)


def _resource_diff(
    stack: Any, template_dict: dict[str, Any], parameters: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Add/Modify/Remove by logical id, comparing with the template as submitted (not moto's mutated copy)."""
    old_template = _pristine_template(stack)
    old = old_template.get("Resources") or {}
    new = template_dict.get("Resources") or {}
    before = _effective_parameters(old_template, stack.parameters)
    after = _effective_parameters(template_dict, parameters)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return {
        "Add": [n for n in new if n not in old],
        "Modify": [
            n for n in new if n in old and (new[n] != old[n] or (changed and _refers_to(new[n], changed)))
        ],
        "Remove": [n for n in old if n not in new],
    }


def _resolve_static(value: Any, parameters: Mapping[str, str], resources: set[str]) -> tuple[bool, Any]:
    """(known, value) with parameter Refs resolved; unknown when it depends on a resource or a function."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name in resources or name not in parameters:
                return False, value
            return True, parameters[name]
        if any(key.startswith("Fn::") for key in value):
            return False, value
        resolved = {}
        for key, item in value.items():
            known, resolved[key] = _resolve_static(item, parameters, resources)
            if not known:
                return False, value
        return True, resolved
    if isinstance(value, list):
        items = []
        for item in value:
            known, resolved_item = _resolve_static(item, parameters, resources)
            if not known:
                return False, value
            items.append(resolved_item)
        return True, items
    return True, value


def _replacement(
    old_json: Mapping[str, Any],
    new_json: Mapping[str, Any],
    before: Mapping[str, str],
    after: Mapping[str, str],
    resources: set[str],
    region: str,
) -> str:
    """AWS's ``Replacement`` for a modified resource: "True", "False" or "Conditional".

    A change to one of the type's ``createOnlyProperties`` (its provider schema) replaces the resource;
    when such a property depends on a value known only while the update runs, the answer is Conditional,
    as it is on AWS. A type without a schema is Conditional: the local AWS does not know.
    """
    resource_type = str(new_json.get("Type"))
    if resource_type != str(old_json.get("Type")):
        return "True"
    schema = type_schema(resource_type, region)
    if schema is None:
        return "Conditional"
    old_props = old_json.get("Properties") or {}
    new_props = new_json.get("Properties") or {}
    answer = "False"
    for path in schema.create_only:
        old_raw, new_raw = value_at(old_props, path), value_at(new_props, path)
        old_known, old_value = _resolve_static(old_raw, before, resources)
        new_known, new_value = _resolve_static(new_raw, after, resources)
        if old_known and new_known:
            if old_value != new_value:
                return "True"
        elif old_raw != new_raw:
            answer = "Conditional"  # depends on a value only known while the update runs
    return answer
