"""Benchmarks 2 and 3: what waiting for a stack costs, by stack duration and by way of waiting.

For simulated stacks of 5, 30 and 120 s, one create in each of three modes runs side by side on the
same local AWS (real definition, real timings: moto's Wait state and the simulated stack both take
real seconds):

* ``events``: completion by CloudFormation's Stack Status Change events (``NEXUS_COMPLETION_MODE=events``,
  the default), forwarded from the target account as the bootstrap template's rule does;
* ``polled``: the poll loop (5 s, x1.5, capped at 60 s: ``NEXUS_COMPLETION_MODE=poll``);
* ``fixed 10 s``: the poll loop at a fixed 10 s, what a plain poll-every-10-seconds tool does.

Measured per operation: state transitions (states entered, from the execution's history) and the
DescribeStacks calls made for that stack (every botocore call in the process is counted by stack).
Benchmark 3 prices the transitions at Step Functions' $0.025 per 1,000.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.calls import observing_calls, stack_name

PRICE_PER_TRANSITION = 0.025 / 1000
MODES: dict[str, dict[str, str]] = {
    "events": {
        "NEXUS_COMPLETION_MODE": "events",
        "NEXUS_POLL_INITIAL_SECONDS": "5",
        "NEXUS_POLL_MAX_SECONDS": "60",
    },
    "polled": {
        "NEXUS_COMPLETION_MODE": "poll",
        "NEXUS_POLL_INITIAL_SECONDS": "5",
        "NEXUS_POLL_MAX_SECONDS": "60",
    },
    "fixed 10 s": {
        "NEXUS_COMPLETION_MODE": "poll",
        "NEXUS_POLL_INITIAL_SECONDS": "10",
        "NEXUS_POLL_MAX_SECONDS": "10",
    },
}
TARGET_ACCOUNT = "111111111111"
QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})


@contextmanager
def _counting_describe_stacks() -> Iterator[Counter[str]]:
    """DescribeStacks calls by stack name, from any thread, while the block runs."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def count(operation: str, params: Any) -> None:
        if operation == "DescribeStacks":
            with lock:
                counts[stack_name(params)] += 1

    with observing_calls(count):
        yield counts


def measure(stack_seconds: float) -> list[dict[str, Any]]:
    """One create per mode, side by side, on one local AWS whose stacks take ``stack_seconds``."""
    from bench.harness import local_credentials

    local_credentials()
    import app as app_module
    from chalicelib.service.deployments import NewDeployment
    from chalicelib.service.targets import NewTarget
    from localaws.cloudformation import StackSimulation
    from localaws.environment import LocalAws
    from localaws.functions import FunctionHost

    simulation = StackSimulation(stack_seconds=stack_seconds)
    with LocalAws(lambda aws: FunctionHost(aws, app_module.container), simulation=simulation) as aws:
        aws.host.configure(MODES["events"])  # the steps: the mode travels in the input
        api = aws.host.api_function
        by_mode = {mode: aws.host.services_with(api, **env) for mode, env in MODES.items()}
        try:
            services = by_mode["events"]
            target = services.targets.register(
                "bench",
                NewTarget(
                    name="bench",
                    account_id=TARGET_ACCOUNT,
                    role_arn=f"arn:aws:iam::{TARGET_ACCOUNT}:role/NexusDeploymentRole",
                    regions=("us-east-1",),
                ),
            )
            aws.bootstrap_role(target.role_arn, target.trust_policy)
            aws.forward_stack_events(TARGET_ACCOUNT)
            with _counting_describe_stacks() as describe_stacks:
                started = {
                    mode: by_mode[mode].deployments.create(
                        "bench",
                        NewDeployment(
                            target_id=target.target_id,
                            region="us-east-1",
                            stack_name=f"wait-{index}",
                            template_body=QUEUE,
                            parameters={},
                            tags={},
                        ),
                    )
                    for index, mode in enumerate(MODES)
                }
                histories = {mode: _history(aws, d.operation.operation_id) for mode, d in started.items()}
            results = []
            for index, (mode, deployment) in enumerate(started.items()):
                history = histories[mode]
                final = services.deployments.get("bench", deployment.deployment_id)
                if final.status.value != "ACTIVE":
                    raise RuntimeError(f"{mode}: the create ended {final.status.value}: {final.error}")
                results.append(
                    {
                        "stack_seconds": stack_seconds,
                        "mode": mode,
                        "transitions": sum(1 for e in history if e["type"].endswith("StateEntered")),
                        "describe_stacks": describe_stacks[f"wait-{index}"],
                        "timeouts": sum(1 for e in history if e["type"] == "TaskTimedOut"),
                    }
                )
            return results
        finally:
            aws.drain_executions()
            aws.host.configure(None)


def _history(aws: Any, operation_id: str, timeout: float = 600) -> list[dict[str, Any]]:
    from bench.harness import wait_execution_ended

    arn = wait_execution_ended(aws, operation_id, timeout, poll=0.2)
    sfn = aws.account_session(aws.central.account_id).client("stepfunctions")
    return [dict(e) for e in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]]


def bench_completion(durations: tuple[float, ...] = (5, 30, 120)) -> list[dict[str, Any]]:
    return [row for seconds in durations for row in measure(seconds)]


def completion_report(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## 3. State transitions and DescribeStacks per stack operation (issue 5, benchmark 2)",
        "",
        "One create per mode, the three modes side by side on one local AWS, for each simulated stack "
        "duration (`bench/completion.py`). *events*: completion by Stack Status Change events "
        "(`NEXUS_COMPLETION_MODE=events`, the default); *polled*: the poll loop (5 s, x1.5, capped at 60 s); "
        "*fixed 10 s*: a poll every 10 s. Transitions are the states entered (the execution's history); "
        "DescribeStacks counts every call for that stack in the process. Target for *events*: at most 15 "
        "transitions and 2 DescribeStacks whatever the duration.",
        "",
        "| stack duration | mode | state transitions | DescribeStacks | fallback reconciles | vs events (transitions) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    events = {r["stack_seconds"]: r for r in rows if r["mode"] == "events"}
    for r in rows:
        ratio = r["transitions"] / events[r["stack_seconds"]]["transitions"]
        lines.append(
            f"| {r['stack_seconds']:g} s | {r['mode']} | {r['transitions']} | {r['describe_stacks']} | "
            f"{r['timeouts']} | {ratio:.2f}x |"
        )
    lines += [
        "",
        "## 4. Orchestration cost per 1,000 stack operations (issue 5, benchmark 3)",
        "",
        "Step Functions Standard at $0.025 per 1,000 state transitions, from the transitions measured above "
        "(Lambda and API calls not included).",
        "",
        "| stack duration | " + " | ".join(MODES) + " |",
        "|---:|" + "---:|" * len(MODES),
    ]
    for seconds in sorted(events):
        cells = [
            f"${r['transitions'] * PRICE_PER_TRANSITION * 1000:.3f}"
            for mode in MODES
            for r in rows
            if r["stack_seconds"] == seconds and r["mode"] == mode
        ]
        lines.append(f"| {seconds:g} s | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    durations = tuple(float(a) for a in sys.argv[1:]) or (5, 30, 120)
    print(completion_report(bench_completion(durations)))
