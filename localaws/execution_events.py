"""Step Functions' "Execution Status Change" events in the local AWS.

Why this exists: on AWS, Step Functions puts an event on the account's default EventBridge bus when a
Standard execution changes status (best effort). The deployer's ``DeploymentExecutionEnded`` and
``RolloutExecutionEnded`` rules take the FAILED, TIMED_OUT and ABORTED ones, so that an execution that
was stopped, timed out or failed where no Catch applies still ends its deployment or rollout in a
recorded state. moto 5.2.5 emits none.

:func:`install` wraps moto's ``BaseExecutionWorkerCommunication.terminated``, which every execution
runs once when it ends (the interpreter's last step, a StopExecution, and localaws/admission.py's stop of
an execution still waiting to be admitted all end there): after moto records the status, the event is
built from the execution and put on its account's default bus on EventBridge's delivery thread
(localaws/eventbridge.py), never inside the caller's moto request. The detail holds what AWS's does:
executionArn, stateMachineArn, name, status, startDate, stopDate (epoch milliseconds), input and output
(JSON text), inputDetails/outputDetails, error and cause. RUNNING is not emitted: nothing here uses it.
Distributed Map child executions are not moto ``Execution`` objects and emit nothing, nor do Express
workflows' executions (as on AWS). The ``redriveCount``/``redriveStatus`` fields of current AWS events are
left out (no redrive here).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from localaws import concurrency, eventbridge
from localaws.patching import Patcher, source_digest

logger = logging.getLogger(__name__)

DETAIL_TYPE = "Step Functions Execution Status Change"
_MODULE = "moto.stepfunctions.parser.backend.execution"
# sha256 of inspect.getsource(...) in moto 5.2.5: ``terminated`` only reflects the program's state into
# the execution (``_reflect_execution_status``), which sets exec_status, stop_date, output, error, cause.
_SOURCE_SHA256 = {
    "terminated": "360372a6a57bf99b6067dcd0a364f56330f090650dc94d32f80b41b875456caf",
    "_reflect_execution_status": "038a396107afe59b6db55d26f755d9b8358762e53f7fa67c1a78fd09fdd5218a",
}

# sha256 of moto 5.2.5's ``StateMachine.__init__``: it keeps the type asked for in ``type``.
_MACHINE_INIT_SHA256 = "890acdf8696d2273b2346a3ce3d724bb95066037b6ac33c4b60cee299be0289b"

_patcher = Patcher("localaws.execution_events")


def check_moto_internals() -> None:
    import importlib

    module: Any = importlib.import_module(_MODULE)
    owner = module.BaseExecutionWorkerCommunication
    from moto.stepfunctions.models import StateMachine

    _patcher.expect(
        source_digest(StateMachine.__init__) == _MACHINE_INIT_SHA256,
        "moto.stepfunctions.models.StateMachine.__init__ (where the workflow type is kept)",
    )
    for name, digest in _SOURCE_SHA256.items():
        original = getattr(getattr(owner, name), "__wrapped__", getattr(owner, name))
        _patcher.expect(
            source_digest(original) == digest, f"{_MODULE}.BaseExecutionWorkerCommunication.{name}"
        )


def _millis(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def _json_text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def detail(execution: Any) -> dict[str, Any]:
    """The event's detail for a moto ``Execution`` that has just ended."""
    status = execution.exec_status.value if execution.exec_status is not None else "RUNNING"
    # An ABORTED execution's are StopExecution's (localaws/stop_reasons.py keeps them; moto dropped them).
    error, cause = execution.error or None, execution.cause or None
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": _json_text(execution.input_data),
        "output": _json_text(execution.output),
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if execution.output is not None else None,
        "error": error,
        "cause": cause,
    }


def workflow_type(execution: Any) -> str:
    """STANDARD or EXPRESS. moto's ``Execution.sm_type`` always says STANDARD (its ``StateMachine`` sets
    ``sm_type = "STANDARD"`` whatever it was created as); the type asked for is the machine's ``type``."""
    return str(execution.state_machine.type)


def execution_ended(execution: Any) -> None:
    """Put the event of ``execution``'s end on its account's default bus, asynchronously. Only a
    Standard workflow's: Express workflows emit no status-change events."""
    if workflow_type(execution) != "STANDARD":
        return
    entry = {
        "Source": "aws.states",
        "DetailType": DETAIL_TYPE,
        "Resources": [execution.exec_arn],
        "Detail": json.dumps(detail(execution)),
    }
    account_id, region = execution.account_id, execution.region_name

    def put() -> None:
        from moto.events.models import events_backends

        with concurrency.lock():
            events_backends[account_id][region].put_events([entry])

    eventbridge.deliver(put)


def install() -> None:
    with _patcher.lock:
        check_moto_internals()
        import importlib

        owner: Any = importlib.import_module(_MODULE).BaseExecutionWorkerCommunication

        def factory(original: Any) -> Any:
            def terminated(self: Any) -> None:
                original(self)
                try:
                    execution_ended(self.execution)
                except Exception:  # an event is best effort on AWS too: the execution has ended anyway
                    logger.exception("local Step Functions status event not sent")

            return terminated

        _patcher.wrap(owner, "terminated", factory)
