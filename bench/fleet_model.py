"""A fleet model for real AWS: which quota binds first, and how long a rollout of 10-minute stacks to
1,000 and 10,000 accounts x 4 regions takes, for this service and for CloudFormation StackSets.

Inputs: the per-item calls measured on the local AWS (``bench/cost/rollout.py``'s run: every AWS call
the service's code made, every Lambda invocation and its duration, every execution's transitions) and
the quotas of ``shared/notes/aws-rules.md`` (us-east-1). The model, short enough to check by hand:

* Items start in parallel up to the limits. A quota of R calls/s (bucket B) and c calls per item at
  the start lets ``R / c`` items start per second after a burst of ``B / c``; a concurrency quota of
  N, with s seconds of it held per item while starting, lets ``N / s`` start per second (Little's law).
  The smallest rate binds: it is the start rate.
* A rollout holds at most 2,000 items (MAX_ROLLOUT_ITEMS), so a fleet is several rollouts, run at once;
  each is one Distributed Map run (at most 10,000 children each, 1,000 open runs per account).
* Makespan = the time to start every item + the stack's duration + the time the last item takes to end.

StackSets: one stack set operation runs at most 100 stack instances at once, so one stack set's
makespan is ``ceil(instances / 100)`` stack durations. A team can split the fleet into several stack sets
and run their operations at once: the model gives that too, with as many stack sets as this service's
rollouts, up to 10,000 instance operations at once per region (the fleet's regions taken evenly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

STACK_SECONDS = 600  # the 10-minute stacks of the issue
REGIONS = 4
MAX_ROLLOUT_ITEMS = 2_000  # chalicelib/domain/rollouts.py
RULES = "shared/notes/aws-rules.md, section 'Quotas that bound a fleet' (us-east-1)"


@dataclass(frozen=True)
class Quota:
    name: str
    rate: float  # per second (refill); for a concurrency quota, the number at once
    bucket: float  # the burst; 0 for a concurrency quota
    concurrency: bool = False


QUOTAS = {
    "StartExecution": Quota("Step Functions StartExecution (1,300 bucket, 300/s)", 300, 1300),
    "transitions": Quota("Step Functions state transitions (5,000 bucket, 1,500/s)", 1500, 5000),
    "SendTaskSuccess": Quota("Step Functions SendTaskSuccess (3,000 bucket, 500/s)", 500, 3000),
    "AssumeRole": Quota("STS AssumeRole + GetCallerIdentity (600/s per account)", 600, 0),
    "lambda": Quota("Lambda concurrent executions (1,000 per region)", 1000, 0, concurrency=True),
}
STACKSETS_PER_OPERATION = 100  # concurrent stack instances in one StackSets operation
STACKSETS_PER_REGION = 10_000  # concurrent stack instance operations per region


def start_rates(per_item: dict[str, float], items: int) -> dict[str, float]:
    """Items started per second that each quota allows, for ``items`` items started at once.

    ``per_item`` holds each quota's use by one item while it starts (calls, or Lambda seconds)."""
    rates = {}
    for key, quota in QUOTAS.items():
        use = per_item.get(key, 0.0)
        if use <= 0:
            continue
        if quota.concurrency:
            rates[key] = quota.rate / use
            continue
        burst = min(items, quota.bucket / use)  # items the bucket starts at once
        rest = items - burst
        seconds = rest * use / quota.rate
        rates[key] = items / seconds if seconds > 0 else math.inf
    return rates


def makespan(per_item_start: dict[str, float], end_seconds: float, accounts: int) -> dict[str, Any]:
    items = accounts * REGIONS
    rates = start_rates(per_item_start, items)
    binding = min(rates, key=lambda key: rates[key])
    start = items / rates[binding] if math.isfinite(rates[binding]) else 0.0
    return {
        "accounts": accounts,
        "items": items,
        "rollouts": math.ceil(items / MAX_ROLLOUT_ITEMS),
        "binding": QUOTAS[binding].name,
        "start_seconds": start,
        "makespan_seconds": start + STACK_SECONDS + end_seconds,
        "rates": rates,
    }


def stacksets(accounts: int, operations: int = 1) -> dict[str, Any]:
    """``operations`` stack set operations at once (the fleet split into as many stack sets)."""
    instances = accounts * REGIONS
    at_once = min(operations * STACKSETS_PER_OPERATION, REGIONS * STACKSETS_PER_REGION)
    return {
        "instances": instances,
        "waves": math.ceil(instances / at_once),
        "makespan_seconds": math.ceil(instances / at_once) * STACK_SECONDS,
    }


def fleet(per_item_start: dict[str, float], end_seconds: float) -> list[dict[str, Any]]:
    rows = [makespan(per_item_start, end_seconds, accounts) for accounts in (1_000, 10_000)]
    return [
        {
            **row,
            "stacksets": stacksets(row["accounts"]),
            "stacksets_split": stacksets(row["accounts"], row["rollouts"]),
        }
        for row in rows
    ]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min" if seconds < 3 * 3600 else f"{seconds / 3600:,.1f} h"


def fleet_report(per_item_start: dict[str, float], end_seconds: float, measured: str) -> str:
    rows = fleet(per_item_start, end_seconds)
    lines = [
        "## 9. Fleet model: 1,000 and 10,000 accounts x 4 regions on real AWS (`bench/fleet_model.py`)",
        "",
        f"Per-item inputs measured on the local AWS ({measured}): while an item starts it makes "
        + ", ".join(f"{value:.2f} {key}" for key, value in sorted(per_item_start.items()))
        + f" (Lambda: seconds of handler time); its end takes {end_seconds:.1f} s of steps after the stack "
        f"settles. Quotas from {RULES}. Stacks take 10 minutes. Items start in parallel, rollouts of at "
        "most 2,000 items run at once (one Distributed Map run each, far below its 10,000 children).",
        "",
        "| fleet | items | rollouts | start rate allowed by each quota (items/s) | binds first | time to start all | makespan | StackSets, one stack set (100 instances at once) | StackSets, one stack set per rollout, all at once |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        rates = ", ".join(
            f"{QUOTAS[k].name.split(' (')[0]} {v:,.0f}"
            for k, v in sorted(row["rates"].items(), key=lambda kv: kv[1])
        )
        lines.append(
            f"| {row['accounts']:,} accounts x {REGIONS} regions | {row['items']:,} | {row['rollouts']} | {rates} | "
            f"{row['binding']} | {row['start_seconds']:,.0f} s | **{_minutes(row['makespan_seconds'])}** | "
            f"{row['stacksets']['waves']:,} waves: **{_minutes(row['stacksets']['makespan_seconds'])}** | "
            f"{row['stacksets_split']['waves']:,} waves: "
            f"**{_minutes(row['stacksets_split']['makespan_seconds'])}** |"
        )
    faster = {**per_item_start, "lambda": 1.0}
    lines += [
        "",
        "The same model with 1 s of Lambda per item start (what its ~20 AWS calls take on AWS at ~50 ms "
        "each, instead of this loaded machine's time): "
        + "; ".join(
            f"{row['accounts']:,} accounts: {row['binding']} binds, {_minutes(row['makespan_seconds'])}"
            for row in fleet(faster, end_seconds)
        )
        + ".",
    ]
    lines += [
        "",
        "What the model leaves out: CloudFormation's own pace in each target account (unpublished read "
        "rates; each account here runs 4 stacks, one per region, with 2 DescribeStacks each), and the "
        "Lambda durations, which are this machine's (the local AWS answers in-process): on AWS the calls "
        "are network round trips of similar size, so the Lambda row is an estimate, not a measurement.",
        "",
    ]
    return "\n".join(lines)
