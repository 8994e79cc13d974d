"""At most N executions of one state machine run at once in the local AWS; the rest wait their turn.

Why this exists: the local AWS runs every Step Functions execution on its own threads inside one
Python process (moto 5.2.5's ``ExecutionWorker.start``, plus a thread per program, per Task state
with a timeout and per task-token wait). Real Step Functions runs a million executions side by side;
one process with two cores cannot. Issuing 1,000 deployments one ``POST`` after another left
700-3,000 threads fighting for the GIL, until a Lambda step waited more than its 300 s
``TimeoutSeconds`` for the process and the deployment failed ``STEP_TIMED_OUT``: a failure of the
machine, not of the service. So an execution is admitted to run only while fewer than
``limit`` executions of its state machine run; the others stay ``RUNNING`` with an empty
history (as a real execution does for a moment after ``StartExecution``) and start, in order, as
slots free up. No thread is held by a waiting execution.

The limit is per state machine, so a rollout's executions (whose Map items wait for deployment
executions) never hold the slots that those deployments need. The deployment workflow never waits
for another deployment execution (a held stack lock fails the step, it does not wait), so waiting
executions cannot deadlock. Waiting is not free, though: a deployment whose execution waits keeps
its operation PENDING, and a rollout item whose operation has not started after 15 minutes fails
``OPERATION_NOT_STARTED`` (chalicelib/service/rollouts/item_ends.py). With 64 slots and stacks of seconds
that takes thousands of executions queued at once; real Step Functions has no such queue.

Two more things make a waiting execution behave as a real one:

* its evaluation environment is built in ``StartExecution`` itself, not later on the execution's
  thread. moto's ``SendTaskSuccess``/``SendTaskFailure``/``SendTaskHeartbeat`` walk every running
  execution's ``exec_worker.env``; one still ``None`` raised ``AttributeError`` for an unrelated
  token. (Unpatched moto has the same gap for the milliseconds before a new execution's thread runs.)
  ``StartExecution`` and those calls are serialised by localaws/concurrency.py's lock, so none of them
  can see an execution between "RUNNING" and "has an environment".
* ``StopExecution`` on a waiting execution takes it out of the queue and ends it ``ABORTED`` at once,
  with the history moto writes for a stopped execution, having run no state. One admitted but whose
  program has not begun (moto's ``Environment.set_stop`` ignores a program not yet running) is
  stopped once its program begins, a few milliseconds later.

Everything moto-internal this relies on is checked by :func:`check_moto_internals`, which
:func:`install` calls first, so a moto upgrade fails loudly.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from localaws import task_tokens
from localaws.patching import MotoInternalsChanged, source_digest

__all__ = ["DEFAULT_LIMIT", "Admission", "admission", "check_moto_internals", "install"]

DEFAULT_LIMIT = (
    64  # executions of one machine at once: enough to keep two cores busy, few enough not to thrash
)

_WORKER = "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker"

# sha256 of inspect.getsource(...) in moto 5.2.5: the methods whose behaviour this module relies on.
_SOURCE_SHA256 = {
    "start": "0b502dd3a4e5fd2b4a39da9a65b15f74350feef9820bfb36147b2abd7825d4cf",
    "_execution_logic": "baa3e2a48fd228d951b7b443e34acffcd060721f17c184df43db83ec0c0ffd25",
    "stop": "dc18be1944e1abeb084fccc7a90918d5c2f8856b4f7523722ac9d228766d2b4d",
}


class Admission:
    """Runs submitted callables on threads, at most ``limit`` at once per key, the rest in FIFO order."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self._limit = limit
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._waiting: dict[str, deque[tuple[object, Callable[[], None]]]] = {}
        self._peak: dict[str, int] = {}

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, limit: int) -> None:
        """Change the limit; waiting work starts at once if the new limit leaves room for it."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        ready: list[tuple[str, Callable[[], None]]] = []
        with self._lock:
            self._limit = limit
            for key in list(self._waiting):
                while (entry := self._next(key)) is not None:
                    ready.append((key, entry[1]))
        for key, work in ready:
            self._start(key, work)

    def submit(self, key: str, ident: object, work: Callable[[], None]) -> None:
        """Run ``work`` now if ``key`` has a free slot, else when one frees; ``ident`` names it for withdraw."""
        with self._lock:
            running = self._running.get(key, 0)
            if running >= self._limit:
                self._waiting.setdefault(key, deque()).append((ident, work))
                return
            self._running[key] = running + 1
            self._peak[key] = max(self._peak.get(key, 0), running + 1)
        self._start(key, work)

    def withdraw(self, key: str, ident: object) -> bool:
        """Take waiting work out of the queue without running it; False if it runs (or ran) already."""
        with self._lock:
            queue = self._waiting.get(key)
            found = next((entry for entry in queue or () if entry[0] is ident), None)
            if queue is None or found is None:
                return False
            queue.remove(found)
            if not queue:
                del self._waiting[key]
            return True

    def waiting(self, key: str) -> int:
        with self._lock:
            return len(self._waiting.get(key, ()))

    def running(self, key: str) -> int:
        with self._lock:
            return self._running.get(key, 0)

    def peak(self, key: str) -> int:
        """The most ``key`` ran at once since ``reset_peak`` (how a test or benchmark tells the limit held)."""
        with self._lock:
            return self._peak.get(key, 0)

    def reset_peak(self, key: str) -> None:
        with self._lock:
            self._peak[key] = self._running.get(key, 0)

    def _next(self, key: str) -> tuple[object, Callable[[], None]] | None:
        """Under the lock: take a slot for the next waiting work, if there is room and work."""
        queue = self._waiting.get(key)
        if not queue or self._running.get(key, 0) >= self._limit:
            return None
        entry = queue.popleft()
        if not queue:
            del self._waiting[key]
        self._running[key] = self._running.get(key, 0) + 1
        self._peak[key] = max(self._peak.get(key, 0), self._running[key])
        return entry

    def _start(self, key: str, work: Callable[[], None]) -> None:
        """Run admitted work on a thread; if no thread can be started, give its slot back and raise."""

        def run() -> None:
            try:
                work()
            finally:
                with self._lock:
                    self._running[key] -= 1
                    following = self._next(key)
                if following is not None:
                    try:
                        self._start(key, following[1])
                    except RuntimeError:  # no thread to be had: it waits, first in line, for the next end
                        with self._lock:
                            self._waiting.setdefault(key, deque()).appendleft(following)

        thread = threading.Thread(
            target=run, name=f"localaws-execution-{key.rpartition(':')[2]}", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:
            with self._lock:
                self._running[key] -= 1
            raise


admission = Admission()
_originals: dict[str, Any] = {}
_install_lock = threading.Lock()


def check_moto_internals() -> None:
    problems: list[str] = []
    try:
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    except ImportError as exc:
        raise MotoInternalsChanged(f"{_WORKER} is missing ({exc})") from exc
    for name, expected in _SOURCE_SHA256.items():
        method = _originals.get(name) or getattr(ExecutionWorker, name, None)
        if method is None:
            problems.append(f"{_WORKER}.{name} is missing")
        elif source_digest(method) != expected:
            problems.append(f"{_WORKER}.{name} changed upstream: re-compare it with localaws/admission.py")
    if not callable(getattr(ExecutionWorker, "_get_evaluation_environment", None)):
        problems.append(f"{_WORKER}._get_evaluation_environment is missing")
    if problems:
        raise MotoInternalsChanged(
            "localaws.admission relies on moto internals that changed (pin moto==5.2.5 or update it): "
            + "; ".join(problems)
        )


def _key(worker: Any) -> str:
    return str(worker._evaluation_details.state_machine_details.arn)


def _start(self: Any) -> None:
    """moto's ``start`` (the execution's logic on a daemon thread), once admitted, with its env built now."""
    self.env = _originals["_get_evaluation_environment"](self)
    self._localaws_ready_env = self.env
    admission.submit(_key(self), self, self._execution_logic)


def _get_evaluation_environment(self: Any) -> Any:
    """The environment ``start`` built, so that a stop or a token call before admission is kept."""
    ready = self.__dict__.pop("_localaws_ready_env", None)
    return ready if ready is not None else _originals["_get_evaluation_environment"](self)


def _stop(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
    """moto's ``stop``; an execution still waiting for admission ends ``ABORTED`` here, having run nothing."""
    if admission.withdraw(_key(self), self):
        self.__dict__.pop("_localaws_ready_env", None)
        _abort_unstarted(self, stop_date, error, cause)
        return
    _wait_for_program(self.env)
    _originals["stop"](self, stop_date, error, cause)
    task_tokens.interrupt_waiting(self.env)  # its tasks waiting for a token end with it (as on AWS)


def _wait_for_program(env: Any, seconds: float = 5.0) -> None:
    """Until an admitted execution's program has begun (``Program.eval`` names its first state), which
    takes milliseconds after admission: ``Environment.set_stop`` ignores a program not yet begun. Its
    thread needs no lock held here (parsing and starting take none of localaws/concurrency.py's)."""
    deadline = time.monotonic() + seconds
    while getattr(env, "_program_state", True) is None and time.monotonic() < deadline:
        time.sleep(0.001)


def _abort_unstarted(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
    """The history moto writes for an execution stopped before its first state, and its ABORTED status.

    moto's own ``stop`` cannot do it: ``Environment.set_stop`` only stops a running program, and the
    program is not running before ``Program.eval`` names its first state.
    """
    # moto's TypedDicts are total and these events carry one member each: built through Any, as moto does.
    api: Any = importlib.import_module("moto.stepfunctions.parser.api")
    event_detail: Any = importlib.import_module("moto.stepfunctions.parser.asl.eval.event.event_detail")
    encoding: Any = importlib.import_module("moto.stepfunctions.parser.asl.utils.encoding")

    env = self.env
    details = self._evaluation_details
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=api.HistoryEventType.ExecutionStarted,
        event_details=event_detail.EventDetails(
            executionStartedEventDetails=api.ExecutionStartedEventDetails(
                input=encoding.to_json_str(details.execution_details.inpt),
                inputDetails=api.HistoryEventExecutionDataDetails(truncated=False),
                roleArn=details.aws_execution_details.role_arn,
            )
        ),
        update_source_event_id=False,
    )
    env.next_state_name = details.state_machine_details.name  # the program's state: running, at no state
    env.set_stop(stop_date=stop_date, cause=cause, error=error)
    env.event_history_context.source_event_id = 0
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=api.HistoryEventType.ExecutionAborted,
        event_details=event_detail.EventDetails(
            executionAbortedEventDetails=api.ExecutionAbortedEventDetails(error=error, cause=cause)
        ),
    )
    self._execution_communication.terminated()


def install(limit: int = DEFAULT_LIMIT) -> None:
    with _install_lock:
        admission.set_limit(limit)
        if _originals:
            return
        check_moto_internals()
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        for name in ("start", "stop", "_get_evaluation_environment"):
            _originals[name] = getattr(ExecutionWorker, name)
        setattr(ExecutionWorker, "start", _start)  # noqa: B010 - deliberate monkeypatches
        setattr(ExecutionWorker, "stop", _stop)  # noqa: B010
        setattr(ExecutionWorker, "_get_evaluation_environment", _get_evaluation_environment)  # noqa: B010
