"""A short version of every reliability scenario of ``make chaos`` (bench/chaos/scenarios.py).

The same code as ``make chaos`` at small sizes: the real HTTP API through Chalice's test client, the real
``.asl.json`` workflows on the local AWS, and the local AWS's faults (localaws/faults.py). Each asserts
that the scenario's figure holds (``broken`` is empty) and that the faults really fell.
"""

from __future__ import annotations

import pytest

from bench.chaos import scenarios
from localaws.faults import NO_FAULTS, FaultSettings

# make chaos throttles 30% of calls; here 15%, so that one create, update and delete take seconds, not minutes.
LIGHT_THROTTLE = FaultSettings(throttle=0.15, seed=7)


def test_operations_under_throttling_all_succeed_and_the_retries_are_counted() -> None:
    figures = scenarios.throttled_operations(operations=3, faults=LIGHT_THROTTLE, workers=1)
    assert figures.broken == [], figures
    assert (figures.runs, figures.terminal, figures.spurious_failures) == (3, 3, 0)
    assert figures.extra["throttles injected"] > 0
    assert figures.extra["throttles retried (ThrottlesRetried)"] > 0
    # No Lambda error but throttles handed back to be retried: the errors alarms stay quiet (the unit
    # tests show a retry counted; here none may be left over, whether or not one happened).
    assert figures.extra["Lambda errors the errors alarms count"] == 0


def test_every_task_state_of_both_definitions_has_a_crash_case() -> None:
    states = scenarios.task_states()
    assert {(s.machine, s.state, s.function) for s in states} == {
        ("deployment", "AcquireLock", "AcquireLock"),
        ("deployment", "StartStackOperation", "StartStackOperation"),
        ("deployment", "WaitForStackEvent", "AwaitStackEvent"),
        ("deployment", "PollStack", "PollStack"),
        ("deployment", "ReleaseLock", "ReleaseLock"),
        ("deployment", "RecordFailure", "RecordFailure"),
        ("rollout", "NextWave", "NextWave"),
        ("rollout", "StartItem", "StartItem"),  # in the Map's iterations, as the next three
        ("rollout", "WaitForItemEnd", "AwaitItem"),
        ("rollout", "PollItem", "PollItem"),
        ("rollout", "RecordItemFailure", "RecordItemFailure"),
        ("rollout", "RecordRolloutFailure", "RecordRolloutFailure"),
    }
    scenarios.check_crash_cases(states)
    # A Task state added to a definition without a case stops the scenario before anything runs.
    added = [*states, scenarios.TaskState("rollout", "NotifyOwner", "NotifyOwner")]
    with pytest.raises(ValueError, match=r"Task states with no crash case .*: rollout NotifyOwner$"):
        scenarios.check_crash_cases(added)
    with pytest.raises(
        ValueError, match=r"crash cases of no Task state of the definitions: rollout PollItem$"
    ):
        scenarios.check_crash_cases([s for s in states if s.state != "PollItem"])


@pytest.mark.parametrize("item_waits", [False, True], ids=["plain-runs", "items-outlasting-their-wait"])
def test_a_crash_after_each_task_state_makes_one_stack_call_and_leaves_no_lock(item_waits: bool) -> None:
    """The crash cases in two groups, one per local AWS (a test each, so that two workers run them)."""
    figures = scenarios.crashed_steps(rollout_targets=1, item_waits=item_waits)
    assert figures.broken == [], figures
    cases = {case.name: case for case in scenarios.CRASH_CASES if case.item_waits is item_waits}
    assert set(figures.extra) == set(cases)
    for name, case in cases.items():
        seen = figures.extra[name]
        # Its function crashed, once per input it ran with (a create's steps: one input each), and ran
        # again after each crash.
        assert seen["crashes"] >= 1 if case.rollout else seen["crashes"] == 1, (name, seen)
        assert seen["runs of the function"] >= 2 * seen["crashes"], (name, seen)
        assert seen["stack calls"] == 1, (name, seen)
        assert seen["locks left held"] == 0, (name, seen)
        if case.rollout:
            assert seen["outcome"] == f"rollout {case.ends_as}", (name, seen)
            assert seen["items"] == {case.items_end: 1}, (name, seen)
            assert seen["their operations"] == {"SUCCEEDED": 1}, (name, seen)
        else:
            assert seen["outcome"] == case.ends_as, (name, seen)
    if item_waits:  # PollItem timed out while the item's deployment ran: the item ended as it did
        assert figures.extra["rollout RecordItemFailure"]["items"] == {"SUCCEEDED": 1}
    else:
        assert figures.extra["deployment RecordFailure"]["outcome"] == "FAILED AWS_REQUEST_FAILED"
    assert figures.runs == figures.terminal == figures.stack_operations == len(cases)
    assert figures.orphan_locks == 0


def test_lost_stack_events_end_through_the_timeout_reconcile() -> None:
    figures = scenarios.lost_events(operations=6, faults=FaultSettings(drop_stack_events=0.5, seed=7))
    assert figures.broken == [], figures
    assert figures.extra["stack events lost"] > 0
    assert figures.extra["fallback reconciles (FallbackReconciles)"] >= 1
    assert figures.terminal == 6


def test_concurrent_creates_of_one_stack_run_once() -> None:
    # Without throttling here (make chaos runs it with and without): a throttled create costs ~40 s.
    figures = scenarios.concurrent_creates(creates=10, faults=NO_FAULTS)
    assert figures.broken == [], figures
    assert figures.extra["202 (runs)"] == 1
    assert figures.extra["409"] == 9
    assert figures.extra["stacks"] == 1


def test_duplicate_redeploy_events_redeploy_once() -> None:
    figures = scenarios.duplicate_redeploys(events=50, faults=NO_FAULTS)
    assert figures.broken == [], figures
    assert figures.extra["redeploys started"] == 1
    assert figures.extra["answered as duplicates"] == 49


def test_a_rollout_under_throttling_ends_every_item_and_keeps_its_counts() -> None:
    figures = scenarios.throttled_rollout(targets=3, faults=LIGHT_THROTTLE)
    assert figures.broken == [], figures
    assert sum(figures.extra["counts"].values()) == 3
    assert figures.extra["throttles injected"] > 0
    assert figures.extra["Lambda errors the errors alarms count"] == 0


def test_malformed_requests_under_throttling_are_4xx_and_write_nothing() -> None:
    figures = scenarios.malformed_requests(requests=150)
    assert figures.broken == [], figures
    assert figures.extra["5xx"] == 0
    assert figures.extra["DynamoDB writes"] == 0
