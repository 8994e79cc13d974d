"""``nexus targets ...``: register and set up target accounts."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from nexus_cli.commands.sign_in import AsJson, checked_options, signed_in_or_report, with_sign_in
from nexus_cli.output import EXIT_FAILED, Output, render, usage
from nexus_cli.signin import SignInOptions, UsageProblem

app = typer.Typer(help="Set up target accounts.", no_args_is_help=True)

# -- targets bootstrap ------------------------------------------------------------------------------
ApiUrl = Annotated[
    str | None, typer.Option("--api-url", help="Default NEXUS_API_URL or http://127.0.0.1:8000.")
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
    """Deploy the target's bootstrap template into its account with your credentials, then validate it."""
    from nexus_cli.api import DEFAULT_API_URL, ApiClient, ApiError
    from nexus_cli.bootstrap import BootstrapFailed, deploy_stack

    token = os.environ.get("NEXUS_API_TOKEN", "")
    if not token:
        raise usage(ValueError("set NEXUS_API_TOKEN to a tenant token (nexus tokens create)"))
    try:
        options = checked_options(**sign_in)
        out = Output([*options.secrets(), token], as_json)
        api = ApiClient(api_url or os.environ.get("NEXUS_API_URL") or DEFAULT_API_URL, token)
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
