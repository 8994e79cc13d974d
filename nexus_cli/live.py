"""Following a deployment or a rollout as it runs: only new events, a live view, the final result.

Two loops, both over the public API only:

* ``follow_deployment``: ``GET /deployments/{id}`` for the operation's status, then the events that
  arrived since the last poll (``EventCursor``), until the operation leaves PENDING/IN_PROGRESS. The
  status is read before the events: the service writes an operation's last event before its final
  status, so once a settled status is seen, the events read after it are complete.
* ``follow_rollout``: ``GET /rollouts/{id}`` (every page of its items) until it leaves
  PENDING/IN_PROGRESS.

Views: on a terminal a ``rich`` live table (each resource's latest status and reason, or the rollout's
item grid), a progress bar and the elapsed time; otherwise (a pipe, a file, CI) one plain line per
change, so logs stay readable. ``--json`` shows no view: the command prints one document at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from nexus_cli.api import ApiClient

RUNNING = ("PENDING", "IN_PROGRESS")
POLL_SECONDS = 1.0
MAX_GRID_ROWS = 40


class WaitTimedOut(Exception):
    def __init__(self, last: dict[str, Any], seconds: float) -> None:
        super().__init__(f"still {last.get('status')} after {seconds:.0f} s")
        self.last, self.seconds = last, seconds


def status_style(status: str) -> str:
    if "FAILED" in status or "ROLLBACK" in status or status in ("CANCELLED", "PAUSED"):
        return "red" if status != "PAUSED" else "yellow"
    if status.endswith("COMPLETE") or status in ("SUCCEEDED", "ACTIVE", "DELETED", "PLANNED"):
        return "green"
    if status == "SKIPPED":
        return "yellow"
    return "cyan"


# -- deployments ----------------------------------------------------------------------------------------


class EventCursor:
    """The events of one deployment not yet returned, read with the events endpoint's ``next_token``.

    The API's last page carries no token, so the cursor keeps the last token it was given and how many
    items of the page after it were already returned: each poll rereads at most that one page (new
    events are appended after it), never the whole history.
    """

    def __init__(self, api: ApiClient, deployment_id: str, page_size: int = 100) -> None:
        self._api, self._path, self._page_size = api, f"/deployments/{deployment_id}/events", page_size
        self._token: str | None = None
        self._consumed = 0

    def fresh(self) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        while True:
            page = self._api.get(self._path, limit=self._page_size, next_token=self._token)
            items = list(page.get("items") or [])
            new.extend(items[self._consumed :])
            if page.get("next_token"):
                self._token, self._consumed = str(page["next_token"]), 0
                continue
            self._consumed = len(items)
            return new


@dataclass
class ResourceBoard:
    """Each resource's latest stack event, the first failed resource, and progress."""

    stack_name: str
    expected: int | None = None  # the template's resource count, when known
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    orchestrator: dict[str, Any] | None = None
    failed: dict[str, Any] | None = None

    def add(self, event: dict[str, Any]) -> None:
        if event.get("source") != "stack":
            self.orchestrator = event
            return
        if event.get("resource") == self.stack_name:
            return
        self.resources[str(event["resource"])] = event
        if self.failed is None and str(event.get("status", "")).endswith("_FAILED"):
            self.failed = event

    def progress(self) -> tuple[int, int]:
        done = sum(1 for e in self.resources.values() if not str(e["status"]).endswith("IN_PROGRESS"))
        return done, max(self.expected or 0, len(self.resources), 1)


class DeploymentView(Protocol):
    def event(self, event: dict[str, Any]) -> None: ...

    def tick(self, deployment: dict[str, Any]) -> None: ...


class PlainDeploymentView:
    """One line per event: elapsed time, progress, source, resource, status, message."""

    def __init__(self, console: Console, board: ResourceBoard) -> None:
        self._console, self._board, self._started = console, board, time.monotonic()

    def event(self, event: dict[str, Any]) -> None:
        done, total = self._board.progress()
        elapsed = time.monotonic() - self._started
        line = Text(f"[{elapsed:6.1f}s {done}/{total}] {event.get('source', ''):<12} ")
        line.append(f"{event.get('resource', ''):<16} ")
        status = str(event.get("status", ""))
        line.append(status, style=status_style(status))
        if event.get("message"):
            line.append(f"  {event['message']}", style="dim")
        self._console.print(line, soft_wrap=True)

    def tick(self, deployment: dict[str, Any]) -> None:
        return None


class LiveDeploymentView:
    """A live table of resources, the orchestrator's last step, a progress bar and the elapsed time."""

    def __init__(self, console: Console, board: ResourceBoard, title: str) -> None:
        self._console, self._board, self._title = console, board, title
        self._started = time.monotonic()
        self._status = "PENDING"

    def event(self, event: dict[str, Any]) -> None:
        return None  # the board has it; render() reads the board

    def tick(self, deployment: dict[str, Any]) -> None:
        self._status = str(deployment.get("operation", {}).get("status", self._status))

    def render(self) -> RenderableType:
        table = Table(title=self._title, title_justify="left", expand=False)
        table.add_column("Resource")
        table.add_column("Status")
        table.add_column("Reason", overflow="fold", max_width=80)
        for name, event in self._board.resources.items():
            status = str(event["status"])
            table.add_row(
                escape(name), Text(status, style=status_style(status)), Text(event.get("message", ""))
            )
        done, total = self._board.progress()
        if self._status not in RUNNING:
            done = total
        elapsed = time.monotonic() - self._started
        footer = Table.grid(padding=(0, 1))
        footer.add_row(
            ProgressBar(total=total, completed=done, width=40),
            Text(f"{done}/{total} resources"),
            Text(f"{int(elapsed // 60):02d}:{int(elapsed % 60):02d}", style="dim"),
            Text(self._status, style=status_style(self._status)),
        )
        last = self._board.orchestrator
        step = Text(f"{last.get('status')}: {last.get('message', '')}", style="dim") if last else Text("")
        return Group(table, footer, step)


@contextmanager
def deployment_view(
    console: Console, board: ResourceBoard, title: str, *, quiet: bool
) -> Iterator[DeploymentView | None]:
    if quiet:
        yield None
    elif console.is_terminal:
        view = LiveDeploymentView(console, board, title)
        with Live(console=console, get_renderable=view.render, refresh_per_second=8, transient=False):
            yield view
    else:
        yield PlainDeploymentView(console, board)


def follow_deployment(
    api: ApiClient,
    deployment_id: str,
    cursor: EventCursor,
    board: ResourceBoard,
    view: DeploymentView | None,
    *,
    timeout: float,
    poll: float = POLL_SECONDS,
) -> dict[str, Any]:
    """Poll until the current operation settles; each new event goes to the board, then the view."""
    deadline = time.monotonic() + timeout
    while True:
        deployment: dict[str, Any] = api.get(f"/deployments/{deployment_id}")
        settled = deployment["operation"]["status"] not in RUNNING
        for event in cursor.fresh():
            board.add(event)
            if view is not None:
                view.event(event)
        if view is not None:
            view.tick(deployment)
        if settled:
            return deployment
        if time.monotonic() > deadline:
            raise WaitTimedOut(deployment, timeout)
        time.sleep(poll)


# -- rollouts -----------------------------------------------------------------------------------------


def fetch_rollout(api: ApiClient, rollout_id: str, status: str | None = None) -> dict[str, Any]:
    """The rollout with every item (all pages), as one document."""
    first: dict[str, Any] = api.get(f"/rollouts/{rollout_id}", limit=1000, status=status)
    items = list(first.get("items") or [])
    token = first.get("next_token")
    while token:
        page = api.get(f"/rollouts/{rollout_id}", limit=1000, status=status, next_token=token)
        items.extend(page.get("items") or [])
        token = page.get("next_token")
    return {**first, "items": items, "next_token": None}


class RolloutView(Protocol):
    def update(self, rollout: dict[str, Any]) -> None: ...


class PlainRolloutView:
    """A line for each wave and item whose status changed since the last poll."""

    def __init__(self, console: Console) -> None:
        self._console, self._started = console, time.monotonic()
        self._seen: dict[str, str] = {}

    def update(self, rollout: dict[str, Any]) -> None:
        clock = f"[{time.monotonic() - self._started:6.1f}s]"
        names = {w["index"]: w["name"] for w in rollout.get("waves", [])}
        for wave in rollout.get("waves", []):
            key = f"wave {wave['index']}"
            if self._seen.get(key) != wave["status"]:
                self._seen[key] = wave["status"]
                self._line(f"{clock} wave {wave['name']} ({wave['items']} items)", wave["status"])
        for item in rollout.get("items", []):
            key = f"item {item['item_id']}"
            if self._seen.get(key, "PENDING") != item["status"]:
                self._seen[key] = item["status"]
                where = f"{item['account_id']}/{item['region']} ({names.get(item['wave'], item['wave'])})"
                self._line(f"{clock}   {where}", item["status"])
        if self._seen.get("rollout") != rollout["status"]:
            self._seen["rollout"] = rollout["status"]
            self._line(f"{clock} rollout {rollout['rollout_id']}", rollout["status"])

    def _line(self, prefix: str, status: str) -> None:
        line = Text(f"{prefix} ")
        line.append(status, style=status_style(status))
        self._console.print(line, soft_wrap=True)


class LiveRolloutView:
    """The item grid: one row per target account, one column per region; waves, counts, progress."""

    def __init__(self, console: Console) -> None:
        self._console, self._started = console, time.monotonic()
        self._rollout: dict[str, Any] = {}

    def update(self, rollout: dict[str, Any]) -> None:
        self._rollout = rollout

    def render(self) -> RenderableType:
        rollout = self._rollout
        if not rollout:
            return Text("waiting for the rollout...", style="dim")
        items = rollout.get("items", [])
        regions = list(dict.fromkeys(str(i["region"]) for i in items))
        rows: dict[str, dict[str, str]] = {}
        for item in items:
            rows.setdefault(str(item["account_id"]), {})[str(item["region"])] = str(item["status"])
        grid = Table(title=f"rollout {rollout['rollout_id']} ({rollout['stack_name']})", title_justify="left")
        grid.add_column("Account")
        for region in regions:
            grid.add_column(region)
        for account, cells in list(rows.items())[:MAX_GRID_ROWS]:
            grid.add_row(
                account,
                *[Text(cells.get(r, ""), style=status_style(cells.get(r, ""))) for r in regions],
            )
        waves = Text("waves: ")
        for wave in rollout.get("waves", []):
            waves.append(f"{wave['name']} ")
            waves.append(str(wave["status"]), style=status_style(str(wave["status"])))
            waves.append("  ")
        ended = sum(1 for i in items if i["status"] not in ("PENDING", "IN_PROGRESS"))
        total = max(len(items), 1)
        elapsed = time.monotonic() - self._started
        footer = Table.grid(padding=(0, 1))
        status = str(rollout["status"])
        footer.add_row(
            ProgressBar(total=total, completed=ended, width=40),
            Text(f"{ended}/{len(items)} items"),
            Text(f"{int(elapsed // 60):02d}:{int(elapsed % 60):02d}", style="dim"),
            Text(status, style=status_style(status)),
        )
        parts: list[RenderableType] = [grid]
        if len(rows) > MAX_GRID_ROWS:
            parts.append(Text(f"... and {len(rows) - MAX_GRID_ROWS} more accounts", style="dim"))
        parts += [waves, Text(str(rollout.get("summary", "")), style="dim"), footer]
        return Group(*parts)


@contextmanager
def rollout_view(console: Console, *, quiet: bool) -> Iterator[RolloutView | None]:
    if quiet:
        yield None
    elif console.is_terminal:
        view = LiveRolloutView(console)
        with Live(console=console, get_renderable=view.render, refresh_per_second=4, transient=False):
            yield view
    else:
        yield PlainRolloutView(console)


def follow_rollout(
    api: ApiClient,
    rollout_id: str,
    view: RolloutView | None,
    *,
    timeout: float,
    poll: float = POLL_SECONDS,
    first: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Poll until the rollout leaves PENDING/IN_PROGRESS; ``first`` is the state an action answered."""
    deadline = time.monotonic() + timeout
    rollout = first if first is not None and first.get("items") else fetch_rollout(api, rollout_id)
    while True:
        if view is not None:
            view.update(rollout)
        if rollout["status"] not in RUNNING:
            return rollout
        if time.monotonic() > deadline:
            raise WaitTimedOut(rollout, timeout)
        time.sleep(poll)
        rollout = fetch_rollout(api, rollout_id)
