"""The ``nexus`` command line: one Typer app, one sub-app per command group (``nexus_cli/commands/``).

Exit codes: 0 success, 1 a check or an operation failed (or AWS/the API refused), 2 a usage error.
"""

from __future__ import annotations

import typer

from nexus_cli.commands import configure, credentials, deploy, deployments, targets, tokens

app = typer.Typer(help="NexusAI Deployer operator CLI.", no_args_is_help=True, add_completion=False)
app.command("configure")(configure.configure)
app.command("deploy")(deploy.deploy)
app.command("apply")(deploy.apply)
app.add_typer(deployments.app, name="deployments")
app.add_typer(credentials.app, name="credentials")
app.add_typer(targets.app, name="targets")
app.add_typer(tokens.app, name="tokens")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
