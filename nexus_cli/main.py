"""The ``nexus`` commands: options in, one call into signin/checks/api, a rich table or JSON out.

Exit codes: 0 every check passed, 1 a check failed (or AWS/the API refused), 2 a usage error (no or two
sign-in methods, a malformed ARN, ...), raised before any AWS call. All output goes through ``_emit``,
which scrubs access key IDs and the run's secrets as a last line of defence; nothing is logged.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table

from nexus_cli.signin import DEFAULT_REGION, SignInOptions, UsageProblem

app = typer.Typer(help="NexusAI Deployer operator CLI.", no_args_is_help=True, add_completion=False)
credentials_app = typer.Typer(
    help="Test AWS credentials the way the deployer will use them.", no_args_is_help=True
)
targets_app = typer.Typer(help="Set up target accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="Tenant API tokens.", no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")
app.add_typer(targets_app, name="targets")
app.add_typer(tokens_app, name="tokens")

EXIT_FAILED = 1
_KEY_ID_RE = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
_MARK = {True: "[green]✔[/green]", False: "[red]✘[/red]", None: "[yellow]-[/yellow]"}


class Output:
    """Every line the CLI prints, scrubbed of key IDs and of this run's secrets."""

    def __init__(self, secrets: list[str], as_json: bool = False) -> None:
        self._secrets = [s for s in secrets if len(s) >= 4]
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "****")
        return _KEY_ID_RE.sub(lambda m: m.group(1) + "****************", text)

    def print(self, text: str = "") -> None:
        self.console.print(self.scrub(text))

    def json(self, document: Any) -> None:
        sys.stdout.write(self.scrub(json.dumps(document, indent=2, default=str)) + "\n")


# -- shared sign-in options ---------------------------------------------------------------------------
RoleArn = Annotated[str | None, typer.Option("--role-arn", help="Role to assume (method 1).")]
ExternalId = Annotated[str | None, typer.Option("--external-id", help="The target's external ID.")]
SourceProfile = Annotated[
    str | None, typer.Option("--source-profile", help="Profile to assume the role from.")
]
AccessKeyId = Annotated[
    str | None,
    typer.Option(
        "--access-key-id", help="Method 2; the secret from AWS_SECRET_ACCESS_KEY or a no-echo prompt."
    ),
]
SessionToken = Annotated[str | None, typer.Option("--session-token", help="With --access-key-id.")]
Profile = Annotated[
    str | None, typer.Option("--profile", help="AWS config profile, SSO included (method 3).")
]
AdfsUrl = Annotated[str | None, typer.Option("--adfs-url", help="ADFS sign-on URL (method 4).")]
Username = Annotated[
    str | None, typer.Option("--username", help="ADFS user; password from NEXUS_ADFS_PASSWORD or a prompt.")
]
AdfsRole = Annotated[str | None, typer.Option("--role", help="ADFS: the role ARN to use (else a choice).")]
ListRoles = Annotated[bool, typer.Option("--list-roles", help="ADFS: list the roles on offer and stop.")]
MfaSerial = Annotated[str | None, typer.Option("--mfa-serial", help="MFA device ARN.")]
MfaCode = Annotated[str | None, typer.Option("--mfa-code", help="The device's current 6-digit code.")]
Region = Annotated[
    str | None, typer.Option("--region", help="Default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1.")
]
EndpointUrl = Annotated[
    str | None, typer.Option("--endpoint-url", help="AWS endpoint; default AWS_ENDPOINT_URL.")
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON document instead of the table.")]
ExpectAccount = Annotated[
    str | None, typer.Option("--expect-account", help="The 12-digit account ID to confirm.")
]
PermissionProfile = Annotated[
    str, typer.Option("--permission-profile", help="Permission profile to simulate.")
]


def _options(**given: Any) -> SignInOptions:
    """Sign-in options with the secrets fetched only for the method that needs them."""
    given["region"] = (
        given.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION)
    )
    given["endpoint_url"] = given.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None
    if given.get("access_key_id"):
        given["secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY") or typer.prompt(
            "AWS secret access key", hide_input=True
        )
    return SignInOptions(**given)


def _checked_options(**fields: Any) -> SignInOptions:
    """The command line's sign-in options, checked (exactly one method), with the ADFS password asked."""
    from nexus_cli.signin import validate

    options = _options(**fields)
    validate(options)
    return _adfs_password(options)


# The sign-in options of every command that signs in, declared once. Typer reads a command's options
# from its signature, so ``_with_sign_in`` adds these to the command's signature (after its arguments)
# and hands their values to the command as one ``sign_in`` dict, the keyword arguments of
# ``_checked_options``.
_SIGN_IN: tuple[tuple[str, Any], ...] = (
    ("role_arn", RoleArn),
    ("external_id", ExternalId),
    ("source_profile", SourceProfile),
    ("access_key_id", AccessKeyId),
    ("session_token", SessionToken),
    ("profile", Profile),
    ("adfs_url", AdfsUrl),
    ("username", Username),
    ("adfs_role", AdfsRole),
    ("mfa_serial", MfaSerial),
    ("mfa_code", MfaCode),
    ("region", Region),
    ("endpoint_url", EndpointUrl),
)


def _with_sign_in(command: Callable[..., None]) -> Callable[..., None]:
    own = inspect.signature(command, eval_str=True)
    arguments = [p for p in own.parameters.values() if p.default is p.empty and p.name != "sign_in"]
    options = [p for p in own.parameters.values() if p.default is not p.empty]
    shared = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=annotation)
        for name, annotation in _SIGN_IN
    ]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        sign_in = {name: kwargs.pop(name) for name, _ in _SIGN_IN}
        command(*args, sign_in=sign_in, **kwargs)

    run.__signature__ = own.replace(parameters=[*arguments, *shared, *options])  # type: ignore[attr-defined]
    return run


def _adfs_password(options: SignInOptions) -> SignInOptions:
    if options.adfs_url and not options.password:
        from dataclasses import replace

        password = os.environ.get("NEXUS_ADFS_PASSWORD") or typer.prompt("ADFS password", hide_input=True)
        return replace(options, password=password)
    return options


def _role_chooser(options: SignInOptions, out: Output) -> Any:
    from nexus_cli.adfs import SamlRole

    def choose(roles: list[SamlRole]) -> SamlRole:
        if options.adfs_role:
            for role in roles:
                if role.role_arn == options.adfs_role:
                    return role
            offered = ", ".join(r.role_arn for r in roles)
            raise UsageProblem(f"--role {options.adfs_role} is not among the roles ADFS offers: {offered}")
        if len(roles) == 1:
            return roles[0]
        if not sys.stdin.isatty() or out.as_json:
            offered = ", ".join(r.role_arn for r in roles)
            raise UsageProblem(f"ADFS offers several roles; pick one with --role: {offered}")
        for number, role in enumerate(roles, start=1):
            out.print(f"  {number}. {role.role_arn}")
        picked = typer.prompt("Role number", type=click.IntRange(1, len(roles)))
        return roles[int(picked) - 1]

    return choose


def _render(report: Any, out: Output, title: str) -> None:
    if out.as_json:
        out.json(report if isinstance(report, dict) else report.as_dict())
        return
    document = report if isinstance(report, dict) else report.as_dict()
    table = Table(title=title, show_lines=False)
    table.add_column("")
    table.add_column("Check")
    table.add_column("Result", overflow="fold")
    for check in document["checks"]:
        table.add_row(_MARK[check.get("ok")], check["name"], out.scrub(str(check.get("detail") or "")))
    out.console.print(table)
    for check in document["checks"]:
        if check.get("ok") is False:
            code = check.get("code") or "FAILED"
            out.print(f"[red]{code}[/red] ({check['name']}): {check.get('hint') or ''}")
    missing = document.get("missing_actions") or []
    if missing:
        from chalicelib.domain.permissions import group_by_service

        out.print("Missing permissions:")
        for group in group_by_service(missing):
            out.print(f"  {group['service']}: {', '.join(group['actions'])}")
    out.print("[green]All checks passed.[/green]" if document["ok"] else "[red]Some checks failed.[/red]")


def _usage(error: Exception) -> typer.Exit:
    click.echo(f"Usage error: {error}", err=True)
    return typer.Exit(2)


def _signed_in_or_report(options: SignInOptions, out: Output) -> tuple[Any, Any]:
    """(SignedIn, None) or (None, failed Report)."""
    from nexus_cli.checks import ACCOUNT_ACCESS, Check, Report
    from nexus_cli.signin import SignInFailed, sign_in

    try:
        return sign_in(options, _role_chooser(options, out)), None
    except SignInFailed as failure:
        report = Report(options.method)
        report.checks.append(Check.failed(ACCOUNT_ACCESS, failure.detail, failure.error))
        if isinstance(failure.error.details, dict) and failure.error.details.get("diagnosis"):
            report.checks[-1].detail += f" ({failure.error.details['diagnosis']})"
        report.skip_rest("sign-in failed")
        return None, report


@credentials_app.command("test")
@_with_sign_in
def credentials_test(
    sign_in: dict[str, Any],
    list_roles: ListRoles = False,
    expect_account: ExpectAccount = None,
    permission_profile: PermissionProfile = "default",
    as_json: AsJson = False,
) -> None:
    """Sign in with exactly one method and run the guide's checklist."""
    from chalicelib.domain.permissions import PROFILE_NAMES

    if expect_account is not None and not re.fullmatch(r"\d{12}", expect_account):
        raise _usage(ValueError("--expect-account must be a 12-digit account ID"))
    if permission_profile not in PROFILE_NAMES:
        raise _usage(ValueError(f"--permission-profile must be one of {', '.join(PROFILE_NAMES)}"))
    if list_roles and not sign_in["adfs_url"]:
        raise _usage(ValueError("--list-roles goes with --adfs-url"))
    try:
        options = _checked_options(**sign_in)
        out = Output(options.secrets(), as_json)
        if list_roles:
            _list_roles(options, out)
            return
        signed_in, failed = _signed_in_or_report(options, out)
    except UsageProblem as problem:
        raise _usage(problem) from None
    from nexus_cli.checks import run_checks

    report = failed or run_checks(
        signed_in, options, expect_account=expect_account, profile_name=permission_profile
    )
    _render(report, out, "Credential check")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _list_roles(options: SignInOptions, out: Output) -> None:
    """The guide's "Fetch Roles": sign in at ADFS, list the assertion's roles, no AWS call."""
    from nexus_cli.adfs import AdfsError, fetch_assertion, roles_in

    try:
        roles = roles_in(
            fetch_assertion(options.adfs_url or "", options.username or "", options.password or "")
        )
    except (AdfsError, OSError) as error:
        if out.as_json:
            out.json({"ok": False, "error": str(error), "roles": []})
        else:
            out.print(f"[red]ACCESS_DENIED[/red]: {error}")
        raise typer.Exit(EXIT_FAILED) from None
    if out.as_json:
        out.json(
            {"ok": True, "roles": [{"role_arn": r.role_arn, "principal_arn": r.principal_arn} for r in roles]}
        )
        return
    for number, role in enumerate(roles, start=1):
        out.print(f"{number}. {role.role_arn}  (via {role.principal_arn})")


# -- targets bootstrap ------------------------------------------------------------------------------
ApiUrl = Annotated[
    str | None, typer.Option("--api-url", help="Default NEXUS_API_URL or http://127.0.0.1:8000.")
]
StackName = Annotated[str, typer.Option("--stack-name", help="Bootstrap stack name in the target account.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the stack.")]


@targets_app.command("bootstrap")
@_with_sign_in
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
        raise _usage(ValueError("set NEXUS_API_TOKEN to a tenant token (nexus tokens create)"))
    try:
        options = _checked_options(**sign_in)
        out = Output([*options.secrets(), token], as_json)
        api = ApiClient(api_url or os.environ.get("NEXUS_API_URL") or DEFAULT_API_URL, token)
        try:
            target = api.target(target_id)
            template = api.bootstrap_template(target_id)
        except ApiError as error:
            out.print(f"[red]{error.code}[/red]: {error.message} {error.hint or ''}")
            raise typer.Exit(EXIT_FAILED) from None
        signed_in, failed = _signed_in_or_report(options, out)
    except UsageProblem as problem:
        raise _usage(problem) from None
    if failed is not None:
        _render(failed, out, "Sign-in to the target account")
        raise typer.Exit(EXIT_FAILED)
    from nexus_cli.checks import run_checks

    access = run_checks(signed_in, options, expect_account=str(target["account_id"]), profile_name="default")
    if not all(c.ok for c in access.checks[:3]):
        _render(access, out, "Sign-in to the target account")
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
        _render(report, out, f"Validation of target {target_id}")
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


# -- tokens create -----------------------------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id the token acts for.")],
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "nexus-cli",
) -> None:
    """Store a new tenant token's SHA-256 in the service table; print the token once."""
    from chalicelib.composition import build_services
    from chalicelib.settings import Settings, SettingsError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", tenant):
        raise _usage(ValueError("--tenant must be 1-64 letters, digits, '.', '_' or '-'"))
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        raise _usage(error) from None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        token = build_services(settings).auth.issue(tenant, label)
    except (ClientError, BotoCoreError) as error:
        from nexus_cli.signin import aws_error

        translated = aws_error(error, "PutItem")
        click.echo(f"{translated.code}: {translated.message}\n{translated.hint}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    click.echo(f"Token for tenant {tenant} (shown once; only its SHA-256 is stored):", err=True)
    click.echo(token)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
