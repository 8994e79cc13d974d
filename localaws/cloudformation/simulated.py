"""Resources of types moto does not emulate, simulated (``NEXUS_LOCAL_UNSUPPORTED=simulate``).

A simulated resource is checked against its type's provider schema like any other (:mod:`.properties`),
gets a physical ID in the shape AWS gives that type (a generated name, or an ARN when the type is
identified by one), answers ``Ref`` with it and ``Fn::GetAtt`` with plausible values for the type's
read-only properties (``Arn``, ``...Id``, ``...Url``, ``DomainName``, ...), and is replaced and deleted
like any other resource. Nothing exists behind it: every event about it says so
(:func:`event_note`), so a stack that reached ``CREATE_COMPLETE`` this way is never mistaken for one
that really works.
"""

from __future__ import annotations

import copy
import random
import string
from typing import Any

from localaws.cloudformation.schemas import TypeSchema, type_schema

SIMULATED_NOTE = (
    "SIMULATED by the local AWS (NEXUS_LOCAL_UNSUPPORTED=simulate): {type} is not emulated, so no real "
    "resource exists"
)
_FREE_ATTRIBUTES = ("Custom::", "AWS::CloudFormation::CustomResource")  # any attribute name is valid


def _suffix(length: int = 13) -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=length))


def _service(resource_type: str) -> str:
    parts = resource_type.split("::")
    return parts[1].lower() if len(parts) > 2 else "custom"


class SimulatedResource:
    """Stands in for a moto model: ``physical_resource_id``, ``get_cfn_attribute``, ``delete``."""

    def __init__(
        self,
        logical_id: str,
        resource_type: str,
        properties: dict[str, Any],
        stack_name: str,
        account_id: str,
        region_name: str,
    ) -> None:
        self.logical_resource_id = logical_id
        self.cf_resource_type = resource_type
        self.properties = properties
        self.account_id = account_id
        self.region_name = region_name
        self.schema: TypeSchema | None = type_schema(resource_type, region_name)
        self.physical_resource_id = self._physical_id(stack_name)
        self.attributes: dict[str, str] = {}

    def _physical_id(self, stack_name: str) -> str:
        generated = f"{stack_name}-{self.logical_resource_id}-{_suffix()}"
        identifiers = self.schema.primary_identifier if self.schema else ()
        if len(identifiers) == 1 and len(identifiers[0]) == 1:
            name = identifiers[0][0]
            given = self.properties.get(name)
            if isinstance(given, str | int) and not isinstance(given, bool):
                return str(given)
            if name.endswith("Arn") or name.endswith("ARN"):
                return self.arn(generated)
            if name.endswith("Id") and name != "Id" and len(name) > 2:
                return f"{_service(self.cf_resource_type)[:4]}-{_suffix(17).lower()}"
        return generated

    def arn(self, resource: str) -> str:
        kind = self.cf_resource_type.split("::")[-1].lower()
        return f"arn:aws:{_service(self.cf_resource_type)}:{self.region_name}:{self.account_id}:{kind}/{resource}"

    def attribute_names(self) -> list[str]:
        return [".".join(path) for path in (self.schema.read_only if self.schema else ())]

    def get_cfn_attribute(self, name: str) -> Any:
        if name in self.attributes:
            return self.attributes[name]
        if name not in self.attribute_names() and not self.cf_resource_type.startswith(_FREE_ATTRIBUTES):
            if name in self.properties:
                return self.properties[name]
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            raise UnformattedGetAttTemplateException()
        value = self._plausible(name)
        self.attributes[name] = value
        return value

    def _plausible(self, name: str) -> str:
        last = name.split(".")[-1]
        physical = self.physical_resource_id
        host = (
            f"{physical.lower().replace(':', '-').replace('/', '-')[-40:]}.{_service(self.cf_resource_type)}"
        )
        if last.endswith(("Arn", "ARN")):
            return physical if physical.startswith("arn:") else self.arn(physical)
        if last in ("Id", "Name") or (
            self.schema and name in {".".join(p) for p in self.schema.primary_identifier}
        ):
            return physical
        if last.endswith(("Url", "URL", "Uri")):
            return f"https://{host}.{self.region_name}.amazonaws.com"
        if last.endswith(("DomainName", "Endpoint", "Address", "DnsName", "DNSName", "Host")):
            return f"{host}.{self.region_name}.amazonaws.com"
        if last.endswith("Port"):
            return "443"
        if last.endswith("Id"):
            return f"{last[:-2].lower()[:8] or 'id'}-{_suffix(17).lower()}"
        return f"{physical}-{last}"

    def is_created(self) -> bool:
        return True

    def delete(self, account_id: str, region: str) -> None:
        """Nothing exists behind a simulated resource: deleting it always succeeds."""

    def replaced(self, properties: dict[str, Any], stack_name: str) -> SimulatedResource:
        """The new physical resource a replacing update creates."""
        return SimulatedResource(
            self.logical_resource_id,
            self.cf_resource_type,
            properties,
            stack_name,
            self.account_id,
            self.region_name,
        )

    def updated(self, properties: dict[str, Any]) -> SimulatedResource:
        """The same physical resource with new properties (an update in place)."""
        clone = copy.copy(self)
        clone.properties = properties
        return clone


def create(logical_id: str, resource_json: dict[str, Any], resources_map: Any) -> SimulatedResource:
    """A simulated resource for ``resource_json``, its properties resolved by moto's intrinsic functions."""
    from moto.cloudformation.parsing import clean_json

    properties = clean_json(copy.deepcopy(resource_json.get("Properties") or {}), resources_map)
    return SimulatedResource(
        logical_id,
        str(resource_json.get("Type")),
        properties if isinstance(properties, dict) else {},
        str(resources_map["AWS::StackName"]),
        resources_map._account_id,
        resources_map._region_name,
    )


def resolve_properties(resource_json: dict[str, Any], resources_map: Any) -> dict[str, Any]:
    from moto.cloudformation.parsing import clean_json

    properties = clean_json(copy.deepcopy(resource_json.get("Properties") or {}), resources_map)
    return properties if isinstance(properties, dict) else {}


def simulated_ids(resources_map: Any) -> set[tuple[str, str]]:
    """(logical id, type) of the stack's resources that are (or were) simulated: their events say so."""
    ids: set[tuple[str, str]] = resources_map.__dict__.setdefault("_nexus_simulated", set())
    return ids


def is_simulated(resource: Any) -> bool:
    return isinstance(resource, SimulatedResource)


def event_note(resource_type: str, reason: str | None) -> str:
    """The reason of an event about a simulated resource: always says it is simulated."""
    note = SIMULATED_NOTE.format(type=resource_type)
    return f"{reason} ({note})" if reason else note
