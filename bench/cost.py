"""Benchmark 6: what one operation costs, counted from real runs on the local AWS and priced at AWS's
list prices (section 8 of BENCHMARKS.md).

Each operation (a create, an update, a delete of one stack) runs alone, through the HTTP API and the
real workflow, with completion by stack events (the default), and is counted from start to end:

* state transitions: the states entered, from its execution's history;
* Lambda invocations and their billed duration: each handler's wall time in the local Lambda runner
  (localaws/lambda_runner.py), rounded up to the millisecond as Lambda bills, at the configured
  memory (.chalice/config.json); plus the API request's own invocation of the API handler;
* DynamoDB read and write units, computed from item sizes as on-demand bills them (reads: 4 KB,
  halved when eventually consistent; writes: 1 KB, the larger of the item before and after;
  transactions: twice), the sizes read from the local DynamoDB itself;
* AWS API calls by service, made by the service's own code (the handlers and the API request), not
  by AWS calling itself (Step Functions invoking a Lambda task);
* EventBridge events: the target account's stack events forwarded to the service's bus;
* log bytes: the functions' log lines and metric documents (CloudWatch Logs ingestion).

A wait for a stack event that times out (the default wait is 600 s) costs one more reconcile and one
more wait. That increment is measured on its own: a create whose stack outlasts several short waits,
minus a create whose event came first, divided by the number of waits that timed out. An operation
on a stack of duration ``d`` then costs the base plus ``ceil(d / 600) - 1`` such increments (the
event ends the last wait): 0 for 5 s and 10 min stacks, 5 for 1 h.
"""

from __future__ import annotations

import io
import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_ACCOUNT = "111111111111"
QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
TWO_QUEUES = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}, "R": {"Type": "AWS::SQS::Queue"}}})
EVENT_TIMEOUT_SECONDS = 600  # NEXUS_EVENT_TIMEOUT_SECONDS' default
DURATIONS = {"5 s": 5, "10 min": 600, "1 h": 3600}

# AWS list prices (us-east-1), from the pages named in BENCHMARKS.md.
PRICES = {
    "transition": 0.025 / 1000,  # Step Functions Standard, per state transition
    "lambda_request": 0.20 / 1_000_000,
    "gb_second": 0.0000166667,  # Lambda, x86
    "wru": 1.25 / 1_000_000,  # DynamoDB on-demand write request unit
    "rru": 0.25 / 1_000_000,  # DynamoDB on-demand read request unit
    "event": 1.00 / 1_000_000,  # EventBridge, events delivered across accounts
    "api_request": 3.50 / 1_000_000,  # API Gateway REST API, first 333 million a month
    "log_gb": 0.50,  # CloudWatch Logs ingestion, per GB
}
PRICE_PAGES = {
    "Step Functions": "https://aws.amazon.com/step-functions/pricing/",
    "Lambda": "https://aws.amazon.com/lambda/pricing/",
    "DynamoDB on-demand": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "EventBridge": "https://aws.amazon.com/eventbridge/pricing/",
    "API Gateway": "https://aws.amazon.com/api-gateway/pricing/",
    "CloudWatch Logs": "https://aws.amazon.com/cloudwatch/pricing/",
}


def memory_mb() -> int:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return int(config["lambda_memory_size"])


# -- DynamoDB capacity, from item sizes ------------------------------------------------------------

WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
READS = {"GetItem", "Query", "Scan"}


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


class Capacity:
    """DynamoDB request units of every call made through one session's clients (botocore events)."""

    def __init__(self, account: str, region: str) -> None:
        self._account, self._region = account, region
        self._pending = threading.local()
        self.rru = 0.0
        self.wru = 0.0
        self._lock = threading.Lock()

    def observe(self, session: Any) -> None:
        session.events.register("before-call.dynamodb", self._before)
        session.events.register("after-call.dynamodb", self._after)

    def _table(self, name: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self._account][self._region].get_table(name)

    def _size(self, table_name: str, key: dict[str, Any]) -> int:
        from moto.dynamodb.models import dynamodb_backends

        item = dynamodb_backends[self._account][self._region].get_item(table_name, key)
        return int(item.size()) if item is not None else 0

    def _before(self, model: Any, params: Any, **_: Any) -> None:
        body = json.loads(params.get("body") or b"{}")
        name = model.name
        before: list[tuple[str, dict[str, Any], int, int]] = []  # table, key, size before, factor
        if name in WRITES:
            before.append((body["TableName"], body["Key"] if "Key" in body else self._key(body), 0, 1))
        elif name == "TransactWriteItems":
            for entry in body["TransactItems"]:
                ((_kind, spec),) = entry.items()
                key = spec["Key"] if "Key" in spec else self._key(spec)
                before.append((spec["TableName"], key, 0, 2))
        elif name == "BatchWriteItem":
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    ((_kind, spec),) = request.items()
                    before.append(
                        (
                            table,
                            spec["Key"] if "Key" in spec else self._key({**spec, "TableName": table}),
                            0,
                            1,
                        )
                    )
        self._pending.entries = [(t, k, self._size(t, k), f) for t, k, _, f in before]
        self._pending.body = body

    def _key(self, spec: dict[str, Any]) -> dict[str, Any]:
        table = self._table(spec["TableName"])
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        return {n: spec["Item"][n] for n in names}

    def _after(self, model: Any, parsed: Any, **_: Any) -> None:
        name = model.name
        body = getattr(self._pending, "body", {})
        entries = getattr(self._pending, "entries", [])
        wru = sum(f * _units(max(old, self._size(t, k)), 1024) for t, k, old, f in entries)
        rru = 0.0
        if name in READS:
            half = 1 if body.get("ConsistentRead") else 0.5
            if name == "GetItem":
                size = self._item_size(parsed.get("Item"))
            else:
                size = sum(self._item_size(i) for i in parsed.get("Items", []))
            rru = half * _units(size, 4096)
        with self._lock:
            self.wru += wru
            self.rru += rru

    @staticmethod
    def _item_size(item: Any) -> int:
        if not item:
            return 0
        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.models.utilities import bytesize

        return sum(bytesize(name) + DynamoType(value).size() for name, value in item.items())


# -- one operation, counted --------------------------------------------------------------------------


@dataclass
class Counts:
    transitions: int = 0
    timeouts: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    billed_ms: int = 0
    rru: float = 0.0
    wru: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    events: int = 0
    api_requests: int = 0
    log_bytes: int = 0
    # the same calls by the function that made them ("StartItem sts:AssumeRole"), and handler seconds
    by_function: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)

    def minus(self, other: Counts) -> Counts:
        return Counts(
            self.transitions - other.transitions,
            self.timeouts - other.timeouts,
            self.invocations - other.invocations,
            self.billed_ms - other.billed_ms,
            self.rru - other.rru,
            self.wru - other.wru,
            self.calls - other.calls,
            self.events - other.events,
            self.api_requests - other.api_requests,
            self.log_bytes - other.log_bytes,
        )

    def scaled(self, k: float) -> dict[str, float]:
        return {
            "transitions": self.transitions * k,
            "invocations": sum(self.invocations.values()) * k,
            "billed_ms": self.billed_ms * k,
            "rru": self.rru * k,
            "wru": self.wru * k,
            "calls": sum(self.calls.values()) * k,
            "events": self.events * k,
            "api_requests": self.api_requests * k,
            "log_bytes": self.log_bytes * k,
        }


class _CountingStream(io.TextIOBase):
    """Stands in for stdout while an operation runs: counts what the service writes there."""

    def __init__(self) -> None:
        self.chars = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.chars += len(text.encode("utf-8"))
        return len(text)


class Meter:
    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self._api = threading.local()

    @contextmanager
    def api_request(self) -> Iterator[None]:
        self._api.active = True
        try:
            yield
        finally:
            self._api.active = False

    @contextmanager
    def counting(self, counts: Counts) -> Iterator[None]:
        """Count AWS calls made by the service's code while the block runs, and its invocations."""
        from botocore.client import BaseClient

        from localaws import lambda_runner

        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        meter, lock = self, threading.Lock()
        rru, wru = self.capacity.rru, self.capacity.wru

        def counted(client: Any, operation: str, params: Any) -> Any:
            function = lambda_runner.current_function()
            if function is not None or getattr(meter._api, "active", False):
                call = f"{client.meta.service_model.service_name}:{operation}"
                with lock:
                    counts.calls[call] += 1
                    counts.by_function[f"{function or 'APIHandler'} {call}"] += 1
            return original(client, operation, params)

        import logging

        stream, stdout = _CountingStream(), sys.stdout
        package = logging.getLogger("chalicelib")  # the service's log lines, formatted as they are written
        lines = logging.StreamHandler(stream)
        lines.setFormatter(package.handlers[0].formatter)
        BaseClient._make_api_call = counted  # type: ignore[attr-defined]
        sys.stdout = stream  # the metric documents
        package.addHandler(lines)
        try:
            with lambda_runner.recording() as invocations:
                yield
        finally:
            BaseClient._make_api_call = original  # type: ignore[attr-defined]
            sys.stdout = stdout
            package.removeHandler(lines)
        for invocation in invocations:
            counts.invocations[invocation.function] += 1
            counts.seconds[invocation.function] = (
                counts.seconds.get(invocation.function, 0.0) + invocation.seconds
            )
            counts.billed_ms += math.ceil(invocation.seconds * 1000)
        counts.events += counts.invocations["StackStatusChanged"]
        counts.rru += self.capacity.rru - rru
        counts.wru += self.capacity.wru - wru
        counts.log_bytes += stream.chars


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


# What an item does while it starts, and after its stack settles (statemachine/*.asl.json).
START_FUNCTIONS = ("StartItem", "AcquireLock", "StartStackOperation", "AwaitStackEvent")
END_FUNCTIONS = ("StackStatusChanged", "PollStack", "ReleaseLock", "PollItem", "AwaitItem")
# The Map iteration's states (moto keeps no history of a Distributed Map's iterations): StartItem,
# which waits for the operation's end; then PollItem, IsItemDone and ItemEnded.
MAP_START_STATES = ("StartItem",)
MAP_END_STATES = ("PollItem", "IsItemDone", "ItemEnded")


def measure_rollout(items: int = 4) -> dict[str, Any]:
    """One rollout to ``items`` targets (0 s stacks), one item at a time (so an item's handler times
    are not stretched by its neighbours on this machine's two cores): per item, what it makes while
    it starts and after its stack settles: the fleet model's inputs (bench/fleet_model.py)."""
    from bench.fanout import _fleet, _wait_rollout_execution
    from bench.harness import local_service

    counts = Counts()
    with local_service() as (client, services, aws):
        capacity = Capacity(aws.central.account_id, aws.region)
        meter = Meter(capacity)
        token = services.auth.issue("bench", "bench")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        fleet = _fleet(client, token, aws, items)
        body = {
            "stack_name": "fleet",
            "template_body": QUEUE,
            "targets": [{"target_id": t} for t in fleet],
            "strategy": {"max_concurrent": 1},
        }
        with meter.counting(counts):
            with meter.api_request():
                response = client.http.post("/rollouts", headers=headers, body=json.dumps(body).encode())
            if response.status_code != 202:
                raise RuntimeError(response.body)
            _wait_rollout_execution(aws, 300)
            time.sleep(0.5)
        sfn = aws.account_session(aws.central.account_id).client("stepfunctions")
        start_transitions = end_transitions = 0
        for execution in sfn.list_executions(stateMachineArn=aws.central.state_machine_arn)["executions"]:
            history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)[
                "events"
            ]
            entered = [e for e in history if e["type"].endswith("StateEntered")]
            waited = next(
                n
                for n, e in enumerate(entered)
                if e["stateEnteredEventDetails"]["name"] == "WaitForStackEvent"
            )
            start_transitions += waited + 1
            end_transitions += len(entered) - waited - 1

    def per_item(functions: tuple[str, ...], call: str) -> float:
        return (
            sum(v for k, v in counts.by_function.items() if k.split(" ")[0] in functions and k.endswith(call))
            / items
        )

    start = {
        "StartExecution": per_item(START_FUNCTIONS, "stepfunctions:StartExecution"),
        "transitions": start_transitions / items + len(MAP_START_STATES),
        "SendTaskSuccess": per_item(START_FUNCTIONS, "stepfunctions:SendTaskSuccess"),
        "AssumeRole": per_item(START_FUNCTIONS, "sts:AssumeRole"),
        "lambda": sum(counts.seconds.get(f, 0.0) for f in START_FUNCTIONS) / items,
    }
    end = {
        "transitions": end_transitions / items + len(MAP_END_STATES),
        "SendTaskSuccess": per_item(END_FUNCTIONS, "stepfunctions:SendTaskSuccess"),
        "AssumeRole": per_item(END_FUNCTIONS, "sts:AssumeRole"),
        "lambda": sum(counts.seconds.get(f, 0.0) for f in END_FUNCTIONS) / items,
    }
    return {
        "items": items,
        "start": start,
        "end": end,
        "invocations": {name: count / items for name, count in sorted(counts.invocations.items())},
        "calls": {name: count / items for name, count in sorted(counts.calls.items())},
    }


def mean(counts: list[Counts]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for one in counts:
        for key, value in one.scaled(1).items():
            totals[key] = totals.get(key, 0) + value / len(counts)
    return totals


def cost_per_1000(per_operation: dict[str, float], memory: int) -> dict[str, float]:
    """Dollars per 1,000 operations, by service."""
    gb_seconds = per_operation["billed_ms"] / 1000 * memory / 1024
    return {
        "Step Functions": 1000 * per_operation["transitions"] * PRICES["transition"],
        "Lambda": 1000
        * (per_operation["invocations"] * PRICES["lambda_request"] + gb_seconds * PRICES["gb_second"]),
        "DynamoDB": 1000 * (per_operation["wru"] * PRICES["wru"] + per_operation["rru"] * PRICES["rru"]),
        "EventBridge": 1000 * per_operation["events"] * PRICES["event"],
        "API Gateway": 1000 * per_operation["api_requests"] * PRICES["api_request"],
        "CloudWatch Logs": 1000 * per_operation["log_bytes"] / 1e9 * PRICES["log_gb"],
    }


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
    calls: Counter[str] = Counter()
    for one in base["create"]:
        calls.update(one.calls)
    return {
        "rounds": rounds,
        "memory_mb": memory_mb(),
        "per_action": {action: mean(counts) for action, counts in base.items()},
        "invocations": {
            action: dict(sum((c.invocations for c in counts), Counter())) for action, counts in base.items()
        },
        "create_calls": {name: count / rounds for name, count in sorted(calls.items())},
        "increment": increment,
        "increment_timeouts": slow_create.timeouts,
    }


def at_duration(result: dict[str, Any], action: str, seconds: int) -> dict[str, float]:
    waits = max(0, math.ceil(seconds / EVENT_TIMEOUT_SECONDS) - 1)
    base, step = result["per_action"][action], result["increment"]
    return {key: base[key] + waits * step[key] for key in base}


def cost_report(result: dict[str, Any]) -> str:
    memory = int(result["memory_mb"])
    lines = [
        "## 8. Cost per operation (issue 14, section 4)",
        "",
        f"Counted from real runs on the local AWS (`bench/cost.py`): {result['rounds']} rounds of create, "
        "update (a change set) and delete of one stack through the HTTP API, each operation alone, "
        "completion by stack events. Lambda duration is each handler's wall time in the local Lambda "
        "runner, billed per started millisecond at the configured "
        f"{memory} MB; on this shared machine it includes the local AWS answering in-process, so it is a "
        "rough stand-in for AWS's latencies. DynamoDB units are computed from item sizes as on-demand "
        "bills them. A wait that times out (600 s) adds one reconcile and one wait; its increment was "
        f"measured on a create with {result['increment_timeouts']} timed-out 1 s waits.",
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
        "AWS API calls of one create, by service and operation: "
        + ", ".join(f"{name} {count:g}" for name, count in result["create_calls"].items())
        + ".",
        "",
        "Cost per 1,000 operations at AWS list prices (us-east-1): Step Functions Standard $0.025 per 1,000 "
        "transitions; Lambda $0.20 per million requests and $0.0000166667 per GB-second; DynamoDB "
        "on-demand $1.25 per million write and $0.25 per million read request units; EventBridge $1.00 per "
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


if __name__ == "__main__":
    result = bench_cost()
    print(json.dumps(result, indent=1, default=str))
    print(cost_report(result))
