"""What every command prints: scrubbed text or one JSON document, the check report, the exit codes.

Exit codes: 0 success, 1 a check or an operation failed (or AWS/the API refused), 2 a usage error,
raised before any AWS or API call. All output goes through ``Output``, which scrubs access key IDs and
the run's secrets as a last line of defence; nothing is logged.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

EXIT_FAILED = 1
PIPE_WIDTH = 200
_KEY_ID_RE = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
_MARK = {True: "[green]✔[/green]", False: "[red]✘[/red]", None: "[yellow]-[/yellow]"}


class Output:
    """Every line the CLI prints, scrubbed of key IDs and of this run's secrets."""

    def __init__(self, secrets: list[str], as_json: bool = False) -> None:
        self._secrets = [s for s in secrets if len(s) >= 4]
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        if not self.console.is_terminal and "COLUMNS" not in os.environ:
            self.console.width = PIPE_WIDTH  # ids in tables stay whole in logs and pipes
        self.errors = Console(highlight=False, soft_wrap=True, stderr=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "****")
        return _KEY_ID_RE.sub(lambda m: m.group(1) + "****************", text)

    def print(self, text: str = "") -> None:
        self.console.print(self.scrub(text))

    def line(self, text: str, style: str | None = None) -> None:
        """Plain text (user or AWS text: never read as markup), scrubbed."""
        self.console.print(Text(self.scrub(text), style=style or ""), soft_wrap=True)

    def err(self, text: str) -> None:
        """A line on stderr (errors, hints), so stdout stays the command's result."""
        self.errors.print(self.scrub(text))

    def json(self, document: Any) -> None:
        sys.stdout.write(self.scrub(json.dumps(document, indent=2, default=str)) + "\n")


def render(report: Any, out: Output, title: str) -> None:
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


def usage(error: Exception) -> typer.Exit:
    click.echo(f"Usage error: {error}", err=True)
    return typer.Exit(2)
