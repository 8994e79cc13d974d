"""Section 6 of BENCHMARKS.md: local mode's HTTP server under bursts of concurrent connections.

Issue 12 measured Chalice's dev server as it was (a listen backlog of 5): of 200 concurrent
``GET /deployments``, 48 timed out at 60 s, and a burst of 50 POSTs saw 22 connection resets. Here a
real ``python -m localaws.run`` (``localaws/server.py``: backlog 1,024) gets, in rounds, 200
``GET /deployments`` at once and 50 ``POST /targets`` at once, each request on its own connection
(``bench/http_load.py``). The baseline for the times is the same ``GET /deployments`` one at a time,
against the same server in the same run.

``python -m bench.run server`` reruns this section alone.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import tempfile
import time
from typing import Any

from bench.http_load import Burst, Request, burst
from localaws.demo import Api, start_service, stop_service, target_body, wait_until_healthy
from localaws.server import free_port

READS = 200
WRITES = 50
ROUNDS = 3
SEQUENTIAL = 50
SLOW_SECONDS = 10.0
QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})


def bench_local_server(reads: int = READS, writes: int = WRITES, rounds: int = ROUNDS) -> dict[str, Any]:
    token = "nxs_" + secrets.token_urlsafe(24)
    api_port, aws_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NEXUS_", "MOTO_"))},
        "NEXUS_PORT": str(api_port),
        "NEXUS_AWS_PORT": str(aws_port),
        "NEXUS_API_TOKEN": token,
        "NEXUS_LOCAL_STACK_SECONDS": "0",
    }
    url = f"http://127.0.0.1:{api_port}"
    with tempfile.TemporaryFile() as log:
        service = start_service(env, log)
        try:
            wait_until_healthy(url, service, timeout=120)
            return _measure(Api(url, token), url, token, reads, writes, rounds)
        finally:
            stop_service(service)


def _measure(api: Api, url: str, token: str, reads: int, writes: int, rounds: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    target = api.ok("POST", "/targets", target_body("bench", "111111111111"), status=201)
    for n in range(10):  # a page with something in it; the target has no role, so each ends FAILED
        body = {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": f"s{n}",
            "template_body": QUEUE,
        }
        api.ok("POST", "/deployments", body, status=202)
    time.sleep(2)
    one_at_a_time = []
    for _ in range(SEQUENTIAL):
        began = time.monotonic()
        api.ok("GET", "/deployments", status=200)
        one_at_a_time.append(time.monotonic() - began)
    read_bursts = [burst(url, [Request("GET", "/deployments", auth)] * reads) for _ in range(rounds)]
    write_bursts = [
        burst(
            url,
            [
                Request("POST", "/targets", auth, target_body(f"w{r}-{n}", "222222222222"))
                for n in range(writes)
            ],
        )
        for r in range(rounds)
    ]
    return {
        "reads": reads,
        "writes": writes,
        "rounds": rounds,
        "sequential_p50_s": statistics.median(one_at_a_time),
        "read": [_figures(b, 200) for b in read_bursts],
        "write": [_figures(b, 201) for b in write_bursts],
    }


def _figures(result: Burst, ok_status: int) -> dict[str, Any]:
    return {
        "sent": len(result.outcomes),
        "answered": result.answered,
        "ok": result.statuses.get(ok_status, 0),
        "resets": result.resets,
        "timeouts": result.errors.get("timeout", 0),
        "other_errors": sum(n for e, n in result.errors.items() if e not in ("reset", "timeout")),
        "p50_s": result.percentile(50),
        "p99_s": result.percentile(99),
        "max_s": max(o.seconds for o in result.outcomes),
        "over_10_s": result.slower_than(SLOW_SECONDS),
    }


def local_server_report(r: dict[str, Any]) -> str:
    base = r["sequential_p50_s"]

    def rows(kind: str, label: str) -> list[str]:
        return [
            f"| {label} {n + 1} | {f['sent']} | {f['answered']} ({f['ok']} {'200' if kind == 'read' else '201'}) | "
            f"{f['resets']} | {f['timeouts']} | {f['p50_s']:.2f} s (**{f['p50_s'] / base:.0f}x**) | "
            f"{f['p99_s']:.2f} s (**{f['p99_s'] / base:.0f}x**) | {f['max_s']:.2f} s | {f['over_10_s']} |"
            for n, f in enumerate(r[kind])
        ]

    return "\n".join(
        [
            "## 6. Local mode's HTTP server under a burst of connections (issue 12, section 4)",
            "",
            f"A real `python -m localaws.run` (listen backlog 1,024, `localaws/server.py`); each request on its own "
            f"connection, all released at once (`bench/http_load.py`): {r['rounds']} rounds of {r['reads']} "
            f"`GET /deployments` (a page of 10), then {r['rounds']} rounds of {r['writes']} `POST /targets`. The "
            f"baseline is the same `GET /deployments` sent one at a time to the same server: p50 "
            f"{base * 1000:.0f} ms. A burst's latency is a queue: one Python process (the API and the embedded "
            "AWS share its GIL) answers the requests in turn, so p50 and p99 grow with the burst's size; the "
            "target is that every request is answered, none reset, none over 10 s. Issue 12 measured the "
            "stock Chalice server (backlog 5): 48 of 200 reads timed out at 60 s, 22 of 50 POSTs were reset.",
            "",
            "| burst | sent | answered | resets | timeouts (60 s) | p50 (x one at a time) | p99 (x one at a time) | max | over 10 s |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows("read", "200 reads, round"),
            *rows("write", "50 writes, round"),
            "",
        ]
    )
