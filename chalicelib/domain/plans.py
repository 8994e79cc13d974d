"""A plan: the change set computed for one deployment and kept, unexecuted, until it is applied.

Why a separate record: the plan must outlive the operation that made it (a reviewer may take days), and
``apply`` must execute exactly the change set that was reviewed, and only while the stack and the
requested configuration are still the ones it was computed from (``base_hash`` and ``config_hash``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IAM_PREFIX = "AWS::IAM::"


@dataclass(frozen=True)
class PlannedChange:
    action: str  # Add | Modify | Remove
    logical_id: str
    resource_type: str
    replacement: str | bool  # True | False | "Conditional" (AWS's three answers; Add/Remove: False)

    @property
    def iam(self) -> bool:
        return self.resource_type.startswith(IAM_PREFIX)

    def public(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "replacement": self.replacement,
            "iam": self.iam,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PlannedChange:
        replacement = raw.get("replacement", False)
        return cls(
            action=str(raw["action"]),
            logical_id=str(raw["logical_id"]),
            resource_type=str(raw["resource_type"]),
            replacement=replacement if isinstance(replacement, bool) else str(replacement),
        )


def replacement_of(aws_value: str | None) -> str | bool:
    """CloudFormation's ``Replacement`` ("True" | "False" | "Conditional" | absent) as the API shows it."""
    if aws_value == "True":
        return True
    if aws_value == "Conditional":
        return "Conditional"
    return False


@dataclass(frozen=True)
class Plan:
    operation_id: str
    action: str  # create | update: what applying it does to the stack
    change_set_name: str
    config_hash: str  # the configuration the plan deploys
    base_hash: str | None  # the deployment's last_success_hash when the plan was made
    created_at: str
    changes: tuple[PlannedChange, ...] = ()

    def public(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "action": self.action,
            "change_set_name": self.change_set_name,
            "config_hash": self.config_hash,
            "created_at": self.created_at,
            "changes": [c.public() for c in self.changes],
            "replacements": sum(1 for c in self.changes if c.replacement is not False),
            "iam_changes": sum(1 for c in self.changes if c.iam),
        }

    def as_item(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "action": self.action,
            "change_set_name": self.change_set_name,
            "config_hash": self.config_hash,
            "base_hash": self.base_hash,
            "created_at": self.created_at,
            "changes": [c.public() for c in self.changes],
        }

    @classmethod
    def from_item(cls, raw: dict[str, Any]) -> Plan:
        base = raw.get("base_hash")
        return cls(
            operation_id=str(raw["operation_id"]),
            action=str(raw["action"]),
            change_set_name=str(raw["change_set_name"]),
            config_hash=str(raw["config_hash"]),
            base_hash=None if base is None else str(base),
            created_at=str(raw["created_at"]),
            changes=tuple(PlannedChange.from_dict(dict(c)) for c in raw.get("changes") or []),
        )
