"""``nexus tokens create``: the first tenant token on AWS, written straight to the service table."""

from __future__ import annotations

import os
import re
from typing import Annotated

import click
import typer

from nexus_cli.output import EXIT_FAILED, usage

app = typer.Typer(help="Tenant API tokens.", no_args_is_help=True)


@app.command("create")
def tokens_create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id the token acts for.")],
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "nexus-cli",
) -> None:
    """Store a new tenant token's SHA-256 in the service table; print the token once.

    Example:

        NEXUS_TABLE_NAME=nexus-table NEXUS_SERVICE_ROLE_ARN=arn:aws:iam::123456789012:role/svc nexus tokens create --tenant team-a
    """
    from chalicelib.composition import build_services
    from chalicelib.settings import Settings, SettingsError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", tenant):
        raise usage(ValueError("--tenant must be 1-64 letters, digits, '.', '_' or '-'"))
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        raise usage(error) from None
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
