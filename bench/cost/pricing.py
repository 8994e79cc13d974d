"""Pricing: AWS's list prices and their pages, the configured Lambda memory, dollars per 1,000
operations by service, and an operation's counts on a stack of a given duration (its timed-out waits
added)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENT_TIMEOUT_SECONDS = 600  # NEXUS_EVENT_TIMEOUT_SECONDS' default
DURATIONS = {"5 s": 5, "10 min": 600, "1 h": 3600}

# AWS list prices (us-east-1), from the pages named in BENCHMARKS.md.
PRICES = {
    "transition": 0.025 / 1000,  # Step Functions Standard, per state transition
    "lambda_request": 0.20 / 1_000_000,
    "gb_second": 0.0000166667,  # Lambda, x86
    "wru": 0.625 / 1_000_000,  # DynamoDB on-demand write request unit (halved on 2024-11-01)
    "rru": 0.125 / 1_000_000,  # DynamoDB on-demand read request unit (halved on 2024-11-01)
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


def timed_out_waits(seconds: int) -> int:
    """The event waits a stack of ``seconds`` outlasts, counted on the safe side: a stack that ends just
    as a wait does (a 10-minute stack, a 600 s wait) is counted as outlasting it, since the wait began
    a moment after the stack did and its event may come a moment late."""
    return seconds // EVENT_TIMEOUT_SECONDS


def at_duration(result: dict[str, Any], action: str, seconds: int) -> dict[str, float]:
    waits = timed_out_waits(seconds)
    base, step = result["per_action"][action], result["increment"]
    return {key: base[key] + waits * step[key] for key in base}
