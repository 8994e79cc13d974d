"""``nexus rollouts ...``: one stack to many targets and regions, canary first, watched as a grid."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from nexus_cli.api import ApiClient
from nexus_cli.commands.common import (
    DEFAULT_TIMEOUT,
    AsJson,
    NoWait,
    Parameter,
    ParametersFile,
    Tag,
    Timeout,
    api_session,
    stopped_watching,
)
from nexus_cli.inputs import (
    count_or_percent,
    parameters_of,
    parse_pairs,
    parse_target,
    read_template,
    region_order,
)
from nexus_cli.live import fetch_rollout, follow_rollout, rollout_view, status_style
from nexus_cli.output import EXIT_FAILED, Output

app = typer.Typer(help="Fleet rollouts: one stack to many targets and regions.", no_args_is_help=True)

RolloutId = Annotated[str, typer.Argument(help="The rollout's id (rol-...).")]
ENDED_OK = ("SUCCEEDED", "PLANNED")


@app.command("create")
def rollouts_create(
    stack_name: Annotated[str, typer.Option("--stack-name", help="The stack's name in every target.")],
    template: Annotated[str, typer.Option("--template", "-t", help="Template file (JSON or YAML).")],
    target: Annotated[
        list[str],
        typer.Option(
            "--target", help="TARGET_ID, or TARGET_ID=REGION[,REGION] (default: all its regions); repeatable."
        ),
    ],
    parameter: Parameter = None,
    parameters_file: ParametersFile = None,
    tag: Tag = None,
    canary: Annotated[int, typer.Option("--canary", min=0, help="Items that run alone first.")] = 0,
    max_concurrent: Annotated[
        str | None, typer.Option("--max-concurrent", help="Items at once: N or NN% (API default 10).")
    ] = None,
    failure_tolerance: Annotated[
        str | None,
        typer.Option("--failure-tolerance", help="Failures before it stops: N or NN% (default 0)."),
    ] = None,
    order: Annotated[
        str | None,
        typer.Option("--region-order", help="Comma-separated regions, one wave each; or parallel (default)."),
    ] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Compute every item's change set and stop.")] = False,
    no_wait: NoWait = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Start a rollout and watch its item grid (exit 0 SUCCEEDED or PLANNED, 1 otherwise).

    Example:

        nexus rollouts create --stack-name app --template examples/app-stack.json --target "$T1" --target "$T2=us-east-1" --canary 1 --max-concurrent 2

        ROLLOUT_ID=$(nexus rollouts create ... --no-wait --json | jq -r .rollout_id)
    """
    with api_session(as_json) as (api, out):
        strategy: dict[str, Any] = {"canary": canary}
        for key, value in (
            ("max_concurrent", count_or_percent(max_concurrent, "--max-concurrent")),
            ("failure_tolerance", count_or_percent(failure_tolerance, "--failure-tolerance")),
            ("region_order", region_order(order)),
        ):
            if value is not None:
                strategy[key] = value
        body = {
            "stack_name": stack_name,
            "template_body": read_template(template),
            "parameters": parameters_of(parameters_file, parameter) or {},
            "tags": parse_pairs(tag, "--tag"),
            "targets": [parse_target(t) for t in target],
            "strategy": strategy,
            "mode": "plan" if plan else "apply",
        }
        started = api.post("/rollouts", body)
        _watch(api, out, started, wait=not no_wait, timeout=timeout)


@app.command("list")
def rollouts_list(
    status: Annotated[str | None, typer.Option("--status", help="Only rollouts in this status.")] = None,
    stack_name: Annotated[str | None, typer.Option("--stack-name", help="Only this stack's.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Only rollouts to this target.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    as_json: AsJson = False,
) -> None:
    """List your rollouts, filtered by status, stack name and target.

    Example:

        nexus rollouts list --status PAUSED

        nexus rollouts list --stack-name fleet --json | jq -r '.items[].rollout_id'
    """
    with api_session(as_json) as (api, out):
        found: list[dict[str, Any]] = []
        pages = api.pages(
            "/rollouts", status=status, stack_name=stack_name, target_id=target, limit=min(limit, 100)
        )
        for rollout in pages:
            found.append(rollout)
            if len(found) >= limit:
                break
    if as_json:
        out.json({"items": found})
        return
    table = Table()
    for column in ("rollout_id", "stack_name", "mode", "status", "items", "failed", "created_at"):
        table.add_column(column)
    for rollout in found:
        state = str(rollout["status"])
        table.add_row(
            Text(str(rollout["rollout_id"])),
            Text(str(rollout["stack_name"])),
            Text(str(rollout.get("mode", ""))),
            Text(state, style=status_style(state)),
            Text(str(rollout.get("item_count", ""))),
            Text(str(rollout.get("failed", ""))),
            Text(str(rollout.get("created_at", ""))),
        )
    out.console.print(table)


@app.command("show")
def rollouts_show(
    rollout_id: RolloutId,
    status: Annotated[str | None, typer.Option("--status", help="Only items in this status.")] = None,
    as_json: AsJson = False,
) -> None:
    """Show a rollout: status, waves, counts and every item (all pages).

    Example:

        nexus rollouts show "$ROLLOUT_ID" --status FAILED
    """
    with api_session(as_json) as (api, out):
        rollout = fetch_rollout(api, rollout_id, status)
    if as_json:
        out.json(rollout)
        return
    print_rollout(out, rollout, items=True)


@app.command("watch")
def rollouts_watch(
    rollout_id: RolloutId, timeout: Timeout = DEFAULT_TIMEOUT, as_json: AsJson = False
) -> None:
    """Watch a rollout's item grid live until it ends (exit 0 SUCCEEDED or PLANNED, 1 otherwise).

    Example:

        nexus rollouts watch "$ROLLOUT_ID"
    """
    with api_session(as_json) as (api, out):
        _watch(api, out, fetch_rollout(api, rollout_id), wait=True, timeout=timeout)


@app.command("apply")
def rollouts_apply(
    rollout_id: RolloutId,
    no_wait: NoWait = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Apply a PLANNED rollout's change sets, and watch it (refused with PLAN_STALE if an item changed).

    Example:

        nexus rollouts apply "$ROLLOUT_ID"
    """
    with api_session(as_json) as (api, out):
        _watch(api, out, api.post(f"/rollouts/{rollout_id}/apply", {}), wait=not no_wait, timeout=timeout)


@app.command("pause")
def rollouts_pause(rollout_id: RolloutId, as_json: AsJson = False) -> None:
    """Pause a running rollout: the running wave's items finish, then it waits PAUSED for resume.

    Example:

        nexus rollouts pause "$ROLLOUT_ID"
    """
    _request(
        rollout_id,
        "pause",
        as_json,
        f"It stops after the running wave; go on with: nexus rollouts resume {rollout_id}",
    )


@app.command("resume")
def rollouts_resume(
    rollout_id: RolloutId,
    no_wait: NoWait = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Resume a PAUSED rollout (its canary failed), and watch it.

    Example:

        nexus rollouts resume "$ROLLOUT_ID"
    """
    with api_session(as_json) as (api, out):
        _watch(api, out, api.post(f"/rollouts/{rollout_id}/resume", {}), wait=not no_wait, timeout=timeout)


@app.command("cancel")
def rollouts_cancel(rollout_id: RolloutId, as_json: AsJson = False) -> None:
    """Cancel a rollout: nothing new starts, running items finish; it ends CANCELLED.

    Example:

        nexus rollouts cancel "$ROLLOUT_ID"
    """
    _request(rollout_id, "cancel", as_json, f"Watch it end with: nexus rollouts watch {rollout_id}")


def _request(rollout_id: str, action: str, as_json: bool, next_step: str) -> None:
    """POST /rollouts/{id}/{action} (pause, cancel): the rollout acts between waves, so say what next."""
    with api_session(as_json) as (api, out):
        answer = api.post(f"/rollouts/{rollout_id}/{action}", {})
    if as_json:
        out.json(answer)
    else:
        out.line(f"Rollout {rollout_id}: {action} requested ({answer['status']}).")
        out.line(next_step)


def _watch(api: ApiClient, out: Output, started: dict[str, Any], *, wait: bool, timeout: float) -> None:
    rollout_id = str(started["rollout_id"])
    if not wait:
        if out.as_json:
            out.json(started)
        else:
            out.line(f"Rollout {rollout_id}: {started['status']}")
            out.line(f"Watch it with: nexus rollouts watch {rollout_id}")
        return
    try:
        with rollout_view(out.console, quiet=out.as_json) as view:
            final = follow_rollout(api, rollout_id, view, timeout=timeout, first=started)
    except KeyboardInterrupt:
        raise stopped_watching(out, f"rollouts watch {rollout_id}") from None
    if out.as_json:
        out.json(final)
    else:
        print_rollout(out, final, items=False)
    if final["status"] not in ENDED_OK:
        raise typer.Exit(EXIT_FAILED)


def print_rollout(out: Output, rollout: dict[str, Any], *, items: bool) -> None:
    """The rollout's outcome; with ``items``, a table of them. Failed items name account, region, error."""
    state = str(rollout["status"])
    line = Text(f"Rollout {rollout['rollout_id']} ({rollout['stack_name']}, {rollout.get('mode')}): ")
    line.append(state, style=status_style(state))
    out.console.print(line, soft_wrap=True)
    out.line(f"  {rollout.get('summary', '')}")
    names = {w["index"]: w["name"] for w in rollout.get("waves", [])}
    if items:
        table = Table()
        for column in ("item", "wave", "account_id", "region", "status", "deployment_id"):
            table.add_column(column)
        for item in rollout.get("items", []):
            item_state = str(item["status"])
            table.add_row(
                str(item["item_id"]),
                Text(str(names.get(item["wave"], item["wave"]))),
                Text(str(item["account_id"])),
                Text(str(item["region"])),
                Text(item_state, style=status_style(item_state)),
                Text(str(item.get("deployment_id") or "")),
            )
        out.console.print(table)
    for item in rollout.get("items", []):
        if item["status"] == "FAILED" and item.get("error"):
            error = item["error"]
            out.line(
                f"  FAILED {item['account_id']}/{item['region']}: {error.get('code')}: {error.get('message')}",
                "red",
            )
            if error.get("hint"):
                out.line(f"    hint: {error['hint']}")
        if state == "PLANNED" and item["status"] == "PLANNED":
            changes = item.get("changes") or []
            summary = ", ".join(f"{c['action']} {c['logical_id']}" for c in changes) or "no changes"
            out.line(f"  plan {item['account_id']}/{item['region']}: {summary}")
    error = rollout.get("error")
    if error:
        out.line(f"  {error.get('code')}: {error.get('message')}", "red")
    follow_up = {
        "PLANNED": "Apply it with: nexus rollouts apply {}",
        "PAUSED": "A canary failed; fix it, then: nexus rollouts resume {}",
    }.get(state)
    if follow_up:
        out.line(follow_up.format(rollout["rollout_id"]))
