"""The sign-in options shared by every command that signs in to AWS (four methods, optional MFA).

Typer reads a command's options from its signature, so ``with_sign_in`` adds these options to the
command's signature and hands their values to the command as one ``sign_in`` dict.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import click
import typer

from nexus_cli.output import Output
from nexus_cli.signin import DEFAULT_REGION, SignInOptions, UsageProblem

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


def checked_options(**fields: Any) -> SignInOptions:
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


def with_sign_in(command: Callable[..., None]) -> Callable[..., None]:
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


def signed_in_or_report(options: SignInOptions, out: Output) -> tuple[Any, Any]:
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
