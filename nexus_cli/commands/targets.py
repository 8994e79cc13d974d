"""``nexus targets ...``: register and set up target accounts."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from nexus_cli.commands.common import api_session, ok_or_exit
from nexus_cli.commands.sign_in import AsJson, checked_options, signed_in_or_report, with_sign_in
from nexus_cli.config import ConfigProblem, check_url, load
from nexus_cli.output import EXIT_FAILED, Output, render, usage
from nexus_cli.signin import SignInOptions, UsageProblem

app = typer.Typer(help="Set up target accounts.", no_args_is_help=True)

# -- targets bootstrap ------------------------------------------------------------------------------
ApiUrl = Annotated[
    str | None, typer.Option("--api-url", help="Default: NEXUS_API_URL, then nexus configure's URL.")
]
StackName = Annotated[str, typer.Option("--stack-name", help="Bootstrap stack name in the target account.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the stack.")]


@app.command("bootstrap")
@with_sign_in
def targets_bootstrap(
    target_id: Annotated[str, typer.Argument(help="The target's id.")],
    sign_in: dict[str, Any],
    api_url: ApiUrl = None,
    stack_name: StackName = "nexus-deployer-bootstrap",
    timeout: Timeout = 900.0,
    as_json: AsJson = False,
) -> None:
    """Deploy the target's bootstrap template into its account with your credentials, then validate it.

    Example:

        nexus targets bootstrap "$TARGET_ID" --profile target-admin
    """
    from nexus_cli.api import ApiClient, ApiError
    from nexus_cli.bootstrap import BootstrapFailed, deploy_stack

    try:
        connection = load(os.environ)
        base_url = check_url(api_url) if api_url else connection.api_url
    except ConfigProblem as problem:
        raise usage(problem) from None
    token = connection.token
    try:
        options = checked_options(**sign_in)
        out = Output([*options.secrets(), token], as_json)
        api = ApiClient(base_url, token)
        try:
            target = api.target(target_id)
            template = api.bootstrap_template(target_id)
        except ApiError as error:
            out.print(f"[red]{error.code}[/red]: {error.message} {error.hint or ''}")
            raise typer.Exit(EXIT_FAILED) from None
        signed_in, failed = signed_in_or_report(options, out)
    except UsageProblem as problem:
        raise usage(problem) from None
    if failed is not None:
        render(failed, out, "Sign-in to the target account")
        raise typer.Exit(EXIT_FAILED)
    from nexus_cli.checks import run_checks

    access = run_checks(signed_in, options, expect_account=str(target["account_id"]), profile_name="default")
    if not all(c.ok for c in access.checks[:3]):
        render(access, out, "Sign-in to the target account")
        raise typer.Exit(EXIT_FAILED)
    if not as_json:
        out.print(f"Deploying stack {stack_name} into account {target['account_id']} ({options.region})")
    progress = None if as_json else out.print
    try:
        status = deploy_stack(
            signed_in.session, options, stack_name, template, progress=progress, timeout=timeout
        )
        forwarding = _forward_other_regions(
            api, signed_in.session, options, target, stack_name, timeout, progress
        )
    except BootstrapFailed as failure:
        if as_json:
            out.json({"ok": False, "stack": stack_name, "error": failure.as_dict()})
        else:
            out.print(f"[red]{failure.code}[/red]: {failure.message}\n{failure.hint}")
        raise typer.Exit(EXIT_FAILED) from None
    except ApiError as error:
        out.print(f"[red]{error.code}[/red]: {error.message} {error.hint or ''}")
        raise typer.Exit(EXIT_FAILED) from None
    try:
        report = api.validate(target_id)
    except ApiError as error:
        out.print(f"[red]{error.code}[/red]: {error.message} {error.hint or ''}")
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        api.close()
    if as_json:
        out.json(
            {
                "stack": stack_name,
                "stack_status": status,
                "forwarding_stacks": forwarding,
                "validation": report,
                "ok": bool(report.get("ok")),
            }
        )
    else:
        out.print(f"Stack {stack_name}: {status}")
        for region, region_status in forwarding.items():
            out.print(f"Stack {stack_name}-events ({region}): {region_status}")
        render(report, out, f"Validation of target {target_id}")
    if not report.get("ok"):
        raise typer.Exit(EXIT_FAILED)


def _forward_other_regions(
    api: Any,
    session: Any,
    options: SignInOptions,
    target: dict[str, Any],
    stack_name: str,
    timeout: float,
    progress: Any,
) -> dict[str, str]:
    """The stack-event forwarding rule in each of the target's regions but the bootstrap stack's own.

    EventBridge rules are regional: without one in a region, operations there learn of their stack's
    end only by the event wait's timeout. Each region gets ``<stack>-events``, which reuses the
    bootstrap stack's forwarder role. Returns each region's stack status.
    """
    from dataclasses import replace

    from chalicelib.domain.bootstrap import FORWARDER_OUTPUT, FORWARDER_ROLE_PARAMETER
    from nexus_cli.bootstrap import deploy_stack, stack_output

    regions = [str(r) for r in target.get("regions", []) if r != options.region]
    role_arn = stack_output(session, options, stack_name, FORWARDER_OUTPUT) if regions else None
    if role_arn is None:  # one region, or a service that takes no stack events
        return {}
    template = api.bootstrap_template(str(target["target_id"]), part="region")
    statuses: dict[str, str] = {}
    for region in regions:
        if progress:
            progress(f"Deploying stack {stack_name}-events into {region} (stack events to the service)")
        statuses[region] = deploy_stack(
            session,
            replace(options, region=region),
            f"{stack_name}-events",
            template,
            progress=progress,
            timeout=timeout,
            parameters={FORWARDER_ROLE_PARAMETER: role_arn},
        )
    return statuses


# -- register, list, show, update, delete, validate (the API's /targets routes) ----------------------
TargetId = Annotated[str, typer.Argument(help="The target's id (tgt-...).")]
Regions = Annotated[
    list[str] | None, typer.Option("--region", help="A region deployments may use; repeatable.")
]


@app.command("create")
def targets_create(
    name: Annotated[str, typer.Option("--name", help="A name for the target.")],
    account_id: Annotated[str, typer.Option("--account-id", help="The 12-digit AWS account ID.")],
    region: Regions = None,
    role_name: Annotated[
        str, typer.Option("--role-name", help="The deployment role's name in that account.")
    ] = "NexusDeploymentRole",
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", help="The role's full ARN (instead of --role-name).")
    ] = None,
    permission_profile: Annotated[
        str | None, typer.Option("--permission-profile", help="default or cloudformation-only.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Register a target account: prints its external ID, the role's trust policy and the next command.

    Example:

        nexus targets create --name team-a --account-id 111111111111 --region us-east-1 --region eu-west-1

        TARGET_ID=$(nexus targets create --name team-a --account-id 111111111111 --region us-east-1 --json | jq -r .target_id)
    """
    if not region:
        raise usage(ValueError("name at least one --region"))
    body: dict[str, Any] = {
        "name": name,
        "account_id": account_id,
        "role_arn": role_arn or f"arn:aws:iam::{account_id}:role/{role_name}",
        "regions": region,
    }
    if permission_profile:
        body["permission_profile"] = permission_profile
    with api_session(as_json) as (api, out):
        target = api.post("/targets", body)
    if as_json:
        out.json(target)
        return
    target_id = target["target_id"]
    out.line(
        f"Target {target_id} ({target['name']}): account {target['account_id']}, role {target['role_arn']}"
    )
    out.line(f"External ID: {target['external_id']}")
    out.line("Trust policy for the role (the bootstrap template puts it there for you):")
    out.line(json.dumps(target["trust_policy"], indent=2))
    out.line(
        "Next, as an administrator of the target account (any sign-in method of nexus credentials test):"
    )
    out.line(f"  nexus targets bootstrap {target_id} --profile ADMIN_PROFILE", style="bold")
    out.line(
        f"or create the role with the trust policy above yourself, then: nexus targets validate {target_id}"
    )


@app.command("list")
def targets_list(as_json: AsJson = False) -> None:
    """List your targets (every page).

    Example:

        nexus targets list --json | jq -r '.items[].target_id'
    """
    with api_session(as_json) as (api, out):
        targets = list(api.pages("/targets", limit=100))
    if as_json:
        out.json({"items": targets})
        return
    table = Table()
    for column in ("target_id", "name", "account_id", "regions", "permission_profile"):
        table.add_column(column)
    for target in targets:
        table.add_row(
            *[Text(str(target[c])) for c in ("target_id", "name", "account_id")],
            Text(", ".join(target["regions"])),
            Text(str(target.get("permission_profile", ""))),
        )
    out.console.print(table)


@app.command("show")
def targets_show(target_id: TargetId, as_json: AsJson = False) -> None:
    """Show one target, with its external ID and trust policy.

    Example:

        nexus targets show "$TARGET_ID"
    """
    with api_session(as_json) as (api, out):
        target = api.target(target_id)
    if as_json:
        out.json(target)
        return
    for key in (
        "target_id",
        "name",
        "account_id",
        "role_arn",
        "external_id",
        "permission_profile",
        "created_at",
    ):
        out.line(f"{key + ':':<20}{target.get(key)}")
    out.line(f"{'regions:':<20}{', '.join(target['regions'])}")
    out.line("trust_policy:")
    out.line(json.dumps(target["trust_policy"], indent=2))


@app.command("update")
def targets_update(
    target_id: TargetId,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    region: Annotated[
        list[str] | None, typer.Option("--region", help="The new region list (replaces it); repeatable.")
    ] = None,
    permission_profile: Annotated[
        str | None, typer.Option("--permission-profile", help="default or cloudformation-only.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Change a target's name, regions or permission profile (PATCH /targets/{id}); the external ID stays.

    Example:

        nexus targets update "$TARGET_ID" --region us-east-1 --region eu-west-1
    """
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if region:
        body["regions"] = region
    if permission_profile is not None:
        body["permission_profile"] = permission_profile
    if not body:
        raise usage(ValueError("give at least one of --name, --region, --permission-profile"))
    with api_session(as_json) as (api, out):
        target = api.call("PATCH", f"/targets/{target_id}", body)
    if as_json:
        out.json(target)
    else:
        out.line(
            f"Target {target['target_id']}: {target['name']}, regions {', '.join(target['regions'])}, "
            f"profile {target.get('permission_profile')}"
        )


@app.command("delete")
def targets_delete(target_id: TargetId, as_json: AsJson = False) -> None:
    """Forget a target (refused while it has live deployments).

    Example:

        nexus targets delete "$TARGET_ID"
    """
    with api_session(as_json) as (api, out):
        api.call("DELETE", f"/targets/{target_id}")
    if as_json:
        out.json({"target_id": target_id, "deleted": True})
    else:
        out.line(f"Target {target_id} deleted.")


@app.command("validate")
def targets_validate(target_id: TargetId, as_json: AsJson = False) -> None:
    """Test Credentials: the service assumes the target's role and checks it (exit 1 if a check fails).

    Example:

        nexus targets validate "$TARGET_ID"
    """
    with api_session(as_json) as (api, out):
        report = api.validate(target_id)
    render(report, out, f"Test Credentials: target {target_id}")
    ok_or_exit(bool(report.get("ok")))
