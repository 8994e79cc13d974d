"""Settings, process-wide state and typed access to moto shared by the CloudFormation patches."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: What the local AWS does with a resource type moto does not emulate (``NEXUS_LOCAL_UNSUPPORTED``):
#: ``fail`` it (CREATE_FAILED, as a stack needing it cannot be trusted locally), ``skip`` it (a WARNING
#: event, no resource), or ``simulate`` it (checked against its schema, given a physical ID and read-only
#: attributes, replaced and deleted like any other; every event says it is simulated).
UNSUPPORTED_MODES = ("fail", "skip", "simulate")


@dataclass(frozen=True)
class StackSimulation:
    """How the local CloudFormation simulates AWS timing and unsupported resources."""

    stack_seconds: float = 3.0  # how long create/update/delete stay *_IN_PROGRESS
    unsupported: str = "fail"  # NEXUS_LOCAL_UNSUPPORTED: one of UNSUPPORTED_MODES

    def __post_init__(self) -> None:
        if self.stack_seconds < 0:
            raise ValueError(f"stack_seconds must be >= 0, got {self.stack_seconds}")
        if self.unsupported not in UNSUPPORTED_MODES:
            raise ValueError(
                f"NEXUS_LOCAL_UNSUPPORTED must be one of {', '.join(UNSUPPORTED_MODES)}, got {self.unsupported!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> StackSimulation:
        """Read ``NEXUS_LOCAL_STACK_SECONDS`` (default 3) and ``NEXUS_LOCAL_UNSUPPORTED`` (default fail)."""
        raw_seconds = environ.get("NEXUS_LOCAL_STACK_SECONDS", "").strip()
        try:
            seconds = float(raw_seconds) if raw_seconds else cls.stack_seconds
        except ValueError:
            raise ValueError(
                f"NEXUS_LOCAL_STACK_SECONDS must be a number of seconds, got {raw_seconds!r}"
            ) from None
        if environ.get("NEXUS_LOCAL_SKIP_UNSUPPORTED", "").strip():
            raise ValueError(
                "NEXUS_LOCAL_SKIP_UNSUPPORTED was replaced by NEXUS_LOCAL_UNSUPPORTED=fail|skip|simulate"
            )
        mode = environ.get("NEXUS_LOCAL_UNSUPPORTED", "").strip().lower() or cls.unsupported
        return cls(stack_seconds=seconds, unsupported=mode)


_LOCK = threading.RLock()  # every patched operation that mutates CloudFormation state holds it


_LOCAL = threading.local()  # per-thread: current ClientRequestToken and the stack of running operations


_SETTINGS: dict[str, StackSimulation] = {"simulation": StackSimulation()}


_ORIGINALS: dict[str, Any] = {}


_TOKEN_PATTERN = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]{0,127}$")


_STACK_TYPE = "AWS::CloudFormation::Stack"


_NOT_UPDATABLE_STATES = frozenset(
    {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_COMPLETE"}
)


_NO_CHANGES_REASON = (
    "The submitted information didn't contain changes. Submit different information to create a change set."
)


def _moto() -> Any:
    """The moto modules this module uses, as one namespace."""
    import types

    from moto.cloudformation import custom_model, exceptions, models, parsing, responses
    from moto.core import utils as core_utils
    from moto.ec2 import models as ec2_models
    from moto.ec2.models import core as ec2_core
    from moto.iam import models as iam_models

    return types.SimpleNamespace(
        parsing=parsing,
        models=models,
        responses=responses,
        exceptions=exceptions,
        custom_model=custom_model,
        core_utils=core_utils,
        ec2_models=ec2_models,
        ec2_core=ec2_core,
        iam_models=iam_models,
    )


def _now() -> datetime:
    from moto.core.utils import utcnow

    now: datetime = utcnow()
    return now


def _validation_error(message: str) -> Exception:
    from moto.cloudformation.exceptions import ValidationError

    error: Exception = ValidationError(message=message)
    return error


_ERRORS: dict[str, type[Exception]] = {}
