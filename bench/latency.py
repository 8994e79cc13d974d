"""Section 2 of BENCHMARKS.md: API latency through Chalice's test client against the local AWS.

Its own module so that the runner (``bench/run.py``) only runs and writes the benchmarks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.harness import QUEUE, _setup_target, local_service, percentile, wait_execution_ended, wait_settled


def bench_latency(rounds: int = 150) -> dict[str, float]:
    with local_service() as (client, services, aws):
        token = services.auth.issue("bench", "bench")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        target_id = _setup_target(client, token, aws)
        timings: dict[str, list[float]] = {"health": [], "post": [], "get": []}

        def timed(key: str, action: Callable[[], Any]) -> Any:
            start = time.perf_counter()
            result = action()
            timings[key].append(time.perf_counter() - start)
            return result

        ids: list[str] = []
        for n in range(rounds):
            timed("health", lambda: client.http.get("/health"))
            body = json.dumps(
                {"target_id": target_id, "region": "us-east-1", "stack_name": f"s{n}", "template_body": QUEUE}
            ).encode()
            response = timed("post", partial(client.http.post, "/deployments", headers=headers, body=body))
            if response.status_code != 202:
                raise RuntimeError(response.body)
            ids.append(json.loads(response.body)["deployment_id"])
            # Untimed: let the workflow finish, its last step included, so that no execution competes
            # with the measured requests (they share one process and its GIL with the local AWS).
            settled = wait_settled(client, headers, ids[-1])
            wait_execution_ended(aws, settled["operation"]["operation_id"])
            timed("get", lambda: client.http.get(f"/deployments/{ids[-1]}", headers=headers))
    result: dict[str, float] = {}
    for key, values in timings.items():
        result[f"{key}_p50_ms"] = percentile(values, 50) * 1000
        result[f"{key}_p99_ms"] = percentile(values, 99) * 1000
    for key in ("post", "get"):
        result[f"{key}_p50_ratio"] = result[f"{key}_p50_ms"] / result["health_p50_ms"]
        result[f"{key}_p99_ratio"] = result[f"{key}_p99_ms"] / result["health_p99_ms"]
    result["rounds"] = rounds
    return result
