"""The report: section 8 of BENCHMARKS.md (``cost_report``), from ``bench_cost``'s result."""

from __future__ import annotations

from typing import Any

from bench.cost.pricing import DURATIONS, PRICE_PAGES, at_duration, cost_per_1000


def cost_report(result: dict[str, Any]) -> str:
    memory = int(result["memory_mb"])
    lines = [
        "## 8. Cost per operation (issue 14, section 4)",
        "",
        f"Counted from real runs on the local AWS (`bench/cost/`): {result['rounds']} rounds of create, "
        "update (a change set) and delete of one stack through the HTTP API, each operation alone, "
        "completion by stack events. Lambda duration is each handler's wall time in the local Lambda "
        "runner, billed per started millisecond at the configured "
        f"{memory} MB; on this shared machine it includes the local AWS answering in-process, so it is a "
        "rough stand-in for AWS's latencies. DynamoDB units are computed from item sizes as on-demand "
        "bills them. A wait that times out (600 s) adds one reconcile and one wait; its increment was "
        f"measured on a create with {result['increment_timeouts']} timed-out 1 s waits. A stack is counted "
        "as outlasting every wait that ends by its own end (a 10-minute stack: 1 timed-out wait; 1 h: 6), "
        "the safe side of a race between a wait and a stack that end together.",
        "",
        "| per operation | create | update | delete | + each timed-out wait |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [
        ("state transitions", "transitions", 1),
        ("Lambda invocations (API handler included)", "invocations", 1),
        ("Lambda billed ms", "billed_ms", 0),
        ("DynamoDB read units", "rru", 1),
        ("DynamoDB write units", "wru", 1),
        ("AWS API calls by the service", "calls", 1),
        ("EventBridge events delivered", "events", 1),
        ("API Gateway requests", "api_requests", 0),
        ("log bytes (lines and metric documents)", "log_bytes", 0),
    ]
    per = result["per_action"]
    for label, key, digits in rows:
        cells = [f"{per[a][key]:.{digits}f}" for a in ("create", "update", "delete")]
        lines.append(f"| {label} | {' | '.join(cells)} | {result['increment'][key]:.{digits}f} |")
    lines += [
        "",
        "Lambda invocations by function, over all rounds: "
        + "; ".join(
            f"{action}: " + ", ".join(f"{name} {count}" for name, count in sorted(by.items()))
            for action, by in result["invocations"].items()
        )
        + ".",
        "",
        "AWS API calls of one operation, by service and operation: "
        + "; ".join(
            f"{action}: " + ", ".join(f"{name} {count:g}" for name, count in calls.items())
            for action, calls in result["calls_by_action"].items()
        )
        + ".",
        "",
        "Cost per 1,000 operations at AWS list prices (us-east-1): Step Functions Standard $0.025 per 1,000 "
        "transitions; Lambda $0.20 per million requests and $0.0000166667 per GB-second; DynamoDB "
        "on-demand $0.625 per million write and $0.125 per million read request units (the prices since "
        "AWS halved them on 2024-11-01); EventBridge $1.00 per "
        "million events; API Gateway REST $3.50 per million requests; CloudWatch Logs $0.50 per GB "
        "ingested. Price pages: "
        + "; ".join(f"{name} {url}" for name, url in PRICE_PAGES.items())
        + ". STS and CloudFormation calls are free; X-Ray (at most one trace per request and execution, "
        "$5 per million) would add at most $0.01; Secrets Manager only for NoEcho values.",
        "",
        "| stack duration | operation | Step Functions | Lambda | DynamoDB | EventBridge | API Gateway | Logs | **all-in** |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, seconds in DURATIONS.items():
        for action in ("create", "update", "delete"):
            cost = cost_per_1000(at_duration(result, action, seconds), memory)
            shown = " | ".join(f"${value:.4f}" for value in cost.values())
            lines.append(f"| {label} | {action} | {shown} | **${sum(cost.values()):.3f}** |")
    worst = max(
        sum(cost_per_1000(at_duration(result, a, 600), memory).values())
        for a in ("create", "update", "delete")
    )
    lines += [
        "",
        f"Target: at most $0.50 per 1,000 ten-minute operations, all-in. Measured: at most **${worst:.3f}** "
        f"({'met' if worst <= 0.50 else 'NOT met'}).",
        "",
    ]
    return "\n".join(lines)
