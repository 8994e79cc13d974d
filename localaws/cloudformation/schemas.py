"""CloudFormation resource provider schemas, read from the installed cfn-lint (never copied by hand).

cfn-lint ships the registry's schemas: ``cfnlint/data/schemas/providers/<region>.json`` maps each
resource type the region has to a schema file in ``resources/``, which holds the type's ``properties``,
``additionalProperties``, ``required``, ``createOnlyProperties``, ``readOnlyProperties`` and handler
permissions. The local AWS uses them as CloudFormation does:

* the region's type list decides which ``Type`` a template may use (:mod:`.checks`);
* ``properties`` validate a resource's properties when its handler would (:meth:`TypeSchema.violations`),
  with the messages of the registry's JSON-schema validator (``#: extraneous key [X] is not permitted``);
* ``createOnlyProperties`` decide replacement (:mod:`.replacement`, :mod:`.diff`);
* ``readOnlyProperties`` are the ``Fn::GetAtt`` attributes a simulated resource answers (:mod:`.simulated`).

Values that are intrinsic functions (``Ref``, ``Fn::*``) are unknown until the stack runs: they satisfy
any type, and only literal values are checked.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_REGION = "us-east-1"  # regions cfn-lint has no list for are read as this one

_LOCK = threading.Lock()
_CACHE: dict[str, Any] = {}  # "dir", "providers:<region>", "schema:<file>": read once per process


class Unknown:
    """A value only known while the stack runs (an intrinsic function): it satisfies any type."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown()


def schema_directory() -> Path:
    """cfn-lint's schema directory, found without importing cfn-lint (which imports much more)."""
    with _LOCK:
        if "dir" not in _CACHE:
            import importlib.util

            spec = importlib.util.find_spec("cfnlint")
            if spec is None or spec.origin is None:
                raise RuntimeError(
                    "cfn-lint is not installed: the local AWS reads its resource provider schemas"
                )
            _CACHE["dir"] = Path(spec.origin).parent / "data" / "schemas"
        directory: Path = _CACHE["dir"]
        return directory


def region_types(region: str) -> Mapping[str, str]:
    """The resource types ``region`` has (type name -> schema file name)."""
    key = f"providers:{region}"
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is None:
        path = schema_directory() / "providers" / f"{region}.json"
        if not path.exists():
            path = schema_directory() / "providers" / f"{DEFAULT_REGION}.json"
        cached = json.loads(path.read_text(encoding="utf-8"))
        with _LOCK:
            _CACHE[key] = cached
    types: Mapping[str, str] = cached
    return types


def type_schema(resource_type: str, region: str) -> TypeSchema | None:
    """The schema of ``resource_type`` in ``region``, or None when the region has no such type."""
    name = region_types(region).get(resource_type)
    if name is None:
        return None
    key = f"schema:{name}"
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is None:
        raw = json.loads((schema_directory() / "resources" / f"{name}.json").read_text(encoding="utf-8"))
        cached = TypeSchema(resource_type, raw)
        with _LOCK:
            _CACHE[key] = cached
    schema: TypeSchema = cached
    return schema


def _paths(raw: Mapping[str, Any], key: str) -> tuple[tuple[str, ...], ...]:
    """``["/properties/A", "/properties/B/C"]`` -> ``(("A",), ("B", "C"))``."""
    found = []
    for pointer in raw.get(key) or ():
        parts = str(pointer).split("/")
        if len(parts) >= 3 and parts[1] == "properties":
            found.append(tuple(parts[2:]))
    return tuple(found)


@dataclass(frozen=True)
class TypeSchema:
    """One resource type's provider schema."""

    type_name: str
    raw: Mapping[str, Any]

    @property
    def create_only(self) -> tuple[tuple[str, ...], ...]:
        """Property paths whose change replaces the resource (``*`` stands for every item of a list)."""
        return _paths(self.raw, "createOnlyProperties")

    @property
    def read_only(self) -> tuple[tuple[str, ...], ...]:
        """Property paths the resource reports (its ``Fn::GetAtt`` attributes)."""
        return _paths(self.raw, "readOnlyProperties")

    @property
    def primary_identifier(self) -> tuple[tuple[str, ...], ...]:
        return _paths(self.raw, "primaryIdentifier")

    def handler_permissions(self, handler: str) -> frozenset[str]:
        """The permissions the type's ``handler`` (create, read, update, delete, list) declares."""
        declared = ((self.raw.get("handlers") or {}).get(handler) or {}).get("permissions") or []
        return frozenset(str(permission) for permission in declared)

    def violations(self, properties: Any) -> list[str]:
        """What the type's handler would refuse in ``properties``, in the registry validator's words.

        Checked: unknown keys where the schema forbids them, value types (CloudFormation converts text to
        numbers and booleans, and scalars to text, so only values that cannot convert fail) and required
        keys. Constraints cfn-lint's copies may tighten beyond the service's (patterns, lengths, enums,
        oneOf/anyOf) are left to the service itself.
        """
        writable = dict(self.raw)
        read_only = {path[0] for path in self.read_only if len(path) == 1}
        return list(_Validator(writable, read_only).check(properties, writable, "#"))


_TYPE_NAMES = {
    "string": "String",
    "integer": "Integer",
    "number": "Number",
    "boolean": "Boolean",
    "object": "JSONObject",
    "array": "JSONArray",
    "null": "null",
}
_INTEGER_TEXT = re.compile(r"^[-+]?\d+$")
_NUMBER_TEXT = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def _found(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "BigDecimal"
    if isinstance(value, str):
        return "String"
    if isinstance(value, dict):
        return "JSONObject"
    if isinstance(value, list):
        return "JSONArray"
    return "null"


def _is_type(value: Any, kind: str) -> bool:
    """CloudFormation's lenient reading of a template value as a schema type."""
    if isinstance(value, Unknown):
        return True
    if kind == "string":
        return isinstance(value, str | int | float | bool)
    if kind == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, str) and bool(_INTEGER_TEXT.match(value.strip()))
    if kind == "number":
        if isinstance(value, bool):
            return False
        return isinstance(value, int | float) or (
            isinstance(value, str) and bool(_NUMBER_TEXT.match(value.strip()))
        )
    if kind == "boolean":
        return isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false"))
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "null":
        return value is None
    return True


class _Validator:
    """A small JSON-schema walk over the keywords CloudFormation's handlers are strict about."""

    def __init__(self, root: Mapping[str, Any], root_read_only: set[str]) -> None:
        self.root = root
        self.root_read_only = root_read_only

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while isinstance(schema, Mapping) and "$ref" in schema and seen < 32:
            ref = str(schema["$ref"])
            if not ref.startswith("#/"):
                return {}
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, Mapping) else None
            if not isinstance(target, Mapping):
                return {}
            merged = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **merged}
            seen += 1
        return schema

    def check(self, value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
        schema = self.resolve(schema)
        if isinstance(value, Unknown) or not isinstance(schema, Mapping):
            return
        kinds = schema.get("type")
        if kinds is not None:
            names = [kinds] if isinstance(kinds, str) else list(kinds)
            if names and not any(_is_type(value, str(kind)) for kind in names):
                expected = ", ".join(_TYPE_NAMES.get(str(kind), str(kind)) for kind in names)
                label = "expected type" if len(names) == 1 else "expected type is one of"
                yield f"{path}: {label}: {expected}, found: {_found(value)}"
                return
        for part in schema.get("allOf") or ():
            if isinstance(part, Mapping):
                yield from self.check(value, part, path)
        if isinstance(value, dict):
            yield from self.check_object(value, schema, path)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, Mapping):
                for index, item in enumerate(value):
                    yield from self.check(item, items, f"{path}/{index}")

    def check_object(self, value: dict[str, Any], schema: Mapping[str, Any], path: str) -> Iterator[str]:
        declared = schema.get("properties") or {}
        patterns = schema.get("patternProperties") or {}
        if not declared and not patterns and "additionalProperties" not in schema:
            return  # a free-form object (a policy document, a map of tags)
        for key in schema.get("required") or ():
            if key not in value and not (path == "#" and key in self.root_read_only):
                yield f"{path}: required key [{key}] not found"
        additional = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in declared:
                if path == "#" and key in self.root_read_only:
                    yield f"{path}: extraneous key [{key}] is not permitted"
                    continue
                yield from self.check(item, declared[key], f"{path}/{key}")
                continue
            matched = False
            for pattern, sub in patterns.items():
                try:
                    hit = re.search(str(pattern), key) is not None
                except re.error:
                    hit = True  # a pattern Python cannot read (Java syntax): do not refuse the key
                if hit:
                    matched = True
                    if isinstance(sub, Mapping):
                        yield from self.check(item, sub, f"{path}/{key}")
            if matched:
                continue
            if additional is False:
                yield f"{path}: extraneous key [{key}] is not permitted"
            elif isinstance(additional, Mapping):
                yield from self.check(item, additional, f"{path}/{key}")


def value_at(value: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` inside ``value`` (``*`` maps over a list); ``None`` when it is not there."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(value, list):
            return None
        return [value_at(item, rest) for item in value]
    if not isinstance(value, dict):
        return None
    return value_at(value[head], rest) if head in value else None
