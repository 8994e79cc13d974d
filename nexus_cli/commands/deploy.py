"""``nexus deploy`` and ``nexus apply``: one command from a template to a stack, as ``aws cloudformation
deploy`` is.

``deploy`` creates the stack's deployment (``POST /deployments``) or, when the stack already has one
on that target and region (the API answers 409 ``STACK_ALREADY_DEPLOYED`` naming it), updates it
(``PUT /deployments/{id}``). Without ``--template`` it can only update: it finds the deployment by
target, region and stack name. Given parameters replace the deployment's parameter set; with none,
it keeps its parameters (the API keeps what a request leaves out).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nexus_cli.api import ApiClient, ApiError
from nexus_cli.commands.common import (
    DEFAULT_TIMEOUT,
    AsJson,
    NoWait,
    Parameter,
    ParametersFile,
    Tag,
    Template,
    Timeout,
    api_session,
)
from nexus_cli.commands.operations import events_after_now, follow_started, run_operation
from nexus_cli.inputs import parameters_of, parse_pairs, read_template
from nexus_cli.signin import UsageProblem


def deploy(
    target: Annotated[str, typer.Option("--target", help="The target's id (tgt-...).")],
    region: Annotated[str, typer.Option("--region", help="One of the target's regions.")],
    stack_name: Annotated[str, typer.Option("--stack-name", help="The stack's name in the target account.")],
    template: Template = None,
    parameter: Parameter = None,
    parameters_file: ParametersFile = None,
    tag: Tag = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Compute the change set, show it and stop; `nexus apply` runs it.")
    ] = False,
    skip_unchanged: Annotated[
        bool,
        typer.Option("--skip-unchanged", help="Do nothing when the stack already has this configuration."),
    ] = False,
    no_wait: NoWait = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Create or update a stack by target, region and stack name; follow it live; print its outputs.

    Exit codes: 0 ACTIVE (or PLANNED with --plan), 1 FAILED, 2 usage error.

    Example:

        nexus deploy --target "$TARGET_ID" --region us-east-1 --stack-name app --template examples/app-stack.json --parameter Environment=dev --tag team=a

        nexus deploy --target "$TARGET_ID" --region us-east-1 --stack-name app --parameter Environment=prod --plan
    """
    with api_session(as_json) as (api, out):
        parameters = parameters_of(parameters_file, parameter)
        tags = parse_pairs(tag, "--tag") if tag else None
        body = read_template(template) if template else None
        mode = "plan" if plan else "deploy"
        if body is None and parameters is None and tags is None:
            raise UsageProblem("give --template (to create or update), or --parameter/--tag (to update)")
        existing = None if body is not None else _find(api, target, region, stack_name)
        started: dict[str, Any] | None = None
        if existing is None:
            try:
                started = api.post(
                    "/deployments",
                    {
                        "target_id": target,
                        "region": region,
                        "stack_name": stack_name,
                        "template_body": body,
                        "parameters": parameters or {},
                        "tags": tags or {},
                        "mode": mode,
                        "skip_unchanged": skip_unchanged,
                    },
                )
            except ApiError as error:
                existing = _holder(error)
        cursor = None
        if started is None:
            assert existing is not None
            cursor = events_after_now(api, existing)
            change: dict[str, Any] = {"mode": mode, "skip_unchanged": skip_unchanged}
            for key, value in (("template_body", body), ("parameters", parameters), ("tags", tags)):
                if value is not None:
                    change[key] = value
            started = api.call("PUT", f"/deployments/{existing}", change)
        expected = _resource_count(body) if started["operation"]["action"] == "create" else None
        follow_started(api, out, started, cursor, wait=not no_wait, timeout=timeout, expected=expected)


def apply(
    deployment_id: Annotated[str, typer.Argument(help="The planned deployment's id (dep-...).")],
    config_hash: Annotated[
        str | None,
        typer.Option(
            "--config-hash", help="The plan's config_hash as you reviewed it: refused if it changed."
        ),
    ] = None,
    no_wait: NoWait = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    as_json: AsJson = False,
) -> None:
    """Apply the change set that `nexus deploy --plan` computed, and follow it live.

    Example:

        nexus apply "$DEPLOYMENT_ID"
    """
    body = {"config_hash": config_hash} if config_hash else {}
    with api_session(as_json) as (api, out):
        planned = api.get(f"/deployments/{deployment_id}").get("plan") or {}
        run_operation(
            api,
            out,
            lambda: api.post(f"/deployments/{deployment_id}/apply", body),
            deployment_id=deployment_id,
            wait=not no_wait,
            timeout=timeout,
            expected=len(planned.get("changes") or []) or None,
        )


def _holder(error: ApiError) -> str:
    """The deployment that already holds the stack, from a 409 STACK_ALREADY_DEPLOYED; else re-raise."""
    details = error.details if isinstance(error.details, dict) else {}
    if error.status == 409 and error.code == "STACK_ALREADY_DEPLOYED" and details.get("deployment_id"):
        return str(details["deployment_id"])
    raise error


def _find(api: ApiClient, target: str, region: str, stack_name: str) -> str:
    found = api.pages("/deployments", target_id=target, region=region, stack_name=stack_name, limit=100)
    for deployment in found:
        if (
            deployment["region"] == region
            and deployment["stack_name"] == stack_name
            and deployment["status"] != "DELETED"
        ):
            return str(deployment["deployment_id"])
    raise UsageProblem(
        f"--template is required: target {target} has no deployment of stack {stack_name} in {region} to update"
    )


def _resource_count(body: str | None) -> int | None:
    if body is None:
        return None
    from chalicelib.domain.errors import DeployerError
    from chalicelib.domain.templates import parse_template

    try:
        return parse_template(body).resource_count
    except DeployerError:
        return None  # the API says what is wrong with it
