"""Replacement: an update that changes a create-only property makes a new physical resource.

As on AWS, when a property in the type's ``createOnlyProperties`` (its provider schema) changes, the
update creates a new physical resource with the new properties, points the stack at it, and deletes the
old one only once the whole update has succeeded, in ``UPDATE_COMPLETE_CLEANUP_IN_PROGRESS``. The events
are AWS's::

    UPDATE_IN_PROGRESS  Queue  <old>  Requested update requires the creation of a new physical resource; hence creating one.
    UPDATE_IN_PROGRESS  Queue  <new>  Resource creation Initiated
    UPDATE_COMPLETE     Queue  <new>
    ... UPDATE_COMPLETE_CLEANUP_IN_PROGRESS (stack)
    DELETE_IN_PROGRESS  Queue  <old>
    DELETE_COMPLETE     Queue  <old>

If the update fails, the rollback deletes the new resources and the stack keeps the old ones. A resource
whose custom name stays the same cannot be replaced (the new one would need that name): it fails with
AWS's ``CloudFormation cannot update a stack when a custom-named resource requires replacing``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from localaws.cloudformation import simulated
from localaws.cloudformation.diff import _refers_to, _replacement, _resolve_static
from localaws.cloudformation.handlers import handling
from localaws.cloudformation.properties import property_failure, resolved_parameters
from localaws.cloudformation.resources import (
    _describe,
    _physical_id,
    _properties,
    _ResourceFailure,
    _update_modified,
)
from localaws.cloudformation.schemas import type_schema, value_at
from localaws.cloudformation.state import _ORIGINALS
from localaws.cloudformation.timeline import _Op, _Step

REPLACING = "Requested update requires the creation of a new physical resource; hence creating one."
CREATING = "Resource creation Initiated"
CUSTOM_NAME = (
    "CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename {names} "
    "and update the stack again."
)


def needs_replacement(
    old_json: Mapping[str, Any],
    new_json: Mapping[str, Any],
    before: Mapping[str, str],
    after: Mapping[str, str],
    resources: set[str],
    replaced: set[str],
    region: str,
) -> bool:
    """True when the update of this resource replaces it (decided when its turn comes in the update)."""
    answer = _replacement(old_json, new_json, before, after, resources, region)
    if answer != "Conditional":
        return answer == "True"
    schema = type_schema(str(new_json.get("Type")), region)
    if schema is None:
        return False  # a type the local AWS knows nothing about is updated in place
    changed = {name for name in set(before) | set(after) if before.get(name) != after.get(name)}
    for path in schema.create_only:
        old_raw = value_at(old_json.get("Properties") or {}, path)
        new_raw = value_at(new_json.get("Properties") or {}, path)
        if old_raw != new_raw or _refers_to(new_raw, replaced | changed) or _names_get_att(new_raw, replaced):
            return True
    return False


def _names_get_att(value: Any, names: set[str]) -> bool:
    text = repr(value)
    return any(f"'Fn::GetAtt': ['{name}'" in text or "${" + name + "." in text for name in names)


def _custom_name_conflict(
    old_json: Mapping[str, Any], new_json: Mapping[str, Any], before: Mapping[str, str], after: Mapping[str, str],
    region: str,
) -> list[str]:  # fmt: skip
    """The custom names that would stay the same across a replacement (AWS refuses those)."""
    schema = type_schema(str(new_json.get("Type")), region)
    if schema is None:
        return []
    identifiers = {path[0] for path in schema.primary_identifier if len(path) == 1}
    names = []
    for path in schema.create_only:
        if len(path) != 1 or path[0] not in identifiers or not path[0].endswith("Name"):
            continue
        old_props, new_props = old_json.get("Properties") or {}, new_json.get("Properties") or {}
        if path[0] not in old_props or path[0] not in new_props:
            continue
        old_known, old_value = _resolve_static(old_props[path[0]], before, set())
        new_known, new_value = _resolve_static(new_props[path[0]], after, set())
        if old_known and new_known and old_value == new_value:
            names.append(str(new_value))
    return names


def replace(op: _Op, rm: Any, name: str, old_json: Mapping[str, Any], before: Mapping[str, str],
            after: Mapping[str, str]) -> Any:  # fmt: skip
    """Create the new physical resource for ``name``; the old one stays until the cleanup."""
    new_json: dict[str, Any] = rm._resource_json_map[name]
    resource_type = str(new_json.get("Type"))
    old = rm._parsed_resources.get(name)
    op.steps.append(
        _Step(name, _physical_id(old), resource_type, "UPDATE_IN_PROGRESS", REPLACING, _properties(new_json))
    )
    conflict = _custom_name_conflict(old_json, new_json, before, after, rm._region_name)
    failure = (
        CUSTOM_NAME.format(names=", ".join(conflict))
        if conflict
        else property_failure(name, new_json, resolved_parameters(rm), rm._region_name)
    )
    if failure is None:
        try:
            if simulated.is_simulated(old):
                new = old.replaced(simulated.resolve_properties(new_json, rm), str(rm["AWS::StackName"]))
            else:
                with handling(resource_type, "create", rm._account_id, rm._region_name):
                    new = _ORIGINALS["parse_and_create_resource"](
                        name, copy.deepcopy(new_json), rm, rm._account_id, rm._region_name
                    )
            if new is None:
                raise RuntimeError("moto returned no resource")
        except _ResourceFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as the resource's failure, as AWS would
            failure = _describe(exc)
    if failure is not None:
        op.steps.append(_Step(name, _physical_id(old), resource_type, "UPDATE_FAILED", failure))
        raise _ResourceFailure(name, resource_type, failure)
    op.replaced[name] = old
    rm._parsed_resources[name] = new
    op.steps.append(_Step(name, _physical_id(new), resource_type, "UPDATE_IN_PROGRESS", CREATING))
    op.steps.append(_Step(name, _physical_id(new), resource_type, "UPDATE_COMPLETE"))
    return new


def update_resources(
    op: _Op, rm: Any, names: list[str], old_resources: Mapping[str, Any], before: Mapping[str, str],
    after: Mapping[str, str], updated: list[str],
) -> None:  # fmt: skip
    """Add and update ``names`` in dependency order, replacing those whose create-only properties change.

    A name not in ``old_resources`` is added. ``updated`` receives the names updated in place as they are
    (what a rollback re-applies, also when a later resource fails); replaced ones are in ``op.replaced``,
    added ones in ``op.created``.
    """
    resources = set(rm._resource_json_map)
    for name in names:  # one at a time, so that ``updated`` is exact when one fails
        if name not in old_resources:
            _ = rm[name]  # created through the patched factory, which records it in op.created
            continue
        old_json, new_json = old_resources[name], rm._resource_json_map[name]
        if needs_replacement(old_json, new_json, before, after, resources, set(op.replaced), rm._region_name):
            replace(op, rm, name, old_json, before, after)
        else:
            updated += _update_modified(op, rm, [name])
