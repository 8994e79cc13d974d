"""``make bench``: the figures behind BENCHMARKS.md, measured side by side in one run.

Absolute times on shared machines are noisy, so every figure that is a time is reported as a ratio
against a baseline measured in the same run, interleaved with it:

1. (``bench/imports.py``) Cold import of the HTTP handler module (``app``) against a bare ``import boto3``,
   each in fresh interpreters, alternating.
2. (``bench/latency.py``) p50/p99 latency of ``POST /deployments`` and ``GET /deployments/{id}`` through
   Chalice's test client against the local AWS, against ``GET /health`` in the same loop.
3. and 4. (``bench/completion.py``) State transitions and DescribeStacks calls per stack create for 5,
   30 and 120 s stacks, completion by stack events against the poll loop and a fixed 10 s poll, side by
   side on one local AWS; and their orchestration cost per 1,000 operations.
5. (``bench/fanout.py``) Fan-out: one ``POST /rollouts`` to N targets x 1 region
   (``NEXUS_BENCH_FANOUT_TARGETS``, default the issue's 1,000) against the same N deployments posted one
   at a time: items started per second, makespan, CPU and peak memory, each side in its own fresh process.
6. (``bench/local_server.py``) Local mode's HTTP server under bursts: 200 concurrent ``GET /deployments``
   and 50 concurrent ``POST /targets``, answered / reset / p50 / p99, against one request at a time.
7. (``bench/corpus.py``, run on its own) Real public templates on the local AWS.
8. and 9. (``bench/cost/``, ``bench/fleet_model.py``) What one operation costs at AWS list prices,
   counted from real runs, and a fleet model for real AWS built on the per-item counts.

``python -m bench.run imports|fanout|server|cost|rollout-steps`` (``SINGLE``) rewrites its sections (1, 5, 6,
8 and 9, or 10) and keeps the others (``bench/sections.py``).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.fanout import bench_rollout, rollout_report
from bench.harness import ROOT
from bench.imports import bench_imports, imports_section
from bench.latency import bench_latency
from bench.sections import write_sections


def write_report(imports: dict[str, float], latency: dict[str, float]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores. Times are ratios measured side by side in one run; absolute times are shown "
        "for context only (shared machines are noisy).",
        "",
        *imports_section(imports),
        "## 2. API latency through Chalice's test client against the local AWS",
        "",
        f"{int(latency['rounds'])} rounds, each `GET /health`, `POST /deployments`, `GET /deployments/{{id}}` in turn; "
        "after the POST (untimed) the round's workflow execution runs to its end, its last step included, "
        "before the GET, so no execution competes with a measured request. Each authenticated request reads its token's hash from DynamoDB; POST also "
        "validates and parses the template, writes three items in one transaction and starts an execution.",
        "",
        "| route | p50 | p99 | p50 / health p50 | p99 / health p99 |",
        "|---|---|---|---|---|",
        f"| `GET /health` | {latency['health_p50_ms']:.2f} ms | {latency['health_p99_ms']:.2f} ms | 1 | 1 |",
        f"| `POST /deployments` | {latency['post_p50_ms']:.2f} ms | {latency['post_p99_ms']:.2f} ms | "
        f"{latency['post_p50_ratio']:.1f} | {latency['post_p99_ratio']:.1f} |",
        f"| `GET /deployments/{{id}}` | {latency['get_p50_ms']:.2f} ms | {latency['get_p99_ms']:.2f} ms | "
        f"{latency['get_p50_ratio']:.1f} | {latency['get_p99_ratio']:.1f} |",
        "",
    ]
    return "\n".join(lines)


def cost_and_fleet() -> str:
    """Sections 8 and 9: the cost per operation (bench/cost/) and the fleet model built on it."""
    from bench.cost import bench_cost, cost_report, measure_rollout
    from bench.fleet_model import fleet_report

    cost = bench_cost()
    print(f"cost: {json.dumps(cost, default=str)}", flush=True)
    items = measure_rollout(4)
    print(f"rollout items: {json.dumps(items)}", flush=True)
    measured = f"one rollout to {items['items']} targets, `bench/cost/` measure_rollout"
    return cost_report(cost) + "\n" + fleet_report(items["start"], items["end"]["lambda"], measured)


def _server() -> dict[str, Any]:
    from bench.local_server import bench_local_server

    return bench_local_server()


def _server_report(result: dict[str, Any]) -> str:
    from bench.local_server import local_server_report

    return local_server_report(result)


def _steps() -> Any:
    from bench.rollout_steps import measure

    return measure()


def _steps_report(result: Any) -> str:
    from bench.rollout_steps import report

    return report(result)


# ``python -m bench.run NAME``: one benchmark alone, rewriting only its sections of BENCHMARKS.md.
# NAME: (label, measure, its sections' text from the result, which sections).
SINGLE: dict[str, tuple[str, Callable[[], Any], Callable[[Any], str], str]] = {
    "imports": ("imports", bench_imports, lambda r: "\n".join(imports_section(r)), "section 1"),
    "fanout": ("rollout", bench_rollout, rollout_report, "section 5"),
    "server": ("server", _server, _server_report, "section 6"),
    "cost": ("cost and fleet", cost_and_fleet, lambda text: text, "sections 8 and 9"),
    "rollout-steps": ("rollout steps", _steps, _steps_report, "section 10"),
}


def main_single(name: str) -> None:
    label, measure, render, which = SINGLE[name]
    result = measure()
    print(f"{label}: {result}", flush=True)
    write_sections(render(result), ROOT / "BENCHMARKS.md")
    print(f"wrote {which} of BENCHMARKS.md")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.completion import bench_completion, completion_report
    from bench.local_server import bench_local_server, local_server_report
    from bench.rollout_steps import measure, report

    imports = bench_imports()
    print(f"imports: {imports}", flush=True)
    latency = bench_latency()
    print(f"latency: {latency}", flush=True)
    completion = bench_completion()
    print(f"completion: {completion}", flush=True)
    rollout = bench_rollout()
    print(f"rollout: {rollout}", flush=True)
    steps = measure()
    print(f"rollout steps: {steps}", flush=True)
    server = bench_local_server()
    print(f"server: {server}", flush=True)
    costs = cost_and_fleet()
    reports = (write_report(imports, latency), completion_report(completion), rollout_report(rollout))
    sections = (*reports, local_server_report(server), costs, report(steps))
    write_sections("\n".join(sections), ROOT / "BENCHMARKS.md")
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] in SINGLE:
        main_single(sys.argv[1])
    else:
        main()
