"""The ground every reliability scenario stands on: the app wired to a local AWS with faults, and the counts.

``chaos_service(faults, ...)`` starts an in-process local AWS with the app's functions (the real
``.asl.json`` executes, the steps run in-process), wires the service to it with in-memory metrics (so
``ThrottlesRetried`` and ``FallbackReconciles`` can be read), and yields a :class:`Harness`. Setup (the
tenant, target accounts and their bootstrap) runs with no faults; ``harness.faults_on()`` then puts the
scenario's faults in force, so they fall on the scenario's own requests only.

The API is driven through Chalice's test client, as a client would: a 503 (``AWS_THROTTLED``: botocore's
retries ran out inside the HTTP handler) or a 429 is retried with the same ``Idempotency-Key``, and
counted. :class:`Recorder` counts, from botocore's side, the service's stack-changing CloudFormation
calls per stack and its DynamoDB writes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.calls import observing_calls, stack_name
from bench.harness import local_credentials
from localaws.faults import NO_FAULTS, FaultSettings

# The calls that change a stack (a change set's creation only describes a change).
STACK_CALLS = frozenset({"CreateStack", "UpdateStack", "ExecuteChangeSet", "DeleteStack"})
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
)  # fmt: skip
RETRYABLE_STATUSES = frozenset({429, 503})
CLIENT_ATTEMPTS = 6


class Recorder:
    """The service's stack-changing calls by stack name (every call made, whatever AWS answered), those
    of them AWS refused by stack name and error code, and its DynamoDB writes, while the block runs."""

    def __init__(self) -> None:
        self.stack_calls: Counter[str] = Counter()
        self.refused_stack_calls: Counter[tuple[str, str]] = Counter()
        self.dynamodb_writes = 0
        self._lock = threading.Lock()

    @contextmanager
    def recording(self) -> Iterator[Recorder]:
        def record(operation: str, params: Any) -> None:
            if operation in STACK_CALLS:
                with self._lock:
                    self.stack_calls[stack_name(params)] += 1
            elif operation in DYNAMODB_WRITES:
                with self._lock:
                    self.dynamodb_writes += 1

        def refused(operation: str, params: Any, error: Exception) -> None:
            if operation in STACK_CALLS:
                code = str(
                    getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
                )
                with self._lock:
                    self.refused_stack_calls[stack_name(params), code] += 1

        with observing_calls(record, refused):
            yield self

    def refused_by_code(self, stack: str | None = None) -> dict[str, int]:
        """The stack calls AWS refused, by error code: of ``stack``, or of every stack."""
        counts: Counter[str] = Counter()
        for (name, code), n in self.refused_stack_calls.items():
            if stack is None or name == stack:
                counts[code] += n
        return dict(counts)


@dataclass
class Harness:
    client: Any
    services: Any
    aws: Any
    metrics: Any
    faults: FaultSettings
    token: str = ""
    client_retries: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def faults_on(self) -> None:
        """From now on the scenario's faults are in force (and their counts start at 0)."""
        from localaws import faults

        faults.configure(self.faults)

    def faults_off(self) -> None:
        from localaws import faults

        faults.configure(NO_FAULTS)

    def request(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        """One API call as a careful client makes it: a 429/503 is retried with the same Idempotency-Key."""
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        data = b"" if body is None else json.dumps(body).encode()
        for attempt in range(CLIENT_ATTEMPTS):
            response = self.client.http.request(method, path, headers=headers, body=data)
            with self._lock:
                self.answers[response.status_code] += 1
            if response.status_code not in RETRYABLE_STATUSES or attempt == CLIENT_ATTEMPTS - 1:
                break
            with self._lock:
                self.client_retries += 1
            time.sleep(0.2 * 2**attempt)
        return response.status_code, json.loads(response.body) if response.body else None

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        status, body = self.request("GET", f"/deployments/{deployment_id}")
        if status != 200:
            raise RuntimeError(f"GET /deployments/{deployment_id}: {status} {body}")
        result: dict[str, Any] = body
        return result

    def wait_operation(self, deployment_id: str, operation_id: str, timeout: float) -> dict[str, Any]:
        """Until that operation of the deployment has ended; the deployment then (a timeout raises)."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.deployment(deployment_id)
            operation = body.get("operation") or {}
            if operation.get("operation_id") == operation_id and operation.get("status") in (
                "SUCCEEDED",
                "FAILED",
            ):
                return body
            if time.monotonic() > deadline:
                raise TimeoutError(f"operation {operation_id} of {deployment_id} did not end: {operation}")
            time.sleep(0.1)

    def orphan_locks(self) -> int:
        """Stack locks still held once every execution has ended (read as the central account's admin)."""
        self.aws.drain_executions(timeout=120)
        dynamodb = self.aws.account_session(self.aws.central.account_id).client("dynamodb")
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=self.aws.central.table_name,
            FilterExpression="begins_with(pk, :lock)",
            ExpressionAttributeValues={":lock": {"S": "LOCK#"}},
        )
        return sum(len(page["Items"]) for page in pages)

    def stacks(self, account_id: str, region: str = "us-east-1") -> list[str]:
        cfn = self.aws.account_session(account_id).client("cloudformation", region_name=region)
        pages = cfn.get_paginator("describe_stacks").paginate()
        return [
            s["StackName"]
            for page in pages
            for s in page["Stacks"]
            if s["StackStatus"] != "DELETE_COMPLETE" and not s["StackName"].startswith("nexus-bootstrap-")
        ]

    def register_targets(self, count: int, first_account: int = 500000000000) -> list[str]:
        """``count`` target accounts registered and bootstrapped as their admins would (no faults yet)."""
        ids = []
        for n in range(count):
            account = f"{first_account + n}"
            status, target = self.request(
                "POST",
                "/targets",
                {
                    "name": f"chaos-{n}",
                    "account_id": account,
                    "role_arn": f"arn:aws:iam::{account}:role/NexusDeploymentRole",
                    "regions": ["us-east-1"],
                },
            )
            if status != 201:
                raise RuntimeError(f"POST /targets: {status} {target}")
            self.aws.bootstrap_role(target["role_arn"], target["trust_policy"])
            self.aws.forward_stack_events(account)
            ids.append(str(target["target_id"]))
        return ids


@contextmanager
def chaos_service(
    faults: FaultSettings, *, stack_seconds: float = 0, tuning: dict[str, str] | None = None
) -> Iterator[Harness]:
    """The app on a fresh in-process local AWS; ``faults`` wait for ``faults_on()``."""
    local_credentials()
    from chalice.test import Client

    import app as app_module
    from chalicelib.adapters.metrics import InMemoryMetrics
    from chalicelib.adapters.tracing import NoTracing
    from chalicelib.composition import build_services
    from chalicelib.observability import Telemetry
    from chalicelib.settings import Settings
    from localaws.cloudformation import StackSimulation
    from localaws.environment import LocalAws
    from localaws.functions import FunctionHost

    metrics = InMemoryMetrics()  # every function's metrics, so the scenarios can read them

    def build(environment: Any, session: Any) -> Any:
        return build_services(Settings.from_env(environment), session, Telemetry(NoTracing(), metrics))

    simulation = StackSimulation(stack_seconds=stack_seconds)
    host = lambda aws: FunctionHost(aws, app_module.container, build)  # noqa: E731
    with LocalAws(host, simulation=simulation, faults=NO_FAULTS) as aws:
        services = aws.host.configure(
            {
                "NEXUS_POLL_INITIAL_SECONDS": "1",
                "NEXUS_POLL_MAX_SECONDS": "1",
                "NEXUS_EVENT_TIMEOUT_SECONDS": "5",
                **(tuning or {}),
            }
        )
        harness: Harness | None = None
        try:
            with Client(app_module.app) as client:
                assert services is not None
                harness = Harness(client, services, aws, metrics, faults)
                harness.token = services.auth.issue("chaos", "reliability scenarios")
                yield harness
        finally:
            if harness is not None:
                harness.faults_off()
            aws.drain_executions(timeout=120)
            aws.host.configure(None)
