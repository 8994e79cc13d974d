"""Following what runs, live: a deployment's events with a progress bar (``Follower``) and a rollout's
waves and items (``watch_rollout``), which checks the canary as it goes."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from localaws.demo.base import ITEM_ENDED, ROLLOUT_ENDED, SETTLED, expect
from localaws.demo.clients import Api
from localaws.demo.printing import format_event

# -- following a deployment -------------------------------------------------------------------------


@dataclass
class Follower:
    """Prints a deployment's new events as they arrive, with a progress bar, until it settles."""

    api: Api
    console: Console
    seen: set[tuple[str, ...]] = field(default_factory=set)

    def new_events(self, deployment_id: str) -> list[dict[str, str]]:
        events: list[dict[str, str]] = []
        token: str | None = None
        while True:
            query = "?limit=100" + (f"&next_token={urllib.parse.quote(token)}" if token else "")
            page = self.api.ok("GET", f"/deployments/{deployment_id}/events{query}", status=200)
            events.extend(page["items"])
            token = page["next_token"]
            if not token:
                break
        fresh = []
        for event in events:
            key = tuple(str(event[k]) for k in ("timestamp", "source", "status", "resource", "message"))
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(event)
        return fresh

    def follow(self, deployment_id: str, label: str, steps: int, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        done: set[str] = set()
        columns = (SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console) as progress:
            bar = progress.add_task(label, total=steps)
            while True:
                deployment = self.api.ok("GET", f"/deployments/{deployment_id}", status=200)
                for event in self.new_events(deployment_id):
                    progress.console.print(format_event(event), no_wrap=True, overflow="ellipsis")
                    if event["source"] == "stack" and event["status"].endswith(("_COMPLETE", "_FAILED")):
                        done.add(event["resource"])
                settled = deployment["operation"]["status"] in SETTLED
                progress.update(bar, completed=steps if settled else min(len(done), steps - 1))
                if settled:
                    return dict(deployment)
                expect(time.monotonic() < deadline, f"{label}: no result after {timeout:.0f} s")
                time.sleep(0.25)


def watch_rollout(
    console: Console, api: Api, rollout: Mapping[str, Any], timeout: float = 90.0
) -> dict[str, Any]:
    """Print each wave's and item's status as it changes, until the rollout ends.

    Checks the canary as it goes: no item of a later wave may leave PENDING before the canary ended.
    """
    started = time.monotonic()
    deadline = started + timeout
    seen: dict[str, str] = {}
    current: dict[str, Any] = dict(rollout)
    while True:
        clock = f"{time.monotonic() - started:5.1f} s"
        for wave in current["waves"]:
            key, status = f"wave {wave['index']}", wave["status"]
            items = [i for i in current["items"] if i["wave"] == wave["index"]]
            moved = [i for i in items if seen.get(f"item {i['item_id']}", "PENDING") != i["status"]]
            if key not in seen and (status != "PENDING" or moved):
                console.print(f"  {clock}  wave {wave['name']:<6} started")
                seen[key] = "IN_PROGRESS"
            for item in moved:
                seen[f"item {item['item_id']}"] = item["status"]
                console.print(f"  {clock}    {item['account_id']}/{item['region']}  {item['status']}")
            if status not in ("PENDING", "IN_PROGRESS") and seen.get(key) != status:
                console.print(f"  {clock}  wave {wave['name']:<6} {status}")
                seen[key] = status
        canary = [i for i in current["items"] if i["wave"] == 0]
        later = [i for i in current["items"] if i["wave"] > 0]
        expect(
            all(i["status"] in ITEM_ENDED for i in canary) or all(i["status"] == "PENDING" for i in later),
            f"a later wave started before the canary ended: {current['items']}",
        )
        if current["status"] in ROLLOUT_ENDED:
            console.print(f"  {clock}  rollout {current['status']}")
            return current
        expect(time.monotonic() < deadline, f"the rollout is still {current['status']} after {timeout:.0f} s")
        time.sleep(0.25)
        current = api.ok("GET", f"/rollouts/{rollout['rollout_id']}", status=200)
