"""Outputs and exports: resolved once when an operation ends, exports registered per stack."""

from __future__ import annotations

import json
from typing import Any

from localaws.cloudformation.resources import _describe, _is_emulated, _OutputFailure
from localaws.cloudformation.state import _ORIGINALS, _moto
from localaws.cloudformation.timeline import _Op


def _validate_outputs(self: Any) -> None:
    """``ResourceMap.validate_outputs`` that ignores outputs on types moto does not know.

    moto's version crashes with AttributeError on ``Fn::GetAtt`` of an unknown type; the resource itself
    fails (or is skipped) when the stack is created, which is where AWS-like reporting happens.
    """
    template = self._template
    outputs = template.get("Outputs") or {}
    kept = {}
    for key, output in outputs.items():
        target = (output or {}).get("Value") if isinstance(output, dict) else None
        get_att = target.get("Fn::GetAtt") if isinstance(target, dict) else None
        if isinstance(get_att, str):
            get_att = get_att.split(".", 1)
        if isinstance(get_att, list) and get_att:
            resource = self._resource_json_map.get(get_att[0])
            if not isinstance(resource, dict) or not _is_emulated(str(resource.get("Type"))):
                continue
        kept[key] = output
    self._template = {**template, "Outputs": kept}
    try:
        _ORIGINALS["validate_outputs"](self)
    finally:
        self._template = template


def _mentions(value: Any, names: set[str]) -> bool:
    text = json.dumps(value, default=str)
    return any(f'"{name}"' in text or f'"{name}.' in text for name in names)


def _as_output_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _compute_outputs(stack: Any, op: _Op) -> tuple[list[dict[str, Any]], list[Any]]:
    """Resolve outputs and exports now, once (moto resolves them lazily and can re-create resources)."""
    m = _moto()
    rm = stack.resource_map
    declared = stack.template_dict.get("Outputs") or {}
    outputs: list[dict[str, Any]] = []
    exports: list[Any] = []
    for key, output_json in declared.items():
        try:
            output = stack.output_map[key]
            export_json = (output_json or {}).get("Export")
            export_name = m.parsing.clean_json(export_json.get("Name"), rm) if export_json else None
        except Exception as exc:
            if op.skipped and _mentions(output_json, op.skipped):
                continue  # refers to a skipped resource: already reported by its WARNING event
            raise _OutputFailure(f"Output {key} could not be resolved: {_describe(exc)}") from exc
        if output is None:
            continue
        if output.value is None and op.skipped and _mentions(output_json, op.skipped):
            continue
        entry: dict[str, Any] = {"OutputKey": key, "OutputValue": _as_output_value(output.value)}
        if output.description:
            entry["Description"] = output.description
        if export_name:
            entry["ExportName"] = str(export_name)
            exports.append(m.parsing.Export(stack.stack_id, str(export_name), entry["OutputValue"]))
        outputs.append(entry)
    return outputs, exports


def _register_exports(backend: Any, stack: Any, exports: list[Any]) -> None:
    """Replace ``stack``'s exports in the backend; raise _OutputFailure on a name clash (as AWS fails)."""
    for export in exports:
        existing = backend.exports.get(export.name)
        if existing is not None and existing.exporting_stack_id != stack.stack_id:
            raise _OutputFailure(
                f"Export with name {export.name} is already exported by stack {existing.exporting_stack_id}"
            )
    _drop_exports(backend, stack)
    for export in exports:
        backend.exports[export.name] = export
    stack.__dict__["_nexus_exports"] = list(exports)


def _drop_exports(backend: Any, stack: Any) -> None:
    for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
        backend.exports.pop(name, None)
    stack.__dict__["_nexus_exports"] = []


def _exports_get(self: Any) -> list[Any]:
    if "_nexus_exports" in self.__dict__:
        exports: list[Any] = list(self.__dict__["_nexus_exports"])
        return exports
    original: list[Any] = _ORIGINALS["Stack.exports"].fget(self)
    return original
