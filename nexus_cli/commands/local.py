"""``nexus local admin``: act as the administrator of one account of the embedded AWS (``make run``)."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Annotated

import typer

from nexus_cli.commands.common import AsJson
from nexus_cli.output import EXIT_FAILED, Output, usage
from nexus_cli.signin import UsageProblem

app = typer.Typer(help="Local mode (make run) helpers.", no_args_is_help=True)


@app.command("admin")
def local_admin(
    account_id: Annotated[str, typer.Argument(help="A 12-digit account of the embedded AWS.")],
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="Write an AWS CLI profile (~/.aws/credentials + config) instead."),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url", help="Default: AWS_ENDPOINT_URL, else http://127.0.0.1:$NEXUS_AWS_PORT (5000)."
        ),
    ] = None,
    region: Annotated[str, typer.Option("--region", help="The profile's region.")] = "us-east-1",
    user_name: Annotated[str, typer.Option("--user-name", help="The admin IAM user.")] = "nexus-local-admin",
    as_json: AsJson = False,
) -> None:
    """Create (or reuse) an admin IAM user in ACCOUNT_ID of the embedded AWS; print `export` lines.

    The keys act in that account for any AWS tool. They are keys of the local, in-memory AWS only:
    the endpoint must be on this machine.

    Example:

        eval "$(nexus local admin 111111111111)"

        nexus local admin 111111111111 --profile target-admin && aws --profile target-admin sts get-caller-identity
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from nexus_cli.local_admin import ensure_admin, local_endpoint, profile_key_id, write_profile

    if not re.fullmatch(r"\d{12}", account_id):
        raise usage(ValueError("ACCOUNT_ID must be 12 digits"))
    try:
        endpoint = local_endpoint(endpoint_url, os.environ)
        reuse = profile_key_id(os.environ, profile) if profile else None
        keys = ensure_admin(account_id, endpoint, region, user_name, reuse_key_id=reuse)
    except UsageProblem as problem:
        raise usage(problem) from None
    except (ClientError, BotoCoreError) as error:
        Output([]).err(f"[red]LOCAL_AWS_ERROR[/red]: {error} (is make run running at {endpoint}?)")
        raise typer.Exit(EXIT_FAILED) from None
    document = {
        "account_id": keys.account_id,
        "user_arn": keys.user_arn,
        "access_key_id": keys.access_key_id,
        "endpoint_url": keys.endpoint_url,
        "region": keys.region,
        "reused": keys.reused,
    }
    if profile:
        credentials, config = write_profile(os.environ, profile, keys)
        if as_json:
            Output([]).json({**document, "profile": profile, "credentials_file": str(credentials)})
            return
        verb = "reused" if keys.reused else "written"
        print(
            f"Profile {profile} {verb}: {keys.user_arn} in {credentials} and {config} (endpoint_url {endpoint})."
        )
        print(f"Try: aws --profile {profile} sts get-caller-identity")
        return
    # Printed as they are (no scrubbing): these keys exist only in the embedded AWS, to be exported.
    if as_json:
        sys.stdout.write(
            json.dumps({**document, "secret_access_key": keys.secret_access_key}, indent=2) + "\n"
        )
        return
    print(
        "\n".join(
            [f"# {keys.user_arn}: an administrator of the local account {account_id}", *keys.export_lines()]
        )
    )
