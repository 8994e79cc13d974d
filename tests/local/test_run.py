"""Local mode as a user runs it: the real ``python -m localaws.run`` process, over real sockets.

The in-process tests drive the app through Chalice's test client and moto's ``mock_aws``; these
prove the other wiring: the service reaching the embedded AWS through ``AWS_ENDPOINT_URL`` as the
central role, the workflow's Lambda tasks running inside the moto server's threads, readiness,
the busy-port error and a clean stop on SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localaws.demo import AccountAdmin, Api, target_body, wait_until_healthy
from localaws.server import free_port, port_in_use
from tests.support.polling import until

ROOT = Path(__file__).resolve().parents[2]
APP_STACK = (ROOT / "examples" / "app-stack.json").read_text()
TOKEN = "nxs_local_test_token"


@dataclass
class Running:
    process: subprocess.Popen[str]
    api: Api
    aws_url: str
    api_port: int
    aws_port: int


def start(api_port: int, aws_port: int, **extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "NEXUS_PORT": str(api_port),
        "NEXUS_AWS_PORT": str(aws_port),
        "NEXUS_LOCAL_STACK_SECONDS": "0",
        "NEXUS_API_TOKEN": TOKEN,
        **extra,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "localaws.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


STOP_SECONDS = 30  # what a SIGINT'd local mode may take to exit before the test calls it a hang


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=STOP_SECONDS)
    return process.returncode, output


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    api_port, aws_port = free_port(), free_port()
    process = start(api_port, aws_port)
    try:
        wait_until_healthy(f"http://127.0.0.1:{api_port}", process)
        yield Running(
            process,
            Api(f"http://127.0.0.1:{api_port}", TOKEN),
            f"http://127.0.0.1:{aws_port}",
            api_port,
            aws_port,
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def deploy_and_wait(api: Api, target_id: str, stack_name: str, timeout: float = 30.0) -> dict[str, Any]:
    body = {
        "target_id": target_id,
        "region": "us-east-1",
        "stack_name": stack_name,
        "template_body": APP_STACK,
    }
    deployment_id = api.ok("POST", "/deployments", body, status=202)["deployment_id"]

    def shown() -> dict[str, Any]:
        deployment: dict[str, Any] = api.ok("GET", f"/deployments/{deployment_id}", status=200)
        return deployment

    return until(
        shown,
        ready=lambda deployment: deployment["operation"]["status"] in ("SUCCEEDED", "FAILED"),
        timeout=timeout,
        interval=0.1,
        what=f"{deployment_id} to settle",
    )


def test_health_and_authentication(running: Running) -> None:
    assert running.api.call("GET", "/health", auth=False) == (200, {"status": "ok"})
    status, body = running.api.call("GET", "/targets", auth=False)
    assert status == 401
    assert body["error"]["code"] == "MISSING_TOKEN"
    assert running.api.call("GET", "/targets")[0] == 200


def test_create_reaches_active_in_the_target_account(running: Running) -> None:
    target = running.api.ok("POST", "/targets", target_body("team-a", "111111111111"), status=201)
    admin = AccountAdmin(running.aws_url, "111111111111")
    # The bootstrap template: the role, and the rule that forwards stack events to the service's bus.
    template = running.api.ok("GET", f"/targets/{target['target_id']}/bootstrap-template", status=200)
    admin.deploy_bootstrap(template)

    deployment = deploy_and_wait(running.api, target["target_id"], "app")

    assert deployment["status"] == "ACTIVE", deployment
    assert deployment["account_id"] == "111111111111"
    assert set(deployment["outputs"]) >= {"BucketName", "QueueUrl", "TableName"}
    assert admin.stacks() == {"nexus-bootstrap": "CREATE_COMPLETE", "app": "CREATE_COMPLETE"}
    # Completed by the forwarded stack event, not by the wait's timeout (15 s in local mode).
    sfn = AccountAdmin(running.aws_url, "123456789012").client("stepfunctions")
    (machine,) = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-deployment")]
    execution = machine["stateMachineArn"].replace(":stateMachine:", ":execution:")
    history = sfn.get_execution_history(executionArn=f"{execution}:{deployment['operation']['operation_id']}")
    states = [
        e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e
    ]
    assert "WaitForStackEvent" in states
    assert "TaskTimedOut" not in [e["type"] for e in history["events"]]
    assert AccountAdmin(running.aws_url, "123456789012").stacks() == {}


def test_wrong_external_id_fails_with_access_denied_and_no_stack(running: Running) -> None:
    target = running.api.ok("POST", "/targets", target_body("team-b", "222222222222"), status=201)
    trust = json.loads(json.dumps(target["trust_policy"]).replace(target["external_id"], "wrong-external-id"))
    admin = AccountAdmin(running.aws_url, "222222222222")
    admin.create_role(trust)

    deployment = deploy_and_wait(running.api, target["target_id"], "app")

    assert deployment["status"] == "FAILED", deployment
    assert deployment["error"]["code"] == "ACCESS_DENIED"
    assert "sts:ExternalId" in deployment["error"]["hint"]
    assert admin.stacks() == {}


@pytest.mark.parametrize("busy", ["NEXUS_PORT", "NEXUS_AWS_PORT"])
def test_busy_port_is_a_one_line_error_and_exit_code_2(running: Running, busy: str) -> None:
    taken = running.api_port if busy == "NEXUS_PORT" else running.aws_port
    ports = {"NEXUS_PORT": free_port(), "NEXUS_AWS_PORT": free_port(), busy: taken}
    process = start(ports["NEXUS_PORT"], ports["NEXUS_AWS_PORT"])
    output, _ = process.communicate(timeout=20)

    assert process.returncode == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert f"port {taken}" in lines[0]
    assert "already in use" in lines[0]
    assert busy in lines[0]


def test_sigint_stops_both_servers_and_exits_0() -> None:
    api_port, aws_port = free_port(), free_port()
    process = start(
        api_port,
        aws_port,
        NEXUS_LOCAL_FAULTS="drop_stack_events=0.1,seed=3",
        NEXUS_LOCAL_ASYNC_RETRY_SECONDS="0.5,1",
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{api_port}", process)
        began = time.monotonic()
        code, output = stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, output
    # A hang is what this bounds, not speed: shutdown takes about 2 s on a quiet machine, and took more
    # than 10 s once in a clone's CI run that shared the machine with two other test runs.
    assert time.monotonic() - began < STOP_SECONDS
    assert "ready" in output
    assert "Unemulated types: their stacks fail (NEXUS_LOCAL_UNSUPPORTED=fail; fail|skip|simulate)" in output
    assert "Faults:           throttle=0, drop_stack_events=0.1, seed=3 (NEXUS_LOCAL_FAULTS)" in output
    assert (
        "Async retries:    0.5 s then 1 s (NEXUS_LOCAL_ASYNC_RETRY_SECONDS; AWS waits 60 s then 120 s)"
        in output
    )
    assert TOKEN not in output  # a token from NEXUS_API_TOKEN is never echoed
    assert not port_in_use("127.0.0.1", api_port)
    assert not port_in_use("127.0.0.1", aws_port)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            {"NEXUS_LOCAL_UNSUPPORTED": "ignore"},
            "NEXUS_LOCAL_UNSUPPORTED must be one of fail, skip, simulate, got 'ignore'",
        ),
        (
            {"NEXUS_LOCAL_SKIP_UNSUPPORTED": "1"},
            "NEXUS_LOCAL_SKIP_UNSUPPORTED was replaced by NEXUS_LOCAL_UNSUPPORTED=fail|skip|simulate",
        ),
        (
            {"NEXUS_LOCAL_FAULTS": "throttle=1.5"},
            "NEXUS_LOCAL_FAULTS: throttle must be a fraction from 0 to 1, got '1.5'",
        ),
        (
            {"NEXUS_LOCAL_FAULTS": "throttle=0.3,latency=2"},
            "NEXUS_LOCAL_FAULTS: unknown fault 'latency' "
            "(throttle, drop_stack_events, crash_after, time_out, seed)",
        ),
        (
            {"NEXUS_LOCAL_FAULTS": "crash_after=StartStackOperatoin"},
            "NEXUS_LOCAL_FAULTS: crash_after=StartStackOperatoin is not a Lambda function of the service",
        ),
        (
            {"NEXUS_LOCAL_FAULTS": "time_out=PollIten"},
            "NEXUS_LOCAL_FAULTS: time_out=PollIten is not a Lambda function of the service",
        ),
        (
            {"NEXUS_LOCAL_ASYNC_RETRY_SECONDS": "60"},
            "NEXUS_LOCAL_ASYNC_RETRY_SECONDS must be two numbers of seconds like 1,2, got '60'",
        ),
    ],
)
def test_a_bad_or_retired_unsupported_setting_stops_local_mode_at_start(
    setting: dict[str, str], message: str
) -> None:
    process = start(free_port(), free_port(), **setting)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 2
    assert output.strip().startswith(f"nexus local: {message}")
    assert len(output.strip().splitlines()) == 1
