"""Benchmark 10 (section 10): each rollout step with 2,000 items, against the timeout the template gives it.

The service is deployed from its template as local mode deploys it, except that both state machines
hold (one Wait state), so no workflow runs on its own: the benchmark invokes each step itself, through
the deployed function (its handler, under its template role), with the payload its Task state sends, and
times it. Each function's timeout is read from the deployed function. The API's two requests that touch
every item (``POST /rollouts``, ``GET /rollouts/{id}``) are timed against API Gateway's 29 s.

The steps that touch every item are NextWave (it picks a wave's item ids, and when the rollout ends,
cancels the items it never started) and RecordRolloutFailure (the same end, after a fault). The others
(StartItem, AwaitItem, PollItem, RecordItemFailure) handle one item, but read the rollout, whose size
grows with the fleet. Every call goes to the local AWS in this process, whose DynamoDB answers in well
under a millisecond where AWS takes a few: each row also counts the step's DynamoDB calls, and the
"at 10 ms a call" column adds that latency, which is what the timeout must cover on AWS.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

ITEMS = int(os.environ.get("NEXUS_BENCH_ROLLOUT_ITEMS", "2000"))
API_GATEWAY_SECONDS = 29
AWS_CALL_SECONDS = 0.010  # a DynamoDB call's latency on AWS, in the same region (single-digit ms)
QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
HOLD = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 86400, "End": True}}}


def held_template() -> dict[str, Any]:
    """The service's transformed template, its two state machines holding at their first state."""
    from localaws.template import service_template

    template = service_template()
    for machine in ("DeploymentStateMachine", "RolloutStateMachine"):
        properties = template["Resources"][machine]["Properties"]
        properties["Definition"] = HOLD
        properties["DefinitionSubstitutions"] = {}
    return template


def _dynamodb_calls(host: Any, function: str) -> int:
    return sum(
        n
        for (name, _role, action), n in host.calls.items()
        if name == function and action.startswith("dynamodb:")
    )


def measure(items: int = ITEMS) -> list[dict[str, Any]]:
    from bench.harness import local_credentials

    local_credentials()
    from chalice.test import Client

    import app as app_module
    from chalicelib.service.targets import NewTarget
    from localaws.environment import LocalAws
    from localaws.functions import FunctionHost

    targets = items // 2  # two regions each
    with LocalAws(lambda aws: FunctionHost(aws, app_module.container), template=held_template()) as aws:
        host = aws.host
        services = host.configure({"NEXUS_POLL_INITIAL_SECONDS": "1", "NEXUS_POLL_MAX_SECONDS": "2"})
        assert services is not None
        try:
            token = services.auth.issue("bench", "bench")
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            fleet = [
                services.targets.register(
                    "bench",
                    NewTarget(
                        name=f"bench-{n}",
                        account_id=f"{500000000000 + n}",
                        role_arn=f"arn:aws:iam::{500000000000 + n}:role/NexusDeploymentRole",
                        regions=("us-east-1", "eu-west-1"),
                    ),
                ).target_id
                for n in range(targets)
            ]
            functions = aws.stack.functions()
            rows: list[dict[str, Any]] = []

            def timed(name: str, limit: float, run: Any, dynamo: str | None = None) -> Any:
                before = _dynamodb_calls(host, dynamo) if dynamo else 0
                started = time.perf_counter()
                result = run()
                seconds = time.perf_counter() - started
                calls = (_dynamodb_calls(host, dynamo) - before) if dynamo else 0
                rows.append(
                    {
                        "step": name,
                        "seconds": seconds,
                        "dynamodb_calls": calls,
                        "at_aws_latency": seconds + calls * AWS_CALL_SECONDS,
                        "timeout": limit,
                    }
                )
                return result

            with Client(app_module.app) as client:
                body = {
                    "stack_name": "fleet",
                    "template_body": QUEUE,
                    "targets": [{"target_id": t} for t in fleet],
                    "strategy": {"max_concurrent": 64, "region_order": "parallel"},
                }

                def create(stack: str = "fleet") -> dict[str, Any]:
                    request = {**body, "stack_name": stack}
                    response = client.http.post(
                        "/rollouts", headers=headers, body=json.dumps(request).encode()
                    )
                    if response.status_code != 202:
                        raise RuntimeError(response.body)
                    created: dict[str, Any] = json.loads(response.body)
                    return created

                api = host.api_function
                rollout = timed(f"POST /rollouts ({items} items)", API_GATEWAY_SECONDS, create, api)
                ids = {"tenant_id": "bench", "rollout_id": rollout["rollout_id"], "wait_seconds": 1}

                def step(name: str, event: dict[str, Any]) -> Any:
                    return timed(name, functions[name].timeout, lambda: host.invoke(name, event), name)

                wave = step("NextWave", {**ids, "max_wait_seconds": 2})
                if len(wave["item_ids"]) != items:
                    raise RuntimeError(f"the wave has {len(wave['item_ids'])} items, not {items}")
                step("StartItem", {**ids, "item_id": 0})
                step(
                    "AwaitItem",
                    {**ids, "item_id": 0, "task_token": "bench-token", "progress": {"wait_seconds": 1}},
                )
                step("PollItem", {**ids, "item_id": 0, "progress": {"wait_seconds": 1}})
                failure = {"Error": "StackOperationError", "Cause": json.dumps({"code": "X", "message": "m"})}
                step("RecordItemFailure", {**ids, "item_id": 1, "error": failure, "resumable": True})
                cancel = client.http.post(
                    f"/rollouts/{rollout['rollout_id']}/cancel", headers=headers, body=b"{}"
                )
                if cancel.status_code != 202:
                    raise RuntimeError(cancel.body)
                ended = timed(
                    f"NextWave, ending the rollout ({items - 2} items cancelled)",
                    functions["NextWave"].timeout,
                    lambda: host.invoke("NextWave", {**ids, "max_wait_seconds": 2, "wave": wave}),
                    "NextWave",
                )
                if ended.get("run"):
                    raise RuntimeError(f"NextWave did not end the cancelled rollout: {ended}")

                def view() -> dict[str, Any]:
                    response = client.http.get(f"/rollouts/{rollout['rollout_id']}", headers=headers)
                    shown: dict[str, Any] = json.loads(response.body)
                    return shown

                shown = timed(f"GET /rollouts/{{id}} ({items} items)", API_GATEWAY_SECONDS, view, api)
                if shown["status"] != "CANCELLED" or shown["counts"].get("CANCELLED", 0) != items - 2:
                    raise RuntimeError(f"unexpected end: {shown['status']} {shown['counts']}")

                second = create("fleet-two")  # the first rollout's item 0 still holds "fleet"
                failed_ids = {**ids, "rollout_id": second["rollout_id"]}
                host.invoke("NextWave", {**failed_ids, "max_wait_seconds": 2})
                fault = {"Error": "States.Timeout", "Cause": "the wave timed out"}
                step_name = f"RecordRolloutFailure ({items} items cancelled)"
                timed(
                    step_name,
                    functions["RecordRolloutFailure"].timeout,
                    lambda: host.invoke("RecordRolloutFailure", {**failed_ids, "error": fault}),
                    "RecordRolloutFailure",
                )
            return rows
        finally:
            aws.host.configure(None)


def report(rows: list[dict[str, Any]], items: int = ITEMS) -> str:
    lines = [
        f"## 10. Rollout steps with {items:,} items, against their timeouts",
        "",
        "Each step invoked once as its deployed function (handler, template role and environment) on a "
        f"rollout of {items:,} items ({items // 2:,} targets x 2 regions, one wave), the state machines held so "
        "that nothing else runs (`bench/rollout_steps.py`). *local*: measured wall time on the local AWS; "
        f"*at AWS latency*: plus {AWS_CALL_SECONDS * 1000:g} ms for each DynamoDB call the step made. The timeout "
        "is the deployed function's (API Gateway's 29 s for the API's requests).",
        "",
        "| step | local | DynamoDB calls | at AWS latency | timeout | headroom |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        headroom = row["timeout"] / row["at_aws_latency"] if row["at_aws_latency"] else float("inf")
        lines.append(
            f"| {row['step']} | {row['seconds']:.2f} s | {row['dynamodb_calls']} | "
            f"{row['at_aws_latency']:.2f} s | {row['timeout']:g} s | {headroom:.0f}x |"
        )
    return "\n".join(lines) + "\n"
