"""``nexus credentials test``: the product guide's "Test Credentials" button as a command."""

from __future__ import annotations

import re
from typing import Any

import typer

from nexus_cli.commands.sign_in import (
    AsJson,
    ExpectAccount,
    ListRoles,
    PermissionProfile,
    checked_options,
    signed_in_or_report,
    with_sign_in,
)
from nexus_cli.output import EXIT_FAILED, Output, render, usage
from nexus_cli.signin import SignInOptions, UsageProblem

app = typer.Typer(help="Test AWS credentials the way the deployer will use them.", no_args_is_help=True)


@app.command("test")
@with_sign_in
def credentials_test(
    sign_in: dict[str, Any],
    list_roles: ListRoles = False,
    expect_account: ExpectAccount = None,
    permission_profile: PermissionProfile = "default",
    as_json: AsJson = False,
) -> None:
    """Sign in with exactly one method and run the guide's checklist (exit 0 all pass, 1 a check fails).

    Example:

        nexus credentials test --profile target-admin --expect-account 111111111111
    """
    from chalicelib.domain.permissions import PROFILE_NAMES

    if expect_account is not None and not re.fullmatch(r"\d{12}", expect_account):
        raise usage(ValueError("--expect-account must be a 12-digit account ID"))
    if permission_profile not in PROFILE_NAMES:
        raise usage(ValueError(f"--permission-profile must be one of {', '.join(PROFILE_NAMES)}"))
    if list_roles and not sign_in["adfs_url"]:
        raise usage(ValueError("--list-roles goes with --adfs-url"))
    try:
        options = checked_options(**sign_in)
        out = Output(options.secrets(), as_json)
        if list_roles:
            _list_roles(options, out)
            return
        signed_in, failed = signed_in_or_report(options, out)
    except UsageProblem as problem:
        raise usage(problem) from None
    from nexus_cli.checks import run_checks

    report = failed or run_checks(
        signed_in, options, expect_account=expect_account, profile_name=permission_profile
    )
    render(report, out, "Credential check")
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
