"""The local AWS's bound on running executions (localaws/admission.py), through the real Step Functions API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localaws import admission
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from tests.support.polling import until

WAIT_THEN_SUCCEED = json.dumps(
    {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 1, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }
)


def test_canary_moto_execution_worker_is_what_admission_wraps() -> None:
    admission.check_moto_internals()
    admission.install(limit=admission.DEFAULT_LIMIT)
    admission.check_moto_internals()  # still checks moto's originals after the swap


def _blocking(started: list[Any], release: threading.Event) -> Callable[[Any], Callable[[], None]]:
    """Work that records its name when it starts, then holds its slot until ``release`` is set."""

    def work(name: Any) -> Callable[[], None]:
        def run() -> None:
            started.append(name)
            release.wait(5)

        return run

    return work


def test_admission_runs_at_most_the_limit_per_key() -> None:
    gate = admission.Admission(limit=2)
    release = threading.Event()
    started: list[str] = []
    work = _blocking(started, release)

    for n in range(5):
        gate.submit("machine-a", n, work(f"a{n}"))
    gate.submit("machine-b", "b", work("b0"))  # another key has its own slots
    until(lambda: len(started) == 3, timeout=5, interval=0.01, what="three started")
    time.sleep(0.1)  # room for a wrongly admitted fourth to show up
    assert sorted(started) == ["a0", "a1", "b0"]
    assert (gate.running("machine-a"), gate.waiting("machine-a")) == (2, 3)
    release.set()
    until(
        lambda: gate.running("machine-a") == gate.running("machine-b") == 0,
        timeout=5,
        interval=0.01,
        what="nothing running",
    )
    assert sorted(started[3:]) == ["a2", "a3", "a4"]
    assert gate.peak("machine-a") == 2
    assert gate.waiting("machine-a") == 0
    with pytest.raises(ValueError, match="at least 1"):
        admission.Admission(limit=0)


def test_admission_starts_waiting_work_in_order_and_can_withdraw_it() -> None:
    gate = admission.Admission(limit=1)
    release = threading.Event()
    started: list[int] = []
    work = _blocking(started, release)

    for n in range(5):
        gate.submit("machine", n, work(n))
    assert gate.withdraw("machine", 3) is True
    assert gate.withdraw("machine", 3) is False  # no longer waiting
    assert gate.withdraw("machine", 0) is False  # running, not waiting
    release.set()
    until(lambda: gate.running("machine") == 0, timeout=5, interval=0.01, what="nothing running")
    assert started == [0, 1, 2, 4]


@pytest.fixture
def limited(local_aws: LocalAws) -> Iterator[tuple[Any, str]]:
    """A 1 s Wait machine in the central account, with at most 2 running executions of it."""
    sfn = local_aws.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
    arn = sfn.create_state_machine(
        name="admission-probe", definition=WAIT_THEN_SUCCEED, roleArn=local_aws.central.service_role_arn
    )["stateMachineArn"]
    admission.admission.set_limit(2)
    admission.admission.reset_peak(arn)  # the same ARN in every LocalAws: count this test's runs only
    try:
        yield sfn, arn
    finally:
        admission.admission.set_limit(admission.DEFAULT_LIMIT)


def _status(sfn: Any, arn: str) -> str:
    return str(sfn.describe_execution(executionArn=arn)["status"])


def _wait_ended(sfn: Any, arns: list[str], seconds: float = 20) -> None:
    until(
        lambda: [_status(sfn, arn) for arn in arns],
        ready=lambda statuses: "RUNNING" not in statuses,
        timeout=seconds,
        what=f"{arns} to end",
    )


def test_executions_beyond_the_limit_wait_running_with_no_history_then_all_succeed(
    limited: tuple[Any, str],
) -> None:
    sfn, machine = limited
    arns = [sfn.start_execution(stateMachineArn=machine, name=f"e{n}")["executionArn"] for n in range(5)]
    time.sleep(0.3)
    assert [_status(sfn, arn) for arn in arns] == ["RUNNING"] * 5
    histories = [sfn.get_execution_history(executionArn=arn)["events"] for arn in arns]
    assert [bool(h) for h in histories] == [True, True, False, False, False]  # FIFO: the first two run
    assert admission.admission.waiting(machine) == 3

    _wait_ended(sfn, arns)
    assert [_status(sfn, arn) for arn in arns] == ["SUCCEEDED"] * 5
    assert admission.admission.peak(machine) == 2
    starts = [
        sfn.get_execution_history(executionArn=arn)["events"][0]["timestamp"].timestamp() for arn in arns
    ]
    assert starts[2] - starts[0] >= 0.9  # the third started when a 1 s execution ended, not beside them


def test_stopping_a_waiting_execution_aborts_it_at_once(limited: tuple[Any, str]) -> None:
    sfn, machine = limited
    arns = [sfn.start_execution(stateMachineArn=machine, name=f"s{n}")["executionArn"] for n in range(3)]
    sfn.stop_execution(executionArn=arns[2], error="Cancelled", cause="by the test")
    _wait_ended(sfn, [arns[2]], seconds=0.8)  # before either running execution's 1 s Wait ends
    assert _status(sfn, arns[2]) == "ABORTED"
    assert [_status(sfn, arn) for arn in arns[:2]] == ["RUNNING", "RUNNING"]
    types = [e["type"] for e in sfn.get_execution_history(executionArn=arns[2])["events"]]
    assert types[-1] == "ExecutionAborted"
    assert "WaitStateEntered" not in types
    _wait_ended(sfn, arns[:2])
    assert admission.admission.peak(machine) == 2


def test_task_token_calls_pass_waiting_executions_by(limited: tuple[Any, str]) -> None:
    """moto walks every running execution's environment: one not yet admitted must not break the call."""
    sfn, machine = limited
    arns = [sfn.start_execution(stateMachineArn=machine, name=f"t{n}")["executionArn"] for n in range(4)]
    assert admission.admission.waiting(machine) == 2
    with pytest.raises(ClientError) as raised:
        sfn.send_task_success(taskToken="not-a-token", output="{}")
    assert raised.value.response["Error"]["Code"] in {"InvalidToken", "TaskDoesNotExist"}
    _wait_ended(sfn, arns)  # nothing left running into the next test
