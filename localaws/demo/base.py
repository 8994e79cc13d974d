"""The demo's constants (where it runs, its accounts, the statuses it waits for) and its failure:
``DemoFailed``, raised by ``expect`` when a step does not behave."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HOST = "127.0.0.1"
REGION = "us-east-1"
TARGET_ACCOUNT = "111111111111"
MISCONFIGURED_ACCOUNT = "222222222222"
UPDATED_ACCOUNT = "333333333333"  # fleet: runs an older demo-fleet, so the rollout updates it (the canary)
NEW_ACCOUNT = "444444444444"  # fleet: no demo-fleet yet, so the rollout creates it
ROLE_NAME = "NexusDeploymentRole"
SETTLED = ("SUCCEEDED", "FAILED")
FLEET_STACK = "demo-fleet"
ITEM_ENDED = ("PLANNED", "SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")
ROLLOUT_ENDED = ("PLANNED", "PAUSED", "SUCCEEDED", "FAILED", "CANCELLED")
STOP_STEP = 13


class DemoFailed(Exception):
    """A step did not behave as the demo promises."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)
