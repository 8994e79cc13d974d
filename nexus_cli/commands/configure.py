"""``nexus configure``: the API URL and token in a file only you can read (mode 0600)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from nexus_cli.commands.common import AsJson
from nexus_cli.config import ConfigProblem, check_url, resolve, save
from nexus_cli.output import Output, usage


def configure(
    api_url: Annotated[str | None, typer.Option("--api-url", help="The service's API URL.")] = None,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from standard input (one line).")
    ] = False,
    show: Annotated[bool, typer.Option("--show", help="Print the configuration in force and stop.")] = False,
    as_json: AsJson = False,
) -> None:
    """Store the API URL and token in the config file (mode 0600); NEXUS_API_URL / NEXUS_API_TOKEN override it.

    The token is never an argument (it would land in your shell history): it comes from
    --token-stdin or a no-echo prompt. The file is $NEXUS_CONFIG_FILE, else
    $XDG_CONFIG_HOME/nexus/config.json (~/.config/nexus/config.json).

    Example:

        echo "$TOKEN" | nexus configure --api-url https://api.example.com --token-stdin

        nexus configure --show
    """
    try:
        current = resolve(os.environ)
        if show:
            _show(Output([current.token], as_json), current.public())
            return
        url = api_url
        token: str | None = None
        if token_stdin:
            token = sys.stdin.readline().strip()
            if not token:
                raise ConfigProblem("--token-stdin read an empty line")
        interactive = sys.stdin.isatty() and not token_stdin
        if url is None and interactive:
            url = typer.prompt("API URL", default=current.api_url)
        if token is None and interactive:
            token = (
                typer.prompt("API token (empty: keep the current one)", default="", hide_input=True) or None
            )
        url = check_url(url or current.api_url)
        token = token or current.token
        if not token:
            raise ConfigProblem(
                "no token given: pipe it to --token-stdin, or run nexus configure in a terminal"
            )
        save(current.path, url, token)
        stored = resolve(
            {k: v for k, v in os.environ.items() if k not in ("NEXUS_API_URL", "NEXUS_API_TOKEN")}
        )
    except ConfigProblem as problem:
        raise usage(problem) from None
    _show(Output([token], as_json), stored.public(), saved=True)


def _show(out: Output, document: dict[str, object], saved: bool = False) -> None:
    if out.as_json:
        out.json(document)
        return
    if saved:
        out.line(f"Saved {document['config_file']} (mode 0600).")
    out.line(f"api_url: {document['api_url']}  (from {document['api_url_from']})")
    token = document["token"]
    out.line(f"token:   {token}  (from {document['token_from']})" if token else "token:   not set")
    if not saved:
        out.line(f"file:    {document['config_file']}")
