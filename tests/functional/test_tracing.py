"""Traces as Lambda would send them: a step handler run in a process that looks like Lambda (its
environment variables) with tracing on, and an X-Ray daemon that is a UDP socket of this test.

In-process runs (local mode, the other tests) keep tracing off; this is the only place it is on, in
its own process, because aws-xray-sdk patches botocore for the whole process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
STEP = """
import boto3
from moto import mock_aws

with mock_aws():
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="nexus-table",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    import app
    from localaws.lambda_runner import FakeContext

    event = {"tenant_id": "t", "deployment_id": "dep-0", "operation_id": "op-0", "correlation_id": "c-1"}
    try:
        app.acquire_lock(event, FakeContext("nexus-deployer-dev-AcquireLock"))
    except Exception as error:
        print("RAISED", type(error).__name__)
import sys

print("XRAY_SDK_LOADED", "aws_xray_sdk" in sys.modules)
"""


def run_step(
    tmp_path: Path, trace_disabled: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(2)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "POWERTOOLS_TRACE_DISABLED": trace_disabled,
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "AWS_LAMBDA_FUNCTION_NAME": "nexus-deployer-dev-AcquireLock",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        "_X_AMZN_TRACE_ID": f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "NEXUS_TABLE_NAME": "nexus-table",
        "NEXUS_SERVICE_ROLE_ARN": "arn:aws:iam::123456789012:role/NexusDeployerService",
    }
    result = subprocess.run(
        [sys.executable, "-c", STEP],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    segments = []
    try:
        while True:
            datagram, _ = daemon.recvfrom(65536)
            header, _, body = datagram.decode().partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            segments.append(json.loads(body))
    except TimeoutError:
        pass
    finally:
        daemon.close()
    return result, segments


def test_a_step_sends_its_handler_and_aws_call_subsegments_to_the_daemon(tmp_path: Path) -> None:
    result, segments = run_step(tmp_path, "false")
    assert "RAISED DeployerError" in result.stdout, result.stderr[-3000:]
    assert "XRAY_SDK_LOADED True" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-3000:]  # no daemon or context errors
    by_name = {segment["name"]: segment for segment in segments}
    handler = by_name["## AcquireLock"]
    assert handler["trace_id"] == TRACE_ID
    assert handler["annotations"] == {
        "ColdStart": True,
        "Service": "nexus-deployer",
        "Function": "AcquireLock",
    }
    assert handler["cause"]["exceptions"][0]["type"] == "DeployerError"  # the step's error, recorded
    call = by_name["dynamodb"]
    assert call["parent_id"] == handler["id"]  # the adapter's AWS call, inside the handler's subsegment
    assert (call["namespace"], call["aws"]["operation"], call["aws"]["table_name"]) == (
        "aws",
        "GetItem",
        "nexus-table",
    )
    assert "metadata" not in handler  # neither the event nor the answer is recorded


def test_with_tracing_disabled_nothing_reaches_the_daemon_and_the_sdk_is_not_loaded(tmp_path: Path) -> None:
    result, segments = run_step(tmp_path, "true")
    assert "RAISED DeployerError" in result.stdout, result.stderr[-3000:]
    assert "XRAY_SDK_LOADED False" in result.stdout
    assert segments == []
