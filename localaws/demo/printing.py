"""What the demo prints: a stack event's line, a rollout's plan, a stack's outputs, the Test
Credentials checklist and a failed deployment's error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape


def format_event(event: Mapping[str, str]) -> str:
    clock = event["timestamp"][11:19]
    status = event["status"]
    colour = (
        "red" if "FAILED" in status or "ROLLBACK" in status else "green" if "COMPLETE" in status else "cyan"
    )
    message = f"  [dim]{event['message']}[/dim]" if event["message"] else ""
    return (
        f"    {clock}  {event['source']:<12} {event['resource']:<16} [{colour}]{status}[/{colour}]{message}"
    )


def print_plan(console: Console, rollout: Mapping[str, Any]) -> None:
    """Each item's change set: what it adds, modifies or removes, what it replaces, what touches IAM."""
    names = {w["index"]: w["name"] for w in rollout["waves"]}
    for item in rollout["items"]:
        changes = item["changes"] or []
        replacements = sum(1 for c in changes if c["replacement"] is not False)
        iam = sum(1 for c in changes if c["iam"])
        where = f"{item['account_id']}/{item['region']} ({names[item['wave']]})"
        if not changes:
            console.print(
                f"  {where}: [yellow]no changes[/yellow] (the stack already has this configuration)"
            )
            continue
        console.print(f"  {where}: {len(changes)} change(s), {replacements} replacement(s), {iam} IAM")
        for change in changes:
            colour = {"Add": "green", "Modify": "yellow", "Remove": "red"}.get(change["action"], "white")
            extra = f"  replacement: {change['replacement']}" if change["action"] == "Modify" else ""
            extra += "  [bold]IAM[/bold]" if change["iam"] else ""
            console.print(
                f"      [{colour}]{change['action']:<6}[/{colour}] {change['logical_id']:<16} "
                f"{change['resource_type']:<22}{extra}".rstrip()
            )


def print_outputs(console: Console, outputs: Mapping[str, str]) -> None:
    width = max(map(len, outputs), default=0)
    for name, value in sorted(outputs.items()):
        console.print(f"  {name:<{width}}  {value}")


def print_report(console: Console, report: Mapping[str, Any]) -> None:
    """The validate report as the guide's Test Credentials checklist; a failure shows its fix."""
    verdict = "[green]all checks passed[/green]" if report["ok"] else "[red]credentials need fixing[/red]"
    console.print(f"  Test Credentials ({report['permission_profile']} profile): {verdict}")
    for check in report["checks"]:
        mark = "[green]\u2714[/green]" if check["ok"] else "[red]\u2718[/red]"
        console.print(f"    {mark} {check['name']:<21} {escape(check['detail'])}", soft_wrap=True)
    failed = next((c for c in report["checks"] if not c["ok"]), None)
    if failed is not None:
        console.print(f"  fix ({failed['code']}): {escape(failed['hint'] or '')}")
    for group in report["missing_actions"]:
        console.print(f"    missing {group['service']}: {', '.join(group['actions'])}")


def print_error(console: Console, deployment: Mapping[str, Any]) -> None:
    error = deployment["error"]
    console.print(f"  [red]{deployment['status']}[/red]  code {error['code']}")
    console.print(f"  reason: {error['message']}")
    console.print(f"  hint:   {error['hint']}")
