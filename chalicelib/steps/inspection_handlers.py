"""The InspectTarget function: parse the request, one TargetInspection call, return its JSON answer."""

from __future__ import annotations

from typing import Any

from chalicelib.composition import Services
from chalicelib.service.inspection import InspectRequest


def inspect_target(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    return services.inspection.handle(InspectRequest.from_event(event))
