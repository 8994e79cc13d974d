"""The local service every benchmark runs against, and the waits and figures they share.

Split out of ``bench/run.py`` (the ``make bench`` runner) so that each benchmark module, and the
chaos harness, imports the shared harness rather than the runner.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def local_credentials() -> None:
    """Dummy credentials for botocore: the local AWS checks no signature (never real keys)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)


@contextmanager
def local_service(
    stack_seconds: float = 0,
    poll_seconds: int = 0,
    unsupported: str = "fail",
    tuning: dict[str, str] | None = None,
) -> Iterator[tuple[Any, Any, Any]]:
    """The app wired to a fresh local AWS, as the tests do; yields (client, services, aws)."""
    local_credentials()
    from chalice.test import Client

    import app as app_module
    from localaws.cloudformation import StackSimulation
    from localaws.environment import LocalAws
    from localaws.functions import FunctionHost

    simulation = StackSimulation(stack_seconds=stack_seconds, unsupported=unsupported)
    with LocalAws(lambda aws: FunctionHost(aws, app_module.container), simulation=simulation) as aws:
        services = aws.host.configure(
            {
                "NEXUS_POLL_INITIAL_SECONDS": str(poll_seconds),
                "NEXUS_POLL_MAX_SECONDS": str(max(poll_seconds, 1) * 12),
                **(tuning or {}),
            }
        )
        try:
            with Client(app_module.app) as client:
                yield client, services, aws
        finally:
            aws.drain_executions()  # the steps of executions still running need the services
            aws.host.configure(None)


def _setup_target(client: Any, token: str, aws: Any, profile: Any = "default") -> str:
    """Register the target account 111111111111 and bootstrap its role (trust policy and ``profile``'s
    permissions, which the local AWS enforces), forwarding its stack events."""
    response = client.http.post(
        "/targets",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps(
            {
                "name": "bench",
                "account_id": "111111111111",
                "role_arn": "arn:aws:iam::111111111111:role/NexusDeploymentRole",
                "regions": ["us-east-1"],
            }
        ).encode(),
    )
    target = json.loads(response.body)
    aws.bootstrap_role(target["role_arn"], target["trust_policy"], profile=profile)  # as its admin would
    aws.forward_stack_events("111111111111")
    return str(target["target_id"])


QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})


def wait_settled(
    client: Any, headers: dict[str, str], deployment_id: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = json.loads(
            client.http.get(f"/deployments/{deployment_id}", headers=headers).body
        )
        if body["operation"]["status"] in ("SUCCEEDED", "FAILED"):
            return body
        if time.monotonic() > deadline:
            raise RuntimeError(f"deployment {deployment_id} did not settle")
        time.sleep(0.02)


def wait_execution_ended(aws: Any, operation_id: str, timeout: float = 120, poll: float = 0.02) -> str:
    """Until the operation's execution has ended (its record settles before its last step runs); its ARN."""
    sfn = aws.account_session(aws.central.account_id).client("stepfunctions")
    arn = aws.central.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{operation_id}"
    deadline = time.monotonic() + timeout
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise RuntimeError(f"execution {operation_id} still running after {timeout} s")
        time.sleep(poll)
    return str(arn)
