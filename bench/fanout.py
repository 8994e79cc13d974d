"""Section 5 of BENCHMARKS.md: one rollout to N targets against the same N deployments one POST at a time.

Its own module so that the runner (``bench/run.py``) only runs and writes the benchmarks; each side runs
in a child interpreter that imports ``fanout_side`` from here (``FANOUT_CHILD``), and
bench/cost/rollout.py reuses its fleet setup and rollout wait.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.cpu import CollectorTime, ThreadCpu, thread_kind
from bench.harness import QUEUE, ROOT, local_service
from localaws.admission import DEFAULT_LIMIT, admission

# Fan-out (section 5). N is the issue's fleet, 1,000 targets x 1 region; NEXUS_BENCH_FANOUT_TARGETS
# sets another. Each side runs in a fresh interpreter (`fanout_side`), so each peak RSS is its own.
FANOUT_TARGETS = int(os.environ.get("NEXUS_BENCH_FANOUT_TARGETS", "1000"))
# The rollout runs as many items at once as the local AWS runs executions of one machine
# (localaws/admission.py), which is also how many deployments the one-at-a-time side gets running at once:
# both sides then run their deployments equally wide.
FANOUT_MAX_CONCURRENT = DEFAULT_LIMIT
FANOUT_POLL_SECONDS = 0.5  # how often the caller looks; cheap calls, so the polling does not load the run
FANOUT_SIDES = ("rollout", "single")


def _fleet(client: Any, token: str, aws: Any, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ids = []
    for n in range(count):
        account = f"{400000000000 + n}"
        body = {
            "name": f"bench-{n}",
            "account_id": account,
            "role_arn": f"arn:aws:iam::{account}:role/NexusDeploymentRole",
            "regions": ["us-east-1"],
        }
        target = json.loads(
            client.http.post("/targets", headers=headers, body=json.dumps(body).encode()).body
        )
        aws.bootstrap_role(target["role_arn"], target["trust_policy"])
        aws.forward_stack_events(account)
        ids.append(str(target["target_id"]))
    return ids


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _execution_runs(aws: Any, state_machine_arn: str) -> tuple[list[float], int]:
    """When each execution of a machine began running (epoch seconds of its ExecutionStarted event:
    an execution waiting for the local AWS's admission has not started), and how many task waits
    in them timed out (TaskTimedOut: a stack event or release that never came)."""
    sfn = aws.account_session(aws.central.account_id).client("stepfunctions")
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn)
    starts, timeouts = [], 0
    for execution in (e for page in pages for e in page["executions"]):
        history = sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"])
        events = [event for page in history for event in page["events"]]
        started = [e["timestamp"].timestamp() for e in events if e["type"] == "ExecutionStarted"]
        if not started:
            raise RuntimeError(f"{execution['executionArn']} never started")
        starts.append(started[0])
        timeouts += sum(1 for e in events if e["type"] == "TaskTimedOut")
    return sorted(starts), timeouts


def _wait_rollout_execution(aws: Any, timeout: float) -> None:
    """Until the rollout execution ends: one ListExecutions(RUNNING) of the rollout machine per look."""
    sfn = aws.account_session(aws.central.account_id).client("stepfunctions")
    deadline = time.monotonic() + timeout
    arn = aws.central.rollout_state_machine_arn
    while sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the rollout did not end")
        time.sleep(FANOUT_POLL_SECONDS)


def _wait_deployments(client: Any, headers: dict[str, str], ids: list[str], timeout: float) -> list[str]:
    """Until every deployment settled (each read, in order, FANOUT_POLL_SECONDS apart); the error codes
    of those that failed: a failure is a finding of the benchmark, recorded, not a crash."""
    deadline = time.monotonic() + timeout
    failed: list[str] = []
    for deployment_id in ids:
        while True:
            body = json.loads(client.http.get(f"/deployments/{deployment_id}", headers=headers).body)
            if body["operation"]["status"] in ("SUCCEEDED", "FAILED"):
                if body["status"] != "ACTIVE":
                    failed.append(str((body.get("error") or {}).get("code", "UNKNOWN")))
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployment {deployment_id} did not settle")
            time.sleep(FANOUT_POLL_SECONDS)
    return failed


def fanout_side(side: str, count: int, max_concurrent: int = FANOUT_MAX_CONCURRENT) -> dict[str, Any]:
    """One side of the fan-out benchmark, in this process: one rollout, or ``count`` single POSTs."""
    timeout = 600 + 10 * count
    with local_service() as (client, services, aws):
        token = services.auth.issue("bench", "bench")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        setup_started = time.perf_counter()
        fleet = _fleet(client, token, aws, count)
        result: dict[str, Any] = {
            "setup_s": time.perf_counter() - setup_started,
            "rss_before_mb": _peak_rss_mb(),
        }
        collector = CollectorTime().__enter__()
        threads = ThreadCpu().__enter__()
        try:  # the process-wide hooks come off however the timed phase ends
            cpu, epoch, started = time.process_time(), time.time(), time.perf_counter()
            if side == "rollout":
                body = {
                    "stack_name": "fleet",
                    "template_body": QUEUE,
                    "targets": [{"target_id": t} for t in fleet],
                    "strategy": {"max_concurrent": max_concurrent},
                }
                response = client.http.post("/rollouts", headers=headers, body=json.dumps(body).encode())
                if response.status_code != 202:
                    raise RuntimeError(response.body)
                result["client_s"] = time.perf_counter() - started
                _wait_rollout_execution(aws, timeout)
                result["makespan_s"] = time.perf_counter() - started
                view = json.loads(
                    client.http.get(
                        f"/rollouts/{json.loads(response.body)['rollout_id']}", headers=headers
                    ).body
                )
                result["failed"] = count - int(view["counts"].get("SUCCEEDED", 0))
                if view["status"] != "SUCCEEDED":
                    print(f"FANOUT-FAILURES rollout {view['status']}: {view.get('summary')}", flush=True)
            else:
                ids = []
                for target_id in fleet:
                    one = {
                        "target_id": target_id,
                        "region": "us-east-1",
                        "stack_name": "fleet",
                        "template_body": QUEUE,
                    }
                    response = client.http.post(
                        "/deployments", headers=headers, body=json.dumps(one).encode()
                    )
                    if response.status_code != 202:
                        raise RuntimeError(response.body)
                    ids.append(json.loads(response.body)["deployment_id"])
                result["client_s"] = time.perf_counter() - started
                failures = _wait_deployments(client, headers, ids, timeout)
                result["makespan_s"] = time.perf_counter() - started
                result["failed"] = len(failures)
                if failures:
                    codes = {code: failures.count(code) for code in sorted(set(failures))}
                    print(f"FANOUT-FAILURES single {json.dumps(codes)}", flush=True)
            result["cpu_s"] = time.process_time() - cpu
        finally:
            threads.__exit__()
            collector.__exit__()
        # By kind of thread, less the collections that ran on it (they land wherever an allocation
        # crossed the threshold), which get a row of their own.
        by_kind, collected = threads.by_kind(), dict(collector.by_kind)
        caller_kind = thread_kind(threading.current_thread().name)
        result["threads_ms_per_item"] = {
            kind: 1000 * (s - collected.get(kind, 0.0)) / count for kind, s in by_kind.items()
        }
        result["caller_ms_per_item"] = 1000 * (threads.caller_s - collected.get(caller_kind, 0.0)) / count
        counted = threads.caller_s + sum(by_kind.values())
        elsewhere = sum(s for kind, s in collected.items() if kind not in by_kind and kind != caller_kind)
        result["other_ms_per_item"] = 1000 * (result["cpu_s"] - counted - elsewhere) / count
        result["gc_s"], result["gc_collections"] = collector.seconds, collector.collections
        result["gc_per_item_s"] = collector.seconds / count
        result["cpu_but_gc_per_item_s"] = (result["cpu_s"] - collector.seconds) / count
        result["timed_from"], result["timed_to"] = epoch, epoch + result["makespan_s"]
        starts, timeouts = _execution_runs(aws, aws.central.state_machine_arn)
        result["task_timeouts"] = timeouts + _execution_runs(aws, aws.central.rollout_state_machine_arn)[1]
        result["peak_running"] = admission.peak(aws.central.state_machine_arn)
        if len(starts) != count:
            raise RuntimeError(f"{len(starts)} deployment executions for {count} items")
        result["last_start_s"] = starts[-1] - epoch
        result["started_per_s"] = count / result["last_start_s"]
        result["items_per_s"] = count / result["makespan_s"]
        result["cpu_per_item_s"] = result["cpu_s"] / count
        result["peak_rss_mb"] = _peak_rss_mb()
    return result


FANOUT_CHILD = (
    "import json, sys; from bench.fanout import fanout_side; "
    "print('FANOUT ' + json.dumps(fanout_side(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))"
)


def bench_rollout(count: int = FANOUT_TARGETS, max_concurrent: int = FANOUT_MAX_CONCURRENT) -> dict[str, Any]:
    """One rollout to ``count`` targets x 1 region, against the same deployments one POST at a time.

    Each side runs in its own fresh interpreter, so the peak RSS is each side's own and neither inherits
    the other's threads, garbage or moto state; both run at once, so that both meet the same shared
    machine. (Run one after the other, the same setup took 70 s on one side and 89 s on the other:
    the machine's speed drifted more than the difference measured.) Each process is bound by its GIL
    to about one of the two cores.
    """
    result: dict[str, Any] = {"targets": count, "max_concurrent": max_concurrent}
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as files:
        runs: dict[str, Any] = {}
        try:
            for side in FANOUT_SIDES:
                out = files.enter_context(Path(scratch, f"{side}.out").open("w+"))
                err = files.enter_context(Path(scratch, f"{side}.err").open("w+"))
                process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [sys.executable, "-c", FANOUT_CHILD, side, str(count), str(max_concurrent)],
                    stdout=out,
                    stderr=err,
                    text=True,
                    cwd=ROOT,
                )
                runs[side] = (process, out, err)
            for side, (process, out, err) in runs.items():
                returncode = process.wait()
                out.seek(0)
                err.seek(0)
                stdout, stderr = out.read(), err.read()
                for line in stdout.splitlines():
                    if line.startswith("FANOUT-FAILURES "):
                        result[f"{side}_failures"] = line.removeprefix("FANOUT-FAILURES ")
                lines = [line for line in stdout.splitlines() if line.startswith("FANOUT ")]
                if returncode != 0 or not lines:
                    raise RuntimeError(f"fan-out side {side} failed ({returncode}):\n{stderr[-4000:]}")
                for key, value in json.loads(lines[-1].removeprefix("FANOUT ")).items():
                    result[f"{side}_{key}"] = value
                print(f"fan-out {side}: {lines[-1]}", flush=True)
        finally:  # a side that failed, or Ctrl-C: leave no side running on its own
            for process, _, _ in runs.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
    for key in ("makespan_s", "client_s", "cpu_s", "peak_rss_mb", "gc_s", "cpu_but_gc_per_item_s"):
        result[f"{key}_ratio"] = result[f"rollout_{key}"] / result[f"single_{key}"]
    result["started_per_s_ratio"] = result["rollout_started_per_s"] / result["single_started_per_s"]
    return result


def _overlap_s(r: dict[str, Any]) -> float:
    """How long both sides' timed phases ran at once."""
    start = max(float(r["rollout_timed_from"]), float(r["single_timed_from"]))
    end = min(float(r["rollout_timed_to"]), float(r["single_timed_to"]))
    return max(0.0, end - start)


def _thread_label(kind: str) -> str:
    if kind.startswith("lambda-"):
        return f"Lambda `{kind.removeprefix('lambda-')}`"
    if kind.startswith("localaws-execution-"):
        return f"interpreter of `{kind.removeprefix('localaws-execution-')}` executions"
    if kind == "Thread":
        return "interpreter's unnamed threads (moto evaluates each Task state on a thread of its own)"
    return f"`{kind}`"


def thread_rows(r: dict[str, Any]) -> list[str]:
    """CPU per item by kind of thread (bench/cpu.py), both sides and their difference, largest first;
    then the caller's thread and the threads started before the timed phase."""
    rollout, single = r["rollout_threads_ms_per_item"], r["single_threads_ms_per_item"]
    kinds = sorted(set(rollout) | set(single), key=lambda k: -max(rollout.get(k, 0.0), single.get(k, 0.0)))
    shown = [
        (_thread_label(k), rollout.get(k, 0.0), single.get(k, 0.0))
        for k in kinds
        if max(rollout.get(k, 0.0), single.get(k, 0.0)) >= 0.05
    ]
    shown.append(
        (
            "the caller's thread (the baseline's POSTs run in it)",
            r["rollout_caller_ms_per_item"],
            r["single_caller_ms_per_item"],
        )
    )
    shown.append(
        (
            "the cyclic garbage collector, on whichever thread it ran (taken out of the rows above)",
            1000 * r["rollout_gc_per_item_s"],
            1000 * r["single_gc_per_item_s"],
        )
    )
    shown.append(
        (
            "threads started before the timed phase (the local AWS's servers, EventBridge's delivery) "
            "or still running at its end",
            r["rollout_other_ms_per_item"],
            r["single_other_ms_per_item"],
        )
    )
    total = (
        "all (process CPU per item)",
        1000 * r["rollout_cpu_per_item_s"],
        1000 * r["single_cpu_per_item_s"],
    )
    return [
        "| thread | rollout | one at a time | rollout - one at a time |",
        "|---|---|---|---|",
        *[f"| {label} | {a:.1f} ms | {b:.1f} ms | {a - b:+.1f} ms |" for label, a, b in [*shown, total]],
    ]


def rollout_report(r: dict[str, Any]) -> str:
    n = int(r["targets"])

    def row(label: str, key: str, unit: str, digits: int) -> str:
        rollout, single = r[f"rollout_{key}"], r[f"single_{key}"]
        return f"| {label} | {rollout:.{digits}f}{unit} | {single:.{digits}f}{unit} | **{rollout / single:.3g}** |"

    return "\n".join(
        [
            "## 5. Fan-out: one rollout against the same deployments one POST at a time (issue 5, benchmark 1)",
            "",
            f"N = {n:,} targets x 1 region (`NEXUS_BENCH_FANOUT_TARGETS`, default 1,000), 0 s stacks. The rollout "
            f"is one `POST /rollouts` (no canary, max_concurrent {int(r['max_concurrent'])}) run by "
            "statemachine/rollout.asl.json (Distributed Map; each item an ordinary deployment with its own "
            "execution); the baseline is N `POST /deployments` in a row, then waiting for all of them. Each side "
            "runs in its own fresh process with its own local AWS, so its peak RSS (maxrss, which includes the "
            "local AWS and its N executions' histories) is its own. The two sides run at the same time, so both "
            "meet the same shared machine: run one after the other, the same untimed setup took 89 s on one side "
            "and 70 s on the other, a drift larger than the difference measured. Their timed phases overlapped "
            f"for {_overlap_s(r):.0f} s; outside that, one side had the machine to itself (which flatters the "
            "makespan of the side that ends last, not its CPU time). Every item's executions, Lambda steps and "
            "moto backends share that one Python process and its GIL, so each side uses about one of the 2 "
            "cores, and these figures are a floor, not what AWS would do. For the same reason the local AWS "
            "runs at most "
            f"{DEFAULT_LIMIT} executions of one state machine at once (localaws/admission.py); the "
            "others wait, RUNNING, for a slot. An item has started when its deployment execution began to run "
            "(its ExecutionStarted event), not when it was queued. The caller looks every "
            f"{FANOUT_POLL_SECONDS:g} s with one cheap call (ListExecutions of the rollout machine; GET of the "
            "next unsettled deployment), not a listing of N items.",
            "",
            "| | rollout | one at a time | ratio rollout / one at a time |",
            "|---|---|---|---|",
            row("client time (the requests the caller makes)", "client_s", " s", 2),
            row("items started per second (N / time to the last start)", "started_per_s", "", 2),
            row("makespan (first request to last stack done)", "makespan_s", " s", 1),
            row("items done per second", "items_per_s", "", 2),
            row("process CPU time (all threads)", "cpu_s", " s", 1),
            row("process CPU per item", "cpu_per_item_s", " s", 3),
            row(
                "of which in the cyclic garbage collector, per item (`gc.callbacks`)",
                "gc_per_item_s",
                " s",
                3,
            ),
            row("process CPU per item but the collector's", "cpu_but_gc_per_item_s", " s", 3),
            row("peak RSS of the service process", "peak_rss_mb", " MB", 0),
            f"| deployments that did not succeed | {int(r['rollout_failed'])} | {int(r['single_failed'])} | |",
            f"| most deployment executions running at once | {int(r['rollout_peak_running'])} | "
            f"{int(r['single_peak_running'])} | |",
            f"| deployment executions' task waits that timed out (TaskTimedOut, each then one reconcile) | "
            f"{int(r['rollout_task_timeouts'])} | {int(r['single_task_timeouts'])} | |",
            "",
            *[
                f"Failures of the {side} side (error code: count): {r[f'{side}_failures']}\n"
                for side in FANOUT_SIDES
                if f"{side}_failures" in r
            ],
            "Where each side's CPU goes, per item, by the thread it ran on (bench/cpu.py: each Lambda "
            "invocation and each execution's interpreter run on threads of their own, named by what they run; "
            "each thread's own `thread_time`, for the threads that started in the timed phase, less the "
            "garbage collections that ran on it: a collection runs on whichever thread allocated when the "
            "heap crossed its threshold, so it has a row of its own):",
            "",
            *thread_rows(r),
            "",
            "Per item the rollout does more than the baseline: a Map iteration and its StartItem step "
            "(which starts the item's deployment and waits for its end; the deployment execution's last "
            "step records the item's end and releases the wait, so no PollItem step runs), on top of the "
            "item's own deployment execution; the baseline does an HTTP request per item instead. What "
            "that buys is one "
            "request for the whole fleet, waves with a canary, a failure tolerance and skip-unchanged. The "
            "timed-out waits counted are the deployment executions' (and the rollout execution's own); moto "
            "keeps no history for a Distributed Map's iterations, so an item wait that timed out is not "
            "counted there, but would show as a makespan tail of the item wait's timeout (600 s).",
            "",
            f"Setup, untimed: registering the {n:,} targets (and their roles) took {r['rollout_setup_s']:.0f} s "
            f"and {r['single_setup_s']:.0f} s.",
            "",
        ]
    )
