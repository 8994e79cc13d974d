"""``make chaos``: every reliability scenario at full size, without and with its faults, into RELIABILITY.md.

Each scenario runs twice in this process, one after the other on fresh local AWSs: first without faults
(the baseline), then with them; the wall-time ratio compares the two. ``python -m bench.chaos NAME ...``
runs only the named scenarios (and rewrites RELIABILITY.md with them).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos.scenarios import SCENARIOS, THROTTLE, Figures
from localaws.faults import NO_FAULTS, FaultSettings

ROOT = Path(__file__).resolve().parents[2]
# What each scenario's fault-free baseline is run with (a scenario whose hostile input is the fault keeps it).
FULL_SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "throttling": (
        {"operations": 100, "faults": NO_FAULTS, "workers": 25},
        {"operations": 100, "faults": THROTTLE, "workers": 25},
    ),
    "crashes": ({"crash": False}, {"crash": True}),
    "lost-events": (
        {"operations": 100, "faults": NO_FAULTS},
        {"operations": 100, "faults": FaultSettings(drop_stack_events=0.2, seed=7)},
    ),
    "concurrent-creates": ({"creates": 50, "faults": NO_FAULTS}, {"creates": 50, "faults": THROTTLE}),
    "duplicate-redeploys": ({"events": 1000, "faults": NO_FAULTS}, {"events": 1000, "faults": THROTTLE}),
    "rollout": ({"targets": 100, "faults": NO_FAULTS}, {"targets": 100, "faults": THROTTLE}),
    "malformed": ({"requests": 1000, "faults": NO_FAULTS}, {"requests": 1000, "faults": THROTTLE}),
}
FAULTS_WORDS = {
    "throttling": "throttle=0.3, seed=7; 25 stacks at a time",
    "crashes": "crash_after=<each Task state's function in turn>, seed=7; on the way to RecordItemFailure "
    "(RecordRolloutFailure), time_out=PollItem (+RecordItemFailure)",
    "lost-events": "drop_stack_events=0.2, seed=7; NEXUS_EVENT_TIMEOUT_SECONDS=3, NEXUS_EVENTS_LOST_SECONDS=0",
    "concurrent-creates": "throttle=0.3, seed=7",
    "duplicate-redeploys": "throttle=0.3, seed=7",
    "rollout": "throttle=0.3, seed=7; max_concurrent 25, failure_tolerance 10%",
    "malformed": "throttle=0.3, seed=7",
}


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return str(value).replace("|", "\\|")


EARLIER = "## Earlier runs"
THIS_RUN = "This run: "


def tree() -> str:
    """The commit the run stands on, and whether the working tree differed from it."""

    def git(*args: str) -> str:
        command = ["git", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603

    commit = git("rev-parse", "--short", "HEAD") or "an unknown commit"
    changed = bool(git("status", "--porcelain", "--untracked-files=no"))
    return f"the tree of {commit}" + (" with uncommitted changes" if changed else "")


def history(previous: str) -> list[str]:
    """The earlier runs of ``previous`` (the RELIABILITY.md this run replaces): its own run, in one line,
    on top of the runs it listed, so a rerun keeps what earlier runs found."""
    if not previous.strip():
        return []
    before, _, earlier = previous.partition(EARLIER)
    run = next((line for line in before.splitlines() if line.startswith(THIS_RUN)), "")
    rows = [line for line in before.splitlines() if line.startswith("| ") and line.count(" | ") >= 10]
    scenarios = [row for row in rows if not row.startswith("| scenario |")]
    held = sum(1 for row in scenarios if row.split(" | ")[3] == "yes")
    lines = [EARLIER, ""]
    if run:
        when = run.removeprefix(THIS_RUN).split(";")[0].split(" (")[0].rstrip(".")
        lines.append(f"- **{when}**: {held} of {len(scenarios)} scenarios held.")
        broken = [row.split(" | ")[0].removeprefix("| ") for row in scenarios if row.split(" | ")[3] != "yes"]
        if broken:
            lines[-1] += f" Did not hold: {'; '.join(broken)}."
    body = earlier.strip("\n")
    return [*lines, *(["", body] if body else []), ""]


def report(
    results: list[tuple[str, Figures, Figures]], wall_s: float, provenance: str = "", previous: str = ""
) -> str:
    """RELIABILITY.md: ``provenance`` says when and on which tree the run ran; ``previous`` is the file it
    replaces, whose run and history are kept under *Earlier runs*."""
    lines = [
        "# Reliability under faults",
        "",
        "Written by `make chaos` (`bench/chaos/`): each scenario of issue 14 on the local AWS, the service's",
        "real HTTP API (Chalice's test client) and the real `.asl.json` workflows, with the local AWS's",
        "`NEXUS_LOCAL_FAULTS` (README, Local mode). Each scenario ran twice, side by side in one run: without",
        "faults, then with them; *wall ratio* is the faulted run's wall time over the fault-free one's.",
        f"The whole run took {wall_s / 60:.1f} min. A short version of every scenario runs in `make test`",
        "(`tests/reliability/`).",
        "",
        *([f"{THIS_RUN}{provenance}.", ""] if provenance else []),
        "| scenario | faults | figure that must hold | holds | runs | terminal | spurious failures "
        "| stack operations | orphan locks | wall (s) faulted / clean | wall ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, clean, faulted in results:
        title, _, figure = SCENARIOS[name]
        holds = "yes" if not faulted.broken else "NO: " + "; ".join(faulted.broken)
        ratio = faulted.wall_s / clean.wall_s if clean.wall_s else float("nan")
        lines.append(
            f"| {title} | {FAULTS_WORDS[name]} | {figure} | {holds} | {faulted.runs} | {faulted.terminal} "
            f"| {faulted.spurious_failures} | {faulted.stack_operations} | {faulted.orphan_locks} "
            f"| {faulted.wall_s:.1f} / {clean.wall_s:.1f} | {ratio:.2f} |"
        )
    lines += ["", "## What each scenario counted", ""]
    for name, clean, faulted in results:
        lines.append(f"- **{SCENARIOS[name][0]}** (with faults): {_cell(faulted.extra)}.")
        if clean.broken:
            lines.append(f"  Without faults, these did not hold: {'; '.join(clean.broken)}.")
    lines += [
        "",
        "Definitions: *runs* are operations (for the rollout and the crashed rollout steps, items; for the",
        "concurrent creates, the accepted ones; for malformed requests, requests); *terminal* ended SUCCEEDED",
        "or FAILED (items: any final status); *spurious failures* are runs that did not succeed (for the",
        "crashes, runs that did not end as their case expects: the cases of the catch-all steps fail on",
        "purpose; 5xx for malformed requests); *stack operations* are the service's CreateStack, UpdateStack,",
        "ExecuteChangeSet and DeleteStack calls (one botocore call each, whatever botocore retried inside it,",
        "and whether or not CloudFormation accepted it); *orphan locks* are stack locks still in the table",
        "once every execution ended.",
        "",
        "Crashes: one case per Task state of both definitions (Map iterations included; the scenario stops",
        "if one has none), each a create or a rollout that reaches that state (`CRASH_CASES` in",
        "`bench/chaos/scenarios.py`): RecordFailure through a template CloudFormation refuses (its one",
        "CreateStack, refused, is the operation's stack call); WaitForItemEnd and PollItem through items whose",
        "stacks outlast StartItem's wait; RecordItemFailure and RecordRolloutFailure through functions timed",
        "out on the way (`time_out`). The deployment's ReleaseLock also crashes in a rollout item's deployment.",
        "",
        "Lost stack events: an operation waits for its stack's final event (`CREATE_COMPLETE`, ...); the",
        "`*_IN_PROGRESS` events release nothing. So each operation whose final event is lost ends through",
        "its wait's timeout and one reconcile (a FallbackReconciles metric), and the check is that the two",
        "counts are equal. The scenario runs with `NEXUS_EVENTS_LOST_SECONDS=0` so that every operation",
        "waits for events; with the service's default (3600 s) the first lost event in an account and region",
        "makes the operations there poll for an hour instead, so that only the operations already waiting",
        "need the reconcile.",
        "",
        *history(previous),
    ]
    return "\n".join(lines)


def main(names: list[str]) -> None:
    logging.disable(logging.WARNING)  # the service's own log lines: thousands per scenario
    chosen = names or list(SCENARIOS)
    results: list[tuple[str, Figures, Figures]] = []
    began, started, code = time.perf_counter(), datetime.now(UTC), tree()  # the code as it is imported
    for name in chosen:
        _, run, _ = SCENARIOS[name]
        clean_kwargs, faulted_kwargs = FULL_SIZES[name]
        clean = run(**clean_kwargs)
        faulted = run(**faulted_kwargs)
        print(f"{name}: clean {clean}\n{name}: faulted {faulted}", file=sys.stderr, flush=True)
        results.append((name, clean, faulted))
    ended = datetime.now(UTC)
    scope = "" if chosen == list(SCENARIOS) else f"; only {', '.join(chosen)}"
    provenance = f"{started:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC, on {code}{scope}"
    path = ROOT / "RELIABILITY.md"
    previous = path.read_text() if path.exists() else ""
    text = report(results, time.perf_counter() - began, provenance, previous)
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
