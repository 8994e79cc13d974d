"""One rollout, counted per item (``measure_rollout``): what an item makes while it starts and after
its stack settles, the fleet model's inputs (bench/fleet_model.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from bench.cost.capacity import Capacity
from bench.cost.counting import Counts, Meter
from bench.cost.operations import QUEUE

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
