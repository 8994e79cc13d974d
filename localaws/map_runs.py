"""A Distributed Map fails when more of its items fail than it tolerates, as AWS's does.

Why this exists: moto 5.2.5's Distributed Map counts a failed child execution (``item_counter.failed``)
and goes on; the Map then succeeds with the failed items' outputs left out ("TODO: add support for
failure toleration fields"). On AWS a Map Run whose failed items exceed ``ToleratedFailureCount`` or
``ToleratedFailurePercentage`` (both 0 unless set) fails with ``States.ExceedToleratedFailureThreshold``,
and the Map state's Retry/Catch see that error. A workflow tested on the unpatched local AWS could
rely on a Map that never fails; the rollout workflow's catch-all (``RecordRolloutFailure``) would
never run, and a rollout could end SUCCEEDED with an item that never ended.

:func:`install` wraps ``DistributedItemProcessorWorker._eval_job``: after each item, when the Map Run's
failed (or timed-out) items exceed its tolerance, the job's output becomes that failure, which moto's
job pool turns into the Map's error (its ``MapRunFailed`` event and the state's failure). One
difference stays: AWS also stops the Map Run's other running child executions; here the ones already
running finish their current item (none starts another). An item whose execution was stopped (its
waits for a task token are released, localaws/task_tokens.py) is not a failure: the stopped
execution ends ABORTED, not FAILED.
"""

from __future__ import annotations

from typing import Any

from localaws import task_tokens
from localaws.patching import Patcher

__all__ = ["check_moto_internals", "install"]

_PATCHER = Patcher("localaws.map_runs")
_WORKER = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor."
    "distributed_item_processor_worker"
)
# sha256 of inspect.getsource(DistributedItemProcessorWorker._eval_job) in moto 5.2.5: it counts a
# failed item and leaves job_output None, which this wrapper relies on.
_EVAL_JOB_SHA256 = "c97e0ed4aba18b55041cf230e08702bac92d4aa7ad4f891330dd7a5fa906a72c"
CAUSE = "The specified tolerated failure threshold was exceeded"


def _worker_class() -> Any:
    import importlib

    return importlib.import_module(_WORKER).DistributedItemProcessorWorker


def check_moto_internals() -> None:
    _PATCHER.expect_source(_worker_class(), "_eval_job", _EVAL_JOB_SHA256)
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import JobPool

    _PATCHER.expect(
        "_jobs_number" in JobPool.__init__.__code__.co_names, "JobPool no longer keeps _jobs_number"
    )


def over_tolerance(failed: int, total: int, tolerated_count: int, tolerated_percentage: float) -> bool:
    """AWS's rule: with neither threshold set, no failed item is tolerated; with one or both set, the Map
    Run fails once its failed items exceed either. (moto keeps 0 for a threshold left out, so a 0 beside
    a non-zero other counts as left out.)"""
    if tolerated_count == 0 and tolerated_percentage == 0:
        return failed > 0
    over_count = tolerated_count > 0 and failed > tolerated_count
    over_share = tolerated_percentage > 0 and 100.0 * failed / max(total, 1) > tolerated_percentage
    return over_count or over_share


def _failure(env: Any) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    name = StatesErrorNameType.StatesExceedToleratedFailureThreshold
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=name),
            event_type=HistoryEventType.MapRunFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict lists every kind
                mapRunFailedEventDetails=MapRunFailedEventDetails(error=name.to_name(), cause=CAUSE)
            ),
        )
    )


def _eval_job(original: Any) -> Any:
    def eval_job(self: Any, env: Any, job: Any) -> None:
        original(self, env, job)
        if task_tokens.stopped(env):
            return  # the execution was stopped: its Map Run is aborted, not failed (as on AWS)
        record = self._map_run_record
        counter = record.item_counter
        failed = counter.failed.get() + counter.timed_out.get()
        items = getattr(self._job_pool, "_jobs_number", None) or counter.total.get()  # the Map Run's items
        if job.job_output is None and over_tolerance(
            failed,
            items,
            int(record.tolerated_failure_count or 0),
            float(record.tolerated_failure_percentage or 0),
        ):
            job.job_output = _failure(env)

    return eval_job


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        _PATCHER.wrap(_worker_class(), "_eval_job", _eval_job)
