"""One deployment operation from request to result: start it, follow it live, print it, exit.

Used by ``deploy``, ``apply``, ``deployments delete`` and ``deployments continue-rollback``. The event
cursor is read to the end before the request, so the live view shows this operation's events only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from nexus_cli.api import ApiClient
from nexus_cli.commands.common import deployment_succeeded, print_deployment, stopped_watching
from nexus_cli.live import EventCursor, ResourceBoard, deployment_view, follow_deployment
from nexus_cli.output import EXIT_FAILED, Output


def events_after_now(api: ApiClient, deployment_id: str) -> EventCursor:
    """A cursor past the deployment's existing events: what follows is the next operation's."""
    cursor = EventCursor(api, deployment_id)
    cursor.fresh()
    return cursor


def run_operation(
    api: ApiClient,
    out: Output,
    start: Callable[[], dict[str, Any]],
    *,
    deployment_id: str,
    wait: bool,
    timeout: float,
    expected: int | None = None,
) -> None:
    """Start an operation on an existing deployment (``start`` sends the request), follow it, print it."""
    cursor = events_after_now(api, deployment_id)
    follow_started(api, out, start(), cursor, wait=wait, timeout=timeout, expected=expected)


def follow_started(
    api: ApiClient,
    out: Output,
    started: dict[str, Any],
    cursor: EventCursor | None,
    *,
    wait: bool,
    timeout: float,
    expected: int | None = None,
) -> None:
    """Follow the operation the API just accepted (``started``: its answer) to its end; exit 1 if it
    failed. ``cursor`` is None for a first create: all of a new deployment's events are this one's."""
    deployment_id = str(started["deployment_id"])
    if started.get("outcome") == "SKIPPED" or not wait:
        _print_started(out, started)
        return
    cursor = cursor or EventCursor(api, deployment_id)
    operation = started["operation"]
    board = ResourceBoard(str(started["stack_name"]), expected)
    title = (
        f"{operation['action']} {started['stack_name']} "
        f"({deployment_id}, {started['account_id']}/{started['region']})"
    )
    try:
        with deployment_view(out.console, board, title, quiet=out.as_json) as view:
            final = follow_deployment(api, deployment_id, cursor, board, view, timeout=timeout)
    except KeyboardInterrupt:
        raise stopped_watching(out, f"deployments events {deployment_id} --follow") from None
    if out.as_json:
        out.json({**final, "failed_resource": board.failed})
    else:
        print_deployment(out, final, board.failed)
    if not deployment_succeeded(final):
        raise typer.Exit(EXIT_FAILED)


def _print_started(out: Output, started: dict[str, Any]) -> None:
    if out.as_json:
        out.json(started)
        return
    deployment_id = started["deployment_id"]
    if started.get("outcome") == "SKIPPED":
        out.line(f"{deployment_id}: unchanged (SKIPPED): the stack already has this configuration.")
        return
    operation = started["operation"]
    out.line(
        f"{deployment_id}: {operation['action']} {operation['status']} (operation {operation['operation_id']})"
    )
    out.line(f"Follow it with: nexus deployments events {deployment_id} --follow")
