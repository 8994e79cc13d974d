"""What the API commands share: the connection, the error exits, and how results are printed.

Exit codes: 0 success (ACTIVE, DELETED, PLANNED, SUCCEEDED), 1 a failure (FAILED, CANCELLED, PAUSED,
an API refusal such as 404 or 409, the API unreachable, a wait that timed out), 2 a usage error (a bad
option or file, or an API answer of 400/413/422 to what was sent).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nexus_cli.api import ApiClient, ApiError
from nexus_cli.config import ConfigProblem, load
from nexus_cli.live import WaitTimedOut, status_style
from nexus_cli.output import EXIT_FAILED, Output, usage
from nexus_cli.signin import UsageProblem

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # what a shell reports for a command stopped by Ctrl-C
DEFAULT_TIMEOUT = 3600.0

AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document (no live view).")]
NoWait = Annotated[bool, typer.Option("--no-wait", help="Return once the API accepted the request.")]
Timeout = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait before giving up (exit 1); the work goes on.")
]
Parameter = Annotated[
    list[str] | None, typer.Option("--parameter", "-p", help="KEY=VALUE, repeatable.", show_default=False)
]
ParametersFile = Annotated[
    str | None,
    typer.Option(
        "--parameters-file",
        help='AWS CLI JSON ([{ParameterKey, ParameterValue}] or ["K=V"]) or KEY=VALUE lines.',
    ),
]
Tag = Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE, repeatable.", show_default=False)]
Template = Annotated[str | None, typer.Option("--template", "-t", help="Template file (JSON or YAML).")]


@contextmanager
def api_session(as_json: bool) -> Iterator[tuple[ApiClient, Output]]:
    """The API client and the output; an API error or a usage problem ends the command."""
    try:
        connection = load(os.environ)
    except ConfigProblem as problem:
        raise usage(problem) from None
    out = Output([connection.token], as_json)
    api = ApiClient(connection.api_url, connection.token)
    try:
        yield api, out
    except ApiError as error:
        raise api_failure(error, out) from None
    except UsageProblem as problem:
        raise usage(problem) from None
    except WaitTimedOut as timeout:
        raise timed_out(timeout, out) from None
    finally:
        api.close()


def api_failure(error: ApiError, out: Output) -> typer.Exit:
    if out.as_json:
        out.json({"error": error.as_dict()})
    else:
        out.err(f"[red]{escape(error.code)}[/red] (HTTP {error.status}): {escape(error.message)}")
        details = error.details if isinstance(error.details, list) else []
        for detail in details:
            if isinstance(detail, dict) and "field" in detail:
                out.err(f"  {escape(str(detail['field']))}: {escape(str(detail.get('problem', '')))}")
        if error.hint:
            out.err(f"hint: {escape(error.hint)}")
    return typer.Exit(EXIT_USAGE if error.bad_input else EXIT_FAILED)


def timed_out(timeout: WaitTimedOut, out: Output) -> typer.Exit:
    last = timeout.last
    ident = last.get("deployment_id") or last.get("rollout_id") or ""
    if out.as_json:
        out.json({**last, "timed_out": True})
    else:
        out.err(f"[yellow]still {last.get('status')}[/yellow] after {timeout.seconds:.0f} s; it goes on.")
        follow = "deployments events {} --follow" if last.get("deployment_id") else "rollouts watch {}"
        out.err("Follow it with: nexus " + follow.format(ident))
    return typer.Exit(EXIT_FAILED)


def stopped_watching(out: Output, follow: str) -> typer.Exit:
    """Ctrl-C while watching stops the watching, not the work: say how to pick it up again."""
    out.err(f"\nStopped watching; the work goes on. Pick it up with: nexus {follow}")
    return typer.Exit(EXIT_INTERRUPTED)


def ok_or_exit(ok: bool) -> None:
    if not ok:
        raise typer.Exit(EXIT_FAILED)


# -- deployments --------------------------------------------------------------------------------------

DEPLOYMENT_COLUMNS = ("deployment_id", "stack_name", "account_id", "region", "status", "stack_status")


def deployment_succeeded(deployment: dict[str, Any]) -> bool:
    return str(deployment["operation"]["status"]) in ("SUCCEEDED", "PLANNED")


def print_deployment(out: Output, deployment: dict[str, Any], failed: dict[str, Any] | None = None) -> None:
    """The result of an operation: status, outputs or plan, or the failure with its resource and hint."""
    status = str(deployment["status"])
    operation = deployment["operation"]
    line = Text(f"{deployment['deployment_id']}  {deployment['stack_name']}  ")
    line.append(status, style=status_style(status))
    line.append(f"  ({operation['action']} {operation['status']}, stack {deployment.get('stack_status')})")
    out.console.print(line, soft_wrap=True)
    if operation["status"] == "PLANNED":
        print_changes(out, deployment)
        return
    error = deployment.get("error")
    if operation["status"] in ("FAILED", "CANCELLED") and error:
        print_failure(out, error, failed)
        return
    outputs = deployment.get("outputs") or {}
    if outputs:
        out.print("Outputs:")
        width = max(map(len, outputs))
        for name, value in sorted(outputs.items()):
            out.line(f"  {name:<{width}}  {value}")


def print_failure(out: Output, error: dict[str, Any], failed: dict[str, Any] | None) -> None:
    out.print(f"[red]{escape(str(error.get('code')))}[/red]")
    if failed is not None:
        out.line(f"  resource: {failed['resource']} ({failed['status']})")
        out.line(f"  reason:   {failed.get('message', '')}")
    else:
        out.line(f"  reason:   {error.get('message', '')}")
    if error.get("hint"):
        out.line(f"  hint:     {error['hint']}")


def print_changes(out: Output, deployment: dict[str, Any]) -> None:
    plan = deployment.get("plan") or {}
    changes = plan.get("changes") or deployment.get("changes") or []
    if not changes:
        out.print("[yellow]No changes[/yellow]: the stack already has this configuration.")
    else:
        table = Table(title="Change set", title_justify="left")
        for column in ("Action", "Logical ID", "Type", "Replacement", "IAM"):
            table.add_column(column)
        for change in changes:
            action = str(change["action"])
            colour = {"Add": "green", "Modify": "yellow", "Remove": "red"}.get(action, "white")
            table.add_row(
                Text(action, style=colour),
                Text(str(change["logical_id"])),
                Text(str(change["resource_type"])),
                Text(str(change["replacement"]) if action == "Modify" else ""),
                "yes" if change.get("iam") else "",
            )
        out.console.print(table)
    hash_part = f" --config-hash {plan['config_hash']}" if plan.get("config_hash") else ""
    out.print(f"Apply this plan with: nexus apply {deployment['deployment_id']}{hash_part}")


def deployments_table(out: Output, deployments: list[dict[str, Any]]) -> None:
    table = Table()
    for column in DEPLOYMENT_COLUMNS:
        table.add_column(column)
    for deployment in deployments:
        status = str(deployment["status"])
        table.add_row(
            *[Text(str(deployment.get(c) or "")) for c in DEPLOYMENT_COLUMNS[:4]],
            Text(status, style=status_style(status)),
            Text(str(deployment.get("stack_status") or "")),
        )
    out.console.print(table)
