"""``StopExecution``'s ``error`` and ``cause`` are kept, as Step Functions keeps them.

Why this exists: on AWS, the error and cause given to ``StopExecution`` are what ``DescribeExecution``
answers for the ABORTED execution, what its ``ExecutionAborted`` history event carries, and what its
"Execution Status Change" event says. moto 5.2.5's ``StopExecution`` reads neither (its backend stops
the execution with ``error=""`` and ``cause=""``), so a stopped execution said nothing about why.
:func:`install`:

* wraps moto's ``StopExecution`` action so that the request's ``error`` and ``cause`` reach the
  execution's ``stop`` (the interpreter's ``ProgramStopped`` and the ``ExecutionAborted`` event then
  carry them; an execution still waiting for admission, ``localaws/admission.py``, too);
* copies a stopped program's error and cause onto the execution when moto reflects its end, before
  ``localaws/execution_events.py`` builds the status-change event from it.

Empty values stay absent, as on AWS.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from typing import Any

from localaws.patching import Patcher, params, source_digest

__all__ = ["check_moto_internals", "install"]

_EXECUTION = "moto.stepfunctions.parser.backend.execution"
_PROGRAM_STATE = "moto.stepfunctions.parser.asl.eval.program_state"
# sha256 of moto 5.2.5's StepFunctionResponse.stop_execution: it reads executionArn only.
_STOP_ACTION_SHA256 = "633c8a544aacfd14c07f24bf62b1688a2125f8aba91eecc1feaa40bb7dc45d24"
_PATCHER = Patcher("localaws.stop_reasons")
_request = threading.local()  # the error and cause of the StopExecution this thread is serving


def _stop_action(original: Any) -> Any:
    def stop_execution(self: Any) -> Any:
        _request.reason = (self._get_param("error") or None, self._get_param("cause") or None)
        try:
            return original(self)
        finally:
            _request.reason = None

    return stop_execution


def _stop(original: Any) -> Any:
    def stop(self: Any, stop_date: Any, error: str | None = None, cause: str | None = None) -> Any:
        reason = getattr(_request, "reason", None)
        if reason is not None:
            error, cause = reason
        return original(self, stop_date=stop_date, error=error, cause=cause)

    return stop


def _reflect(original: Any) -> Any:
    stopped: Any = importlib.import_module(_PROGRAM_STATE).ProgramStopped

    def reflect_execution_status(self: Any) -> None:
        original(self)
        state = self.execution.exec_worker.env.program_state()
        if isinstance(state, stopped):
            self.execution.error = state.error or None
            self.execution.cause = state.cause or None

    return reflect_execution_status


def check_moto_internals() -> None:
    from moto.stepfunctions.responses import StepFunctionResponse

    module: Any = importlib.import_module(_EXECUTION)
    action = inspect.unwrap(inspect.getattr_static(StepFunctionResponse, "stop_execution"))
    _PATCHER.expect(
        source_digest(action) == _STOP_ACTION_SHA256,
        "StepFunctionResponse.stop_execution (reads executionArn, not error or cause)",
    )
    stop = inspect.unwrap(inspect.getattr_static(module.Execution, "stop"))
    _PATCHER.expect(
        params(stop) == ["self", "stop_date", "error", "cause"],
        "Execution.stop(self, stop_date, error, cause)",
    )
    _PATCHER.expect(
        params(importlib.import_module(_PROGRAM_STATE).ProgramStopped.__init__)
        == ["self", "stop_date", "error", "cause"],
        "ProgramStopped(stop_date, error, cause)",
    )
    _PATCHER.expect(
        hasattr(module.BaseExecutionWorkerCommunication, "_reflect_execution_status"),
        "BaseExecutionWorkerCommunication._reflect_execution_status",
    )


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        from moto.stepfunctions.responses import StepFunctionResponse

        module: Any = importlib.import_module(_EXECUTION)
        _PATCHER.wrap(StepFunctionResponse, "stop_execution", _stop_action)
        _PATCHER.wrap(module.Execution, "stop", _stop)
        _PATCHER.wrap(module.BaseExecutionWorkerCommunication, "_reflect_execution_status", _reflect)
