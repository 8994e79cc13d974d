"""The seven reliability scenarios of issue 14, each a function of its size, run on the local AWS.

Each scenario runs on its own fresh local AWS (:func:`bench.chaos.harness.chaos_service`) and answers a
:class:`Figures`: runs, terminal, spurious failures, stack operations, orphan locks and wall time, plus what
that scenario's figure is about (``extra``) and the checks that figure must pass (``broken`` lists each one
that did not hold). ``make chaos`` runs every scenario at full size, once without and once with its faults
(:func:`side_by_side`), and ``tests/reliability/`` runs each at a small size.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from bench.chaos.harness import Harness, chaos_service
from chalicelib.domain.errors import TransientAwsError
from chalicelib.domain.metrics import Metric
from chalicelib.domain.model import RUNNING_OPERATION_STATUSES
from localaws import lambda_runner
from localaws.faults import NO_FAULTS, FaultSettings

SEED = 7
THROTTLE = FaultSettings(throttle=0.3, seed=SEED)
TEMPLATE = json.dumps(
    {
        "Parameters": {"Env": {"Type": "String", "Default": "a"}},
        "Resources": {
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"Tags": [{"Key": "env", "Value": {"Ref": "Env"}}]},
            }
        },
    }
)
TERMINAL_ITEMS = frozenset({"SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED", "PLANNED"})
OPERATION_TIMEOUT = 600.0


@dataclass
class Figures:
    scenario: str
    runs: int = 0
    terminal: int = 0
    spurious_failures: int = 0
    stack_operations: int = 0
    orphan_locks: int = 0
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)

    def check(self, holds: bool, what: str) -> None:
        if not holds:
            self.broken.append(what)


def _alarmed_errors(invocations: list[Any], h: Harness) -> dict[str, Any]:
    """The Lambda errors of a run, as Lambda counts them (every invocation that ended in an error), those
    of them that handed a throttled AWS back to be retried (RetriesRequested), and what the cloud
    template's errors alarms read: their difference (infra/observability.py)."""
    errors = sum(1 for invocation in invocations if invocation.errored)
    retries = int(h.metrics.total(Metric.RETRIES_REQUESTED))
    kinds = Counter(f"{i.function}: {i.error}" for i in invocations if i.errored)
    return {
        "Lambda errors": errors,
        "Lambda errors by function and type": dict(sorted(kinds.items())),
        "of them throttles handed back to be retried (RetriesRequested)": retries,
        "Lambda errors the errors alarms count": errors - retries,
    }


def _injected(prefix: str) -> int:
    """Faults injected whose count name is ``prefix`` or starts with ``prefix:``."""
    from localaws import faults

    return sum(n for what, n in faults.counts().items() if what == prefix or what.startswith(prefix + ":"))


def _injected_for(kind: str, stack_prefix: str) -> int:
    """``kind:<stack name>`` faults injected on this scenario's stacks (not on a setup stack's late event)."""
    from localaws import faults

    return sum(n for what, n in faults.counts().items() if what.startswith(f"{kind}:{stack_prefix}"))


def _operation_of(body: dict[str, Any]) -> tuple[str, str]:
    return str(body["deployment_id"]), str(body["operation"]["operation_id"])


def _run_operation(h: Harness, method: str, path: str, body: Any, key: str) -> dict[str, Any]:
    status, answer = h.request(method, path, body, key=key)
    if status != 202:
        return {"status": "REFUSED", "error": {"code": f"HTTP {status}", "message": str(answer)}}
    deployment_id, operation_id = _operation_of(answer)
    return h.wait_operation(deployment_id, operation_id, OPERATION_TIMEOUT)


# -------------------------------------------------------------------------- 1: throttling, 100 operations
def throttled_operations(
    operations: int = 100, faults: FaultSettings = THROTTLE, workers: int = 10
) -> Figures:
    """``operations`` operations in parallel, every service throttled: create, update and delete of
    ``operations / 3`` stacks (the last stack's lifecycle cut short when 3 does not divide it)."""
    figures = Figures("throttling")
    stacks = max(1, -(-operations // 3))
    started = 0.0
    with chaos_service(faults) as h:
        (target,) = h.register_targets(1)
        h.faults_on()
        started = time.perf_counter()

        def lifecycle(n: int) -> list[dict[str, Any]]:
            name = f"throttled-{n}"
            create = {
                "target_id": target,
                "region": "us-east-1",
                "stack_name": name,
                "template_body": TEMPLATE,
            }
            steps = min(3, operations - 3 * n)
            ended = [_run_operation(h, "POST", "/deployments", create, f"{name}-create")]
            deployment_id = ended[0].get("deployment_id")
            if steps > 1 and ended[0].get("status") == "ACTIVE" and deployment_id:
                update = {"parameters": {"Env": "b"}}
                ended.append(
                    _run_operation(h, "PUT", f"/deployments/{deployment_id}", update, f"{name}-update")
                )
            if steps > 2 and ended[-1].get("status") == "ACTIVE" and deployment_id:
                ended.append(
                    _run_operation(h, "DELETE", f"/deployments/{deployment_id}", None, f"{name}-delete")
                )
            return ended

        from bench.chaos.harness import Recorder

        with (
            Recorder().recording() as recorder,
            lambda_runner.recording() as invocations,
            ThreadPoolExecutor(workers) as pool,
        ):
            results = [r for rs in pool.map(lifecycle, range(stacks)) for r in rs]
        figures.wall_s = time.perf_counter() - started
        injected = _injected("throttle")
        figures.runs = operations
        figures.terminal = sum(1 for r in results if r.get("status") in ("ACTIVE", "DELETED", "FAILED"))
        failed = [r for r in results if r.get("status") not in ("ACTIVE", "DELETED")]
        figures.spurious_failures = len(failed) + (figures.runs - len(results))
        figures.stack_operations = sum(recorder.stack_calls.values())
        figures.orphan_locks = h.orphan_locks()
        figures.extra = {
            "throttles injected": injected,
            "throttles retried (ThrottlesRetried)": int(h.metrics.total(Metric.THROTTLES_RETRIED)),
            "API answers retried by the client (503/429)": h.client_retries,
            "failure codes": sorted({str((r.get("error") or {}).get("code")) for r in failed}),
            "failures' messages (distinct, first 3)": sorted(
                {str((r.get("error") or {}).get("message"))[:300] for r in failed}
            )[:3],
            "stack calls AWS refused, by error code": recorder.refused_by_code(),
            **_alarmed_errors(invocations, h),
        }
    figures.check(figures.terminal == figures.runs, "100% reach a terminal state")
    figures.check(figures.spurious_failures == 0, "0 fail because of throttling")
    figures.check(figures.orphan_locks == 0, "0 locks left held")
    figures.check(faults.throttle == 0 or figures.extra["throttles injected"] > 0, "throttles were injected")
    return figures


# -------------------------------------------------------------------- 2: a crash after each Task state
@dataclass(frozen=True)
class TaskState:
    """A Task state of one of the definitions, and the Lambda function it runs (what crash_after names)."""

    machine: str  # "deployment" or "rollout": statemachine/<machine>.asl.json
    state: str
    function: str


def task_states() -> list[TaskState]:
    """Every Task state of both definitions, read from the ``.asl.json`` files: Map iterations' (and
    Parallel branches') included. A ``.waitForTaskToken`` task names its function in its Parameters."""
    from infra.package import DEFINITION_PATH, PLACEHOLDER, ROLLOUT_DEFINITION_PATH

    found: list[TaskState] = []

    def walk(machine: str, states: dict[str, Any]) -> None:
        for name, state in states.items():
            if state["Type"] == "Task":
                named = str((state.get("Parameters") or {}).get("FunctionName", state["Resource"]))
                match = PLACEHOLDER.fullmatch(named)
                if match is None:
                    raise ValueError(f"{machine} {name}: runs {named!r}, not a ${{Function}} placeholder")
                found.append(TaskState(machine, name, match.group(1)))
            elif state["Type"] == "Map":
                walk(machine, (state.get("ItemProcessor") or state["Iterator"])["States"])
            elif state["Type"] == "Parallel":
                for branch in state["Branches"]:
                    walk(machine, branch["States"])

    for machine, path in (("deployment", DEFINITION_PATH), ("rollout", ROLLOUT_DEFINITION_PATH)):
        walk(machine, json.loads(path.read_text())["States"])
    return found


@dataclass(frozen=True)
class CrashCase:
    """One case of the crash scenario: the Task state whose function crashes after its work, what runs to
    reach it (one create, or one rollout, with ``template``) and on which local AWS, and how that run must
    end: ``ends`` the deployment's status (ACTIVE unless given) or the rollout's (SUCCEEDED), ``items_end``
    each item's ("FAILED <error code>" for a failure)."""

    machine: str
    state: str
    rollout: bool = False
    template: str = TEMPLATE
    time_out: frozenset[str] = frozenset()  # functions that time out on the way (NEXUS_LOCAL_FAULTS)
    item_waits: bool = False  # on the local AWS whose items outlast StartItem's wait (ITEM_*)
    ends: str = ""
    items_end: str = "SUCCEEDED"

    @property
    def ends_as(self) -> str:
        return self.ends or ("SUCCEEDED" if self.rollout else "ACTIVE")

    @property
    def name(self) -> str:
        inside = ", in a rollout item's deployment" if self.rollout and self.machine == "deployment" else ""
        return f"{self.machine} {self.state}{inside}"

    @property
    def stack_name(self) -> str:
        return f"crash-{'rollout-' if self.rollout else ''}{self.state}"


# A template CloudFormation refuses in CreateStack (ValidationError: an unknown resource type). The API
# accepts it: it refuses only what is certainly wrong (chalicelib/domain/templates.py).
REFUSED_TEMPLATE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queuee"}}})
# Where items outlast StartItem's wait: a stack takes ITEM_STACK_SECONDS and StartItem's task waits
# ITEM_START_WAIT (on AWS: the event timeout plus START_SECONDS, over 2 minutes, so that the item's first
# read comes late); stack events are waited for up to ITEM_EVENT_TIMEOUT, longer than any stack here.
ITEM_STACK_SECONDS = 4
ITEM_START_WAIT = 2
ITEM_EVENT_TIMEOUT = 30
CRASH_CASES: tuple[CrashCase, ...] = (
    # A create runs each of the deployment's Task states but its catch-all; WaitForStackEvent's function
    # parks the task's token until the stack's event, which releases it to PollStack.
    CrashCase("deployment", "AcquireLock"),
    CrashCase("deployment", "StartStackOperation"),
    CrashCase("deployment", "WaitForStackEvent"),
    CrashCase("deployment", "PollStack"),
    CrashCase("deployment", "ReleaseLock"),
    # A create of a template CloudFormation refuses: StartStackOperation's CreateStack fails (that call,
    # refused, is the operation's one stack call) and its Catch runs RecordFailure.
    CrashCase("deployment", "RecordFailure", template=REFUSED_TEMPLATE, ends="FAILED AWS_REQUEST_FAILED"),
    # A rollout: NextWave opens and closes the wave, StartItem starts the item's deployment and waits for
    # its end, which that deployment's ReleaseLock records on the item, releasing StartItem.
    CrashCase("rollout", "NextWave", rollout=True),
    CrashCase("rollout", "StartItem", rollout=True),
    CrashCase("deployment", "ReleaseLock", rollout=True),
    # Items whose stacks outlast StartItem's wait: PollItem reads each, finds its operation running, and
    # WaitForItemEnd (AwaitItem) waits for its end.
    CrashCase("rollout", "WaitForItemEnd", rollout=True, item_waits=True),
    CrashCase("rollout", "PollItem", rollout=True, item_waits=True),
    # There, PollItem times out: its Catch, RecordItemFailure, finds each item's operation running, so the
    # item is not FAILED with the step's error: its iteration waits for the operation again and the item
    # ends as its deployment did.
    CrashCase(
        "rollout", "RecordItemFailure", rollout=True, item_waits=True, time_out=frozenset({"PollItem"})
    ),
    # There, PollItem then RecordItemFailure time out: the iteration fails past its Catch, so the Map fails
    # (States.ExceedToleratedFailureThreshold, recorded as INTERNAL_ERROR) and RecordRolloutFailure waits
    # for the running items, which end as their deployments did, before the rollout ends FAILED.
    CrashCase(
        "rollout",
        "RecordRolloutFailure",
        rollout=True,
        item_waits=True,
        time_out=frozenset({"PollItem", "RecordItemFailure"}),
        ends="FAILED INTERNAL_ERROR",
    ),
)


def check_crash_cases(states: list[TaskState], cases: tuple[CrashCase, ...] = CRASH_CASES) -> None:
    """ValueError unless every Task state of the definitions has a crash case and every case is of one:
    a Task state added to a definition fails the scenario until it has its case; it is never skipped."""
    named = {(s.machine, s.state) for s in states}
    covered = {(c.machine, c.state) for c in cases}
    missing = [f"{machine} {state}" for machine, state in sorted(named - covered)]
    if missing:
        raise ValueError(f"Task states with no crash case (bench/chaos/scenarios.py): {', '.join(missing)}")
    unknown = [f"{machine} {state}" for machine, state in sorted(covered - named)]
    if unknown:
        raise ValueError(f"crash cases of no Task state of the definitions: {', '.join(unknown)}")


@contextmanager
def _start_item_waits(seconds: int, event_timeout: int) -> Iterator[None]:
    """StartItem's wait for its item's operation is ``seconds`` long, in the rollouts started meanwhile
    (it is the event timeout plus START_SECONDS, StartItem's own Lambda timeout, read as each starts)."""
    from chalicelib.service.rollouts import waves

    with mock.patch.object(waves, "START_SECONDS", seconds - event_timeout):
        yield


def _outcome(status: Any, error: Any) -> str:
    """``status``, or ``FAILED <error code>``: what a case expects a run to end as."""
    code = (error or {}).get("code") if status == "FAILED" else None
    return f"{status} {code}" if code else str(status)


def crashed_steps(crash: bool = True, rollout_targets: int = 2, item_waits: bool | None = None) -> Figures:
    """Each Task state's function in turn crashes after its work, the first time it runs for an input
    (``crash`` False: the same runs, uncrashed), in the run its case makes (:data:`CRASH_CASES`): one
    create, or one rollout of ``rollout_targets`` items. Every Task state of both definitions has its
    case, or nothing runs (:func:`check_crash_cases`). The cases whose items outlast StartItem's wait
    run on a local AWS of their own, whose stacks take ``ITEM_STACK_SECONDS``. ``item_waits``: only
    those cases (True), or only the others (False); both by default (the tests run each group apart, so
    that two workers share them)."""
    states = task_states()
    check_crash_cases(states)
    functions = {(s.machine, s.state): s.function for s in states}
    figures = Figures("step crashes")
    if item_waits is not True:
        with chaos_service(NO_FAULTS) as h:
            plain = [c for c in CRASH_CASES if not c.item_waits]
            _crash_cases(h, plain, functions, crash, rollout_targets, figures)
    if item_waits is not False:
        tuning = {"NEXUS_EVENT_TIMEOUT_SECONDS": str(ITEM_EVENT_TIMEOUT)}
        with (
            _start_item_waits(ITEM_START_WAIT, ITEM_EVENT_TIMEOUT),
            chaos_service(NO_FAULTS, stack_seconds=ITEM_STACK_SECONDS, tuning=tuning) as h,
        ):
            waiting = [c for c in CRASH_CASES if c.item_waits]
            _crash_cases(h, waiting, functions, crash, rollout_targets, figures)
    figures.check(figures.terminal == figures.runs, "every operation terminal")
    figures.check(figures.orphan_locks == 0, "0 locks left held")
    figures.check(
        figures.spurious_failures == 0, "every run ended as its case expects (none because of a crash)"
    )
    return figures


def _crash_cases(
    h: Harness,
    cases: list[CrashCase],
    functions: dict[tuple[str, str], str],
    crash: bool,
    rollout_targets: int,
    figures: Figures,
) -> None:
    """Run ``cases`` one after the other on this local AWS, adding to ``figures``."""
    from bench.chaos.harness import Recorder
    from localaws import faults

    targets = h.register_targets(max(1, rollout_targets))
    started = time.perf_counter()
    held = h.orphan_locks()  # 0: none before the first case
    for case in cases:
        function = functions[(case.machine, case.state)]
        crashes = frozenset({function}) if crash else frozenset()
        h.faults = FaultSettings(crash_after=crashes, time_out=case.time_out, seed=SEED)
        h.faults_on()
        with Recorder().recording() as recorder, lambda_runner.recording() as invocations:
            if case.rollout:
                ended = _crashed_rollout(h, case, targets[:rollout_targets], figures)
            else:
                ended = _crashed_create(h, case, targets[0], figures)
            now_held = h.orphan_locks()  # once every execution has ended
        locks, held = now_held - held, now_held
        injected = faults.counts()
        crashed = injected.get(f"crash:{function}", 0)
        ran = [i for i in invocations if i.function == function]
        answered = sum(1 for i in ran if not i.errored)
        calls = recorder.stack_calls[case.stack_name]
        operations = ended.pop("operations")
        figures.stack_operations += calls
        figures.extra[case.name] = {
            "function": function,
            **ended,
            "stack calls": calls,
            "crashes": crashed,
            "runs of the function": len(ran),
            "locks left held": locks,
        }
        figures.check(calls == operations, f"{case.name}: exactly 1 stack call per operation")
        figures.check(locks == 0, f"{case.name}: 0 locks left held")
        # Each crash is followed by a run of the same input that answers (the state's Retry).
        figures.check(answered >= max(1, crashed), f"{case.name}: {function} ran, and again after a crash")
        figures.check(not crash or crashed >= 1, f"{case.name}: {function} crashed")
        figures.check(
            all(injected.get(f"time_out:{f}", 0) >= 1 for f in case.time_out),
            f"{case.name}: {'+'.join(sorted(case.time_out))} timed out",
        )
    figures.wall_s += time.perf_counter() - started
    figures.orphan_locks += held


def _crashed_create(h: Harness, case: CrashCase, target: str, figures: Figures) -> dict[str, Any]:
    """The case's create, to its end; how it ended, and its operations (1)."""
    name = case.stack_name
    body = {"target_id": target, "region": "us-east-1", "stack_name": name, "template_body": case.template}
    ended = _run_operation(h, "POST", "/deployments", body, name)
    outcome = _outcome(ended.get("status"), ended.get("error"))
    figures.runs += 1
    figures.terminal += ended.get("status") in ("ACTIVE", "FAILED")
    figures.spurious_failures += outcome != case.ends_as
    figures.check(outcome == case.ends_as, f"{case.name}: ended {outcome}, not {case.ends_as}")
    return {"outcome": outcome, "operations": 1}


def _crashed_rollout(h: Harness, case: CrashCase, targets: list[str], figures: Figures) -> dict[str, Any]:
    """The case's rollout, to its end and its items' deployments' ends; how they ended, and its
    operations (one per item that started one)."""
    view = _run_rollout(h, targets, case.stack_name, tolerance=0)
    items: list[dict[str, Any]] = view["items"]
    operations = {
        str(i["deployment_id"]): (h.deployment(str(i["deployment_id"])).get("operation") or {}).get("status")
        for i in items
        if i.get("deployment_id")
    }
    items_end = Counter(_outcome(i["status"], i.get("error")) for i in items)
    rollout = _outcome(view["status"], view.get("error"))
    figures.runs += len(items)
    figures.terminal += sum(
        1
        for i in items
        if i["status"] in TERMINAL_ITEMS
        and operations.get(str(i.get("deployment_id")), "none") not in RUNNING_OPERATION_STATUSES
    )
    figures.spurious_failures += len(items) - items_end[case.items_end]
    figures.check(rollout == case.ends_as, f"{case.name}: the rollout ended {rollout}, not {case.ends_as}")
    figures.check(set(items_end) == {case.items_end}, f"{case.name}: items ended {dict(items_end)}")
    return {
        "outcome": f"rollout {rollout}",
        "items": dict(items_end),
        "their operations": dict(Counter(str(s) for s in operations.values())),
        "operations": len(operations),
    }


# ---------------------------------------------------------------------------- 3: 20% stack events lost
def lost_events(
    operations: int = 30, faults: FaultSettings | None = None, event_timeout: int = 3, events_lost: int = 0
) -> Figures:
    """``operations`` creates (each its own stack) while 20% of stack events are lost.

    ``events_lost`` is NEXUS_EVENTS_LOST_SECONDS: 0 (here) keeps every operation waiting for its event,
    so that each operation whose final event is lost must end through its own timeout reconcile; the
    service's default (3600) has the account and region poll after the first lost event instead."""
    faults = FaultSettings(drop_stack_events=0.2, seed=SEED) if faults is None else faults
    figures = Figures("lost stack events")
    tuning = {
        "NEXUS_EVENT_TIMEOUT_SECONDS": str(event_timeout),
        "NEXUS_EVENTS_LOST_SECONDS": str(events_lost),
    }
    with chaos_service(faults, stack_seconds=0.5, tuning=tuning) as h:
        (target,) = h.register_targets(1)
        h.faults_on()
        started = time.perf_counter()

        def create(n: int) -> dict[str, Any]:
            name = f"lost-{n}"
            body = {"target_id": target, "region": "us-east-1", "stack_name": name, "template_body": TEMPLATE}
            return _run_operation(h, "POST", "/deployments", body, name)

        from bench.chaos.harness import Recorder

        with Recorder().recording() as recorder, ThreadPoolExecutor(10) as pool:
            results = list(pool.map(create, range(operations)))
        figures.wall_s = time.perf_counter() - started
        figures.runs = operations
        figures.terminal = sum(1 for r in results if r.get("status") in ("ACTIVE", "FAILED"))
        figures.spurious_failures = sum(1 for r in results if r.get("status") != "ACTIVE")
        figures.stack_operations = sum(recorder.stack_calls.values())
        figures.orphan_locks = h.orphan_locks()
        figures.extra = {
            "stack events lost": _injected("dropped_stack_events"),
            "of them an operation's final event": _injected_for("dropped_final_stack_event", "lost-"),
            "fallback reconciles (FallbackReconciles)": int(h.metrics.total(Metric.FALLBACK_RECONCILES)),
            "event wait before the reconcile (NEXUS_EVENT_TIMEOUT_SECONDS)": event_timeout,
            "polling after a lost event (NEXUS_EVENTS_LOST_SECONDS)": events_lost,
        }
    figures.check(figures.terminal == figures.runs, "every operation terminal")
    figures.check(figures.spurious_failures == 0, "none failed because an event was lost")
    figures.check(figures.orphan_locks == 0, "0 locks left held")
    final, reconciles = (
        figures.extra["of them an operation's final event"],
        figures.extra["fallback reconciles (FallbackReconciles)"],
    )
    if events_lost == 0:  # every operation waited for its event: each lost final one costs one reconcile
        figures.check(
            reconciles == final, "each operation whose final event was lost ends through the reconcile"
        )
    else:
        figures.check(final == 0 or reconciles >= 1, "a lost event ends through the timeout reconcile")
    return figures


# -------------------------------------------------------------------- 4: concurrent creates of one stack
def concurrent_creates(creates: int = 50, faults: FaultSettings = THROTTLE) -> Figures:
    figures = Figures("concurrent creates of one stack")
    with chaos_service(faults) as h:
        (target,) = h.register_targets(1)
        h.faults_on()
        barrier = threading.Barrier(creates)
        body = {
            "target_id": target,
            "region": "us-east-1",
            "stack_name": "contended",
            "template_body": TEMPLATE,
        }

        def create(n: int) -> tuple[int, Any]:
            barrier.wait()
            return h.request("POST", "/deployments", body, key=f"contender-{n}")

        started = time.perf_counter()
        from bench.chaos.harness import Recorder

        with Recorder().recording() as recorder:
            with ThreadPoolExecutor(creates) as pool:
                answers = list(pool.map(create, range(creates)))
            accepted = [a for s, a in answers if s == 202]
            for answer in accepted:
                h.wait_operation(*_operation_of(answer), OPERATION_TIMEOUT)
        figures.wall_s = time.perf_counter() - started
        statuses = [s for s, _ in answers]
        stacks = h.stacks("500000000000")
        figures.runs = len(accepted)
        figures.terminal = len(accepted)
        figures.stack_operations = recorder.stack_calls["contended"]
        figures.orphan_locks = h.orphan_locks()
        figures.extra = {
            "202 (runs)": statuses.count(202),
            "409": statuses.count(409),
            "other answers": sorted(s for s in statuses if s not in (202, 409)),
            "stacks": len(stacks),
        }
        figures.check(statuses.count(202) == 1, "exactly 1 runs")
        figures.check(statuses.count(409) == creates - 1, f"{creates - 1} get 409")
        figures.check(len(stacks) == 1, "1 stack")
        figures.check(figures.stack_operations == 1, "1 stack call")
        figures.check(figures.orphan_locks == 0, "0 locks left held")
    return figures


# -------------------------------------------------------------------- 5: duplicate redeploy events
def duplicate_redeploys(events: int = 1000, faults: FaultSettings = THROTTLE) -> Figures:
    figures = Figures("duplicate redeploy events")
    with chaos_service(faults) as h:
        (target,) = h.register_targets(1)
        body = {
            "target_id": target,
            "region": "us-east-1",
            "stack_name": "redeployed",
            "template_body": TEMPLATE,
        }
        created = _run_operation(h, "POST", "/deployments", body, "redeployed")
        deployment_id = str(created["deployment_id"])
        event = {
            "version": "0",
            "id": "6f1d7e8a-0000-4000-8000-000000000001",
            "detail-type": "Redeploy Requested",
            "source": "nexus.deployer",
            "account": h.aws.central.account_id,
            "time": "2026-12-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"tenant_id": "chaos", "deployment_ids": [deployment_id], "reason": "rotate"},
        }
        h.faults_on()
        started = time.perf_counter()
        from bench.chaos.harness import Recorder

        lambda_retries = 0
        retries_lock = threading.Lock()

        def deliver(_: int) -> dict[str, Any]:
            nonlocal lambda_retries
            for attempt in range(3):  # Lambda runs a failed asynchronous invocation twice more
                try:
                    return dict(h.client.lambda_.invoke("RedeployRequested", event).payload)
                except TransientAwsError:  # a throttled AWS leaves the handler for Lambda to retry
                    if attempt < 2:
                        with retries_lock:
                            lambda_retries += 1
            return {"dead_lettered": True}  # after Lambda's third attempt: the dead-letter queue

        with Recorder().recording() as recorder:
            with ThreadPoolExecutor(8) as pool:  # duplicates arrive together, as EventBridge delivers them
                results = list(pool.map(deliver, range(events)))
            started_ops = [
                r["started"][deployment_id] for r in results if deployment_id in (r.get("started") or {})
            ]
            for operation_id in started_ops:
                h.wait_operation(deployment_id, operation_id, OPERATION_TIMEOUT)
        figures.wall_s = time.perf_counter() - started
        figures.runs = len(started_ops)
        figures.terminal = len(started_ops)
        figures.stack_operations = recorder.stack_calls["redeployed"]
        figures.orphan_locks = h.orphan_locks()
        figures.extra = {
            "events": events,
            "redeploys started": len(started_ops),
            "answered as duplicates": sum(1 for r in results if r.get("duplicates") == [deployment_id]),
            "answered refused, by code": dict(
                Counter(
                    str(r["refused"][deployment_id])
                    for r in results
                    if deployment_id in (r.get("refused") or {})
                )
            ),
            "invocations retried (as Lambda retries an async failure)": lambda_retries,
            "events sent to the dead-letter queue (3 attempts failed)": sum(
                1 for r in results if r.get("dead_lettered")
            ),
        }
        final = h.deployment(deployment_id)
        figures.check(len(started_ops) == 1, "exactly 1 redeploy")
        figures.check(final["status"] == "ACTIVE", "the redeploy ended ACTIVE")
        figures.check(figures.orphan_locks == 0, "0 locks left held")
    return figures


# -------------------------------------------------------------------- 6: a rollout under throttling
def _run_rollout(
    h: Harness, targets: list[str], stack: str, tolerance: int | str, max_concurrent: int = 10
) -> dict[str, Any]:
    body = {
        "stack_name": stack,
        "template_body": TEMPLATE,
        "targets": [{"target_id": t} for t in targets],
        "strategy": {"max_concurrent": max_concurrent, "failure_tolerance": tolerance},
    }
    status, answer = h.request("POST", "/rollouts", body, key=f"rollout-{stack}")
    if status != 202:
        raise RuntimeError(f"POST /rollouts: {status} {answer}")
    rollout_id = answer["rollout_id"]
    deadline = time.monotonic() + OPERATION_TIMEOUT + 10 * len(targets)
    while True:
        status, view = h.request("GET", f"/rollouts/{rollout_id}?limit=1000")
        if status == 200 and view["status"] in ("SUCCEEDED", "FAILED", "CANCELLED", "PAUSED"):
            h.aws.drain_executions(timeout=60)
            _, view = h.request("GET", f"/rollouts/{rollout_id}?limit=1000")
            result: dict[str, Any] = view
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"rollout {rollout_id} did not end: {view}")
        time.sleep(0.2)


def throttled_rollout(
    targets: int = 100, faults: FaultSettings = THROTTLE, tolerance: str = "10%", max_concurrent: int = 25
) -> Figures:
    figures = Figures("rollout under throttling")
    with chaos_service(faults) as h:
        fleet = h.register_targets(targets, first_account=600000000000)
        h.faults_on()
        started = time.perf_counter()
        from bench.chaos.harness import Recorder

        with Recorder().recording() as recorder, lambda_runner.recording() as invocations:
            view = _run_rollout(h, fleet, "fleet", tolerance, max_concurrent)
        figures.wall_s = time.perf_counter() - started
        counts: dict[str, int] = view["counts"]
        items = view["items"]
        failed = counts.get("FAILED", 0)
        figures.runs = targets
        figures.terminal = sum(1 for i in items if i["status"] in TERMINAL_ITEMS)
        figures.spurious_failures = failed
        figures.stack_operations = recorder.stack_calls["fleet"]
        figures.orphan_locks = h.orphan_locks()
        figures.extra = {
            "rollout": view["status"],
            "counts": counts,
            "failed items by error code": dict(
                Counter(str((i.get("error") or {}).get("code")) for i in items if i["status"] == "FAILED")
            ),
            "failed items' messages (distinct, first 3)": sorted(
                {str((i.get("error") or {}).get("message"))[:200] for i in items if i["status"] == "FAILED"}
            )[:3],
            "failure tolerance": view["failure_tolerance"],
            "max concurrent": max_concurrent,
            "stack calls AWS refused, by error code": recorder.refused_by_code("fleet"),
            "throttles injected": _injected("throttle"),
            "throttles retried (ThrottlesRetried)": int(h.metrics.total(Metric.THROTTLES_RETRIED)),
            **_alarmed_errors(invocations, h),
        }
        figures.check(figures.terminal == targets, "every item terminal")
        figures.check(
            sum(counts.values()) == targets and len(items) == targets, "no item lost from the counts"
        )
        figures.check(
            failed <= view["failure_tolerance"] or view["status"] == "FAILED", "tolerance respected"
        )
        figures.check(figures.orphan_locks == 0, "0 locks left held")
    return figures


# -------------------------------------------------------------------- 7: malformed requests
def _malformed(rng: random.Random, target: str) -> tuple[str, str, bytes]:
    """One malformed request: a broken body, a wrong type, an unknown field, a bad value or a bad text."""
    valid = {"target_id": target, "region": "us-east-1", "stack_name": "m", "template_body": TEMPLATE}
    kind = rng.randrange(8)
    route = rng.choice([("POST", "/deployments"), ("POST", "/targets"), ("POST", "/rollouts"),
                        ("PUT", "/deployments/dep-" + "0" * 24)])  # fmt: skip
    if kind == 0:
        return (*route, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
    if kind == 1:
        return (*route, b'{"stack_name": ' + b"[" * rng.randrange(33, 3000))
    body: dict[str, Any] = dict(valid)
    if kind == 2:
        body[rng.choice(list(valid))] = rng.choice([None, 7, [], {}, True, 1.5])
    elif kind == 3:
        body[f"unknown_{rng.randrange(100)}"] = "x"
    elif kind == 4:
        body["stack_name"] = rng.choice(["1abc", "a" * 129, "a_b", "", "a\u0000b"])
    elif kind == 5:
        body["region"] = rng.choice(["us-east-9", "mars-1", "US-EAST-1", "us-east-1\n"])
    elif kind == 6:
        body["template_body"] = rng.choice(["{", "[]", "Resources: [", '{"Resources": 7}', "\ud800"])
    else:
        body["parameters"] = {"Env\u0007": "x"} if rng.random() < 0.5 else {"Undeclared": "x"}
    if route[0] == "POST" and route[1] == "/deployments":
        return (*route, json.dumps(body).encode("utf-8", "surrogatepass"))
    # Other routes get the same broken fields in their own shape: unknown to them, or wrongly typed.
    return (*route, json.dumps({**body, "regions": "us-east-1"}).encode("utf-8", "surrogatepass"))


def malformed_requests(requests: int = 1000, faults: FaultSettings = THROTTLE) -> Figures:
    figures = Figures("malformed requests")
    with chaos_service(faults) as h:
        (target,) = h.register_targets(1)
        dynamodb = h.aws.account_session(h.aws.central.account_id).client("dynamodb")

        def items() -> int:
            return int(dynamodb.scan(TableName=h.aws.central.table_name, Select="COUNT")["Count"])

        before = items()
        rng = random.Random(SEED)
        h.faults_on()
        started = time.perf_counter()
        from bench.chaos.harness import Recorder

        statuses: list[int] = []
        with Recorder().recording() as recorder:
            for _ in range(requests):
                method, path, body = _malformed(rng, target)
                response = h.client.http.request(method, path, headers=h.headers, body=body)
                statuses.append(response.status_code)
        figures.wall_s = time.perf_counter() - started
        h.faults_off()
        after = items()
        figures.runs = requests
        figures.terminal = requests
        figures.stack_operations = sum(recorder.stack_calls.values())
        five = sum(1 for s in statuses if s >= 500)
        accepted = sum(1 for s in statuses if s < 400)
        figures.spurious_failures = five
        figures.extra = {
            "5xx": five,
            "2xx/3xx": accepted,
            "DynamoDB writes": recorder.dynamodb_writes,
            "table items before/after": f"{before}/{after}",
            "answers": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        }
        figures.check(five == 0, "0 5xx")
        figures.check(accepted == 0, "every one refused with a 4xx")
        figures.check(recorder.dynamodb_writes == 0 and before == after, "0 writes")
    return figures


SCENARIOS: dict[str, tuple[str, Callable[..., Figures], str]] = {
    "throttling": (
        "100 operations (create, update, delete), 30% throttling on every service",
        throttled_operations,
        "100% terminal; 0 fail because of throttling; retries counted",
    ),
    "crashes": (
        "a crash after the side effect of each Task state in turn (both state machines)",
        crashed_steps,
        "exactly 1 stack call per operation; 0 locks held; every operation terminal",
    ),
    "lost-events": (
        "20% of stack events lost",
        lost_events,
        "every operation ends through the timeout reconcile; fallback reconciles counted",
    ),
    "concurrent-creates": (
        "50 concurrent creates of one stack",
        concurrent_creates,
        "1 runs; 49 get 409; 1 stack",
    ),
    "duplicate-redeploys": ("1,000 duplicate redeploy events", duplicate_redeploys, "exactly 1 redeploy"),
    "rollout": (
        "a 100-target rollout under 30% throttling",
        throttled_rollout,
        "every item terminal; tolerance respected; no item lost from the counts",
    ),
    "malformed": ("1,000 malformed requests", malformed_requests, "0 5xx; 0 writes"),
}
