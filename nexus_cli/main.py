"""The ``nexus`` command line: one Typer app, one sub-app per command group (``nexus_cli/commands/``).

Exit codes: 0 success, 1 a check or an operation failed (or AWS/the API refused), 2 a usage error.
Shell completion: ``nexus --install-completion`` (bash, zsh, fish, PowerShell).
"""

from __future__ import annotations

from typing import Annotated

import typer

from nexus_cli.commands import configure, credentials, deploy, deployments, local, rollouts, targets, tokens

app = typer.Typer(no_args_is_help=True)
app.command("configure")(configure.configure)
app.command("deploy")(deploy.deploy)
app.command("apply")(deploy.apply)
app.add_typer(deployments.app, name="deployments")
app.add_typer(rollouts.app, name="rollouts")
app.add_typer(targets.app, name="targets")
app.add_typer(credentials.app, name="credentials")
app.add_typer(local.app, name="local")
app.add_typer(tokens.app, name="tokens")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("nexus-deployer")
    except PackageNotFoundError:  # run from a checkout without `pip install -e .`
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"nexus {version()}")
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """NexusAI Deployer: deploy CloudFormation stacks into many AWS accounts through the service's API.

    Configure once (nexus configure, or NEXUS_API_URL and NEXUS_API_TOKEN), then: nexus targets create,
    nexus targets bootstrap, nexus deploy, nexus rollouts create. Exit codes: 0 success, 1 failure,
    2 usage error.

    Example:

        nexus deploy --target "$TARGET_ID" --region us-east-1 --stack-name app --template app.json
    """


def main() -> None:
    app()


if __name__ == "__main__":
    main()
