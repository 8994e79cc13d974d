"""The runs: ``rounds`` x (create, update, delete) of one stack on the local AWS, each counted
(``run_operations``), and ``bench_cost``: the base counts and the increment of one timed-out wait."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from bench.cost.capacity import Capacity
from bench.cost.counting import Counts, Meter, mean
from bench.cost.pricing import EVENT_TIMEOUT_SECONDS, memory_mb

TARGET_ACCOUNT = "111111111111"
QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
TWO_QUEUES = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}, "R": {"Type": "AWS::SQS::Queue"}}})


def _history(aws: Any, operation_id: str) -> list[dict[str, Any]]:
    from bench.harness import wait_execution_ended

    arn = wait_execution_ended(aws, operation_id, timeout=600, poll=0.1)
    sfn = aws.account_session(aws.central.account_id).client("stepfunctions")
    return [dict(e) for e in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]]


def run_operations(stack_seconds: float, event_timeout: int, rounds: int) -> dict[str, list[Counts]]:
    """``rounds`` x (create, update, delete) of one stack, one operation at a time, each counted."""
    from bench.harness import local_credentials

    local_credentials()
    from chalice.test import Client

    import app as app_module
    from localaws.cloudformation import StackSimulation
    from localaws.environment import CENTRAL_ACCOUNT, DEFAULT_REGION, LocalAws
    from localaws.functions import FunctionHost, default_builder

    found: dict[str, list[Counts]] = {"create": [], "update": [], "delete": []}
    capacity = Capacity(CENTRAL_ACCOUNT, DEFAULT_REGION)
    observed: list[Any] = []

    def build(environment: Mapping[str, str], session: Any) -> Any:
        """Each function's services, over its role's session, whose DynamoDB calls are metered once."""
        if not any(session is seen for seen in observed):
            observed.append(session)
            capacity.observe(session)
        return default_builder(environment, session)

    with LocalAws(
        lambda aws: FunctionHost(aws, app_module.container, build),
        simulation=StackSimulation(stack_seconds=stack_seconds),
    ) as aws:
        services = aws.host.configure({"NEXUS_EVENT_TIMEOUT_SECONDS": str(event_timeout)})
        assert services is not None
        meter = Meter(capacity)
        try:
            with Client(app_module.app) as client:
                token = services.auth.issue("bench", "bench")
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                target = json.loads(
                    client.http.post(
                        "/targets",
                        headers=headers,
                        body=json.dumps(
                            {
                                "name": "cost",
                                "account_id": TARGET_ACCOUNT,
                                "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/NexusDeploymentRole",
                                "regions": [aws.region],
                            }
                        ).encode(),
                    ).body
                )
                # As its administrator would: the role with its trust policy and the default profile's
                # permissions (the local AWS enforces them).
                aws.bootstrap_role(target["role_arn"], target["trust_policy"])
                aws.forward_stack_events(TARGET_ACCOUNT)
                for n in range(rounds):
                    deployment_id = None
                    for action in ("create", "update", "delete"):
                        counts = Counts()
                        with meter.counting(counts):
                            started = time.perf_counter()
                            with meter.api_request():
                                response = _request(client, headers, action, target, deployment_id, n)
                            counts.api_requests += 1  # and one invocation of the API handler
                            counts.invocations["APIHandler"] += 1
                            counts.billed_ms += math.ceil((time.perf_counter() - started) * 1000)
                            body = json.loads(response.body)
                            deployment_id = body["deployment_id"]
                            history = _history(aws, body["operation"]["operation_id"])
                            time.sleep(0.5)  # the stack events still in flight (they end no wait now)
                        ended = services.deployments.get("bench", deployment_id)
                        if ended.operation.status.value != "SUCCEEDED":
                            raise RuntimeError(
                                f"{action} ended {ended.operation.status.value}: {ended.error}"
                            )
                        counts.transitions = sum(1 for e in history if e["type"].endswith("StateEntered"))
                        counts.timeouts = sum(1 for e in history if e["type"] == "TaskTimedOut")
                        found[action].append(counts)
        finally:
            aws.drain_executions()
            aws.host.configure(None)
    return found


def _request(
    client: Any, headers: dict[str, str], action: str, target: dict[str, Any], deployment_id: Any, n: int
) -> Any:
    if action == "create":
        body = {
            "target_id": target["target_id"],
            "region": "us-east-1",
            "stack_name": f"cost-{n}",
            "template_body": QUEUE,
        }
        response = client.http.post("/deployments", headers=headers, body=json.dumps(body).encode())
    elif action == "update":
        body = {"template_body": TWO_QUEUES}
        response = client.http.put(
            f"/deployments/{deployment_id}", headers=headers, body=json.dumps(body).encode()
        )
    else:
        response = client.http.delete(f"/deployments/{deployment_id}", headers=headers)
    if response.status_code != 202:
        raise RuntimeError(f"{action}: {response.status_code} {response.body!r}")
    return response


def bench_cost(rounds: int = 3, timeout_stack_seconds: float = 3.5) -> dict[str, Any]:
    """The base counts (5 s stacks, every wait ended by its event) and the increment of one wait that
    timed out (1 s waits on a stack that takes ``timeout_stack_seconds``)."""
    base = run_operations(stack_seconds=5, event_timeout=EVENT_TIMEOUT_SECONDS, rounds=rounds)
    slow = run_operations(stack_seconds=timeout_stack_seconds, event_timeout=1, rounds=1)
    slow_create, base_create = slow["create"][0], mean(base["create"])
    if slow_create.timeouts < 1:
        raise RuntimeError("no wait timed out: the increment cannot be measured")
    increment = {
        key: (value - base_create[key]) / slow_create.timeouts for key, value in slow_create.scaled(1).items()
    }
    calls_by_action = {}
    for action, counts in base.items():
        calls: Counter[str] = Counter()
        for one in counts:
            calls.update(one.calls)
        calls_by_action[action] = {name: count / len(counts) for name, count in sorted(calls.items())}
    return {
        "rounds": rounds,
        "memory_mb": memory_mb(),
        "per_action": {action: mean(counts) for action, counts in base.items()},
        "invocations": {
            action: dict(sum((c.invocations for c in counts), Counter())) for action, counts in base.items()
        },
        "calls_by_action": calls_by_action,
        "increment": increment,
        "increment_timeouts": slow_create.timeouts,
    }
