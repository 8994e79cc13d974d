"""``nexus deployments ...``: list, show, follow, cancel, delete, continue a rollback."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from nexus_cli.commands.common import (
    DEFAULT_TIMEOUT,
    AsJson,
    NoWait,
    Timeout,
    api_session,
    deployment_succeeded,
    deployments_table,
    print_deployment,
    stopped_watching,
)
from nexus_cli.commands.operations import run_operation
from nexus_cli.live import (
    EventCursor,
    PlainDeploymentView,
    ResourceBoard,
    follow_deployment,
)
from nexus_cli.output import EXIT_FAILED

app = typer.Typer(help="Deployments: one stack on one target and region.", no_args_is_help=True)

DeploymentId = Annotated[str, typer.Argument(help="The deployment's id (dep-...).")]
STATUSES = ("PENDING", "IN_PROGRESS", "ACTIVE", "FAILED", "DELETED", "PLANNED")


@app.command("list")
def deployments_list(
    target: Annotated[str | None, typer.Option("--target", help="Only this target's (tgt-...).")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account's.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only this region's.")] = None,
    stack_name: Annotated[str | None, typer.Option("--stack-name", help="Only this stack's.")] = None,
    status: Annotated[str | None, typer.Option("--status", help=f"One of {', '.join(STATUSES)}.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    as_json: AsJson = False,
) -> None:
    """List deployments, filtered by target, account, region, stack name and status.

    Example:

        nexus deployments list --status FAILED

        nexus deployments list --target "$TARGET_ID" --stack-name app --json | jq -r '.items[].deployment_id'
    """
    query = {
        "target_id": target,
        "account_id": account,
        "region": region,
        "stack_name": stack_name,
        "status": status,
        "limit": min(limit, 100),
    }
    with api_session(as_json) as (api, out):
        found: list[dict[str, Any]] = []
        for deployment in api.pages("/deployments", **query):
            found.append(deployment)
            if len(found) >= limit:
                break
    if as_json:
        out.json({"items": found})
    else:
        deployments_table(out, found)


@app.command("show")
def deployments_show(deployment_id: DeploymentId, as_json: AsJson = False) -> None:
    """Show a deployment: status, stack status, outputs, parameters, the last plan or error.

    Example:

        nexus deployments show "$DEPLOYMENT_ID" --json | jq .outputs
    """
    with api_session(as_json) as (api, out):
        deployment = api.get(f"/deployments/{deployment_id}")
    if as_json:
        out.json(deployment)
        return
    print_deployment(out, deployment)
    for key in ("target_id", "account_id", "region", "stack_id", "updated_at"):
        out.line(f"  {key + ':':<14}{deployment.get(key)}")
    for key in ("parameters", "tags"):
        if deployment.get(key):
            out.line(f"  {key + ':':<14}" + ", ".join(f"{k}={v}" for k, v in deployment[key].items()))


@app.command("events")
def deployments_events(
    deployment_id: DeploymentId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until the operation ends.")
    ] = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Print a deployment's events, oldest first; --follow waits for new ones until the operation ends.

    With --follow the exit code is the operation's: 0 it succeeded (or is planned), 1 it failed. With
    --json: one document ({"items": [...]}), or with --follow one JSON event per line.

    Example:

        nexus deployments events "$DEPLOYMENT_ID" --follow
    """
    with api_session(as_json) as (api, out):
        cursor = EventCursor(api, deployment_id)
        if not follow:
            events = cursor.fresh()
            if as_json:
                out.json({"deployment_id": deployment_id, "items": events})
                return
            board = ResourceBoard("")
            view = PlainDeploymentView(out.console, board)
            for event in events:
                board.add(event)
                view.event(event)
            return
        deployment = api.get(f"/deployments/{deployment_id}")
        board = ResourceBoard(str(deployment["stack_name"]))
        lines = _JsonLines() if as_json else PlainDeploymentView(out.console, board)
        try:
            final = follow_deployment(api, deployment_id, cursor, board, lines, timeout=timeout)
        except KeyboardInterrupt:
            raise stopped_watching(out, f"deployments events {deployment_id} --follow") from None
    if not as_json:
        print_deployment(out, final, board.failed)
    if not deployment_succeeded(final):
        raise typer.Exit(EXIT_FAILED)


class _JsonLines:
    def event(self, event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    def tick(self, deployment: dict[str, Any]) -> None:
        return None


@app.command("cancel")
def deployments_cancel(deployment_id: DeploymentId, as_json: AsJson = False) -> None:
    """Cancel a running update (CancelUpdateStack); the operation ends CANCELLED once rolled back.

    Example:

        nexus deployments cancel "$DEPLOYMENT_ID"
    """
    with api_session(as_json) as (api, out):
        answer = api.post(f"/deployments/{deployment_id}/cancel", {})
    if as_json:
        out.json(answer)
    else:
        out.line(f"{deployment_id}: cancel requested ({answer['operation']['status']}).")
        out.line(f"Follow it with: nexus deployments events {deployment_id} --follow")


@app.command("delete")
def deployments_delete(
    deployment_id: DeploymentId,
    retain: Annotated[
        str | None,
        typer.Option("--retain", help="After DELETE_FAILED: logical ids to keep, comma-separated."),
    ] = None,
    no_wait: NoWait = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Delete the deployment's stack and follow it live (exit 0 once DELETED).

    Example:

        nexus deployments delete "$DEPLOYMENT_ID"
    """
    with api_session(as_json) as (api, out):
        run_operation(
            api,
            out,
            lambda: api.call("DELETE", f"/deployments/{deployment_id}", query={"retain": retain}),
            deployment_id=deployment_id,
            wait=not no_wait,
            timeout=timeout,
        )


@app.command("continue-rollback")
def deployments_continue_rollback(
    deployment_id: DeploymentId,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip-resource", help="A logical id to skip (ContinueUpdateRollback); repeatable."),
    ] = None,
    no_wait: NoWait = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Continue an update rollback that failed (UPDATE_ROLLBACK_FAILED), skipping resources if needed.

    Example:

        nexus deployments continue-rollback "$DEPLOYMENT_ID" --skip-resource WorkQueue
    """
    with api_session(as_json) as (api, out):
        run_operation(
            api,
            out,
            lambda: api.post(
                f"/deployments/{deployment_id}/continue-rollback", {"resources_to_skip": skip or []}
            ),
            deployment_id=deployment_id,
            wait=not no_wait,
            timeout=timeout,
        )


@app.command("forget")
def deployments_forget(deployment_id: DeploymentId, as_json: AsJson = False) -> None:
    """Forget a deployment whose stack never existed or is gone (no stack call); refused while it exists.

    It ends DELETED, frees the stack name and, once none is left, lets the target be deleted.

    Example:

        nexus deployments forget "$DEPLOYMENT_ID"
    """
    with api_session(as_json) as (api, out):
        forgotten = api.post(f"/deployments/{deployment_id}/forget", {})
    if as_json:
        out.json(forgotten)
    else:
        out.line(f"{deployment_id}: forgotten ({forgotten['status']}).")
