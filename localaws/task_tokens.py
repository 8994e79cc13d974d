"""A task token is refused once its task has closed, as AWS refuses it.

Why this exists: moto 5.2.5 keeps every ``.waitForTaskToken`` task's callback endpoint for the life of
the execution and never marks it closed (``CallbackEndpoint.report`` is never called). So a
``SendTaskSuccess``/``SendTaskFailure``/``SendTaskHeartbeat`` with the token of a task that has already
timed out, succeeded or failed succeeds silently while its execution runs. (A Retry's attempts share
the state's one token here; the token is closed when the state is left.) AWS answers ``TaskTimedOut`` ("the task token has
either expired or the task associated with the token has already been closed"). Code that falls back
when a release finds its task gone (the end of a rollout item's operation releases the StartItem task
that started it, and the item's later wait when that task is gone; chalicelib/service/completion.py)
would never take that fallback on the unpatched local AWS.

:func:`install` wraps ``StateTaskServiceCallback._eval_body``: the token the task state registers
(``CallbackPoolManager.add``, on the same thread) is marked closed when the state's evaluation ends,
however it ends; ``CallbackPoolManager.notify``/``heartbeat`` then raise ``TaskTimedOut`` for it. (moto's
own path for a closed endpoint, ``CallbackEndpoint.report``, is unused and its error classes cannot be
built without a message, so it is not taken.)
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from localaws.patching import Patcher, source_digest

__all__ = ["check_moto_internals", "install"]

_PATCHER = Patcher("localaws.task_tokens")
_CALLBACK = "moto.stepfunctions.parser.asl.eval.callback.callback"
_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback"
_ENV = "moto.stepfunctions.parser.asl.eval.environment"
# sha256 of inspect.getsource(...) in moto 5.2.5. _eval_body registers the token with
# ``env.callback_pool_manager.add`` on the evaluating thread; notify raises TaskTimedOut for an endpoint
# whose consumer reported a CallbackConsumerTimeout.
_SOURCE_SHA256 = {
    "StateTaskServiceCallback._eval_body": "1565ede7010df6af128057e199741623fe7d813996476dea3b2f9d647a1d9ab4",
}
# What a stop relies on (``interrupt_waiting``, ``_keeping_stop``): a stop sets ProgramStopped on the
# environment and its frames; a waiting endpoint returns from ``wait`` once ``interrupt_all`` sets its
# event, with no outcome; the pool keeps every endpoint in ``_pool``; ``set_error`` overwrites whatever
# state the program was in.
_STOP_SHA256 = {
    (_ENV, "Environment.set_error"): "6447409d405612c0e642e5e7d1942f8b48298485b7cb23630a18c78392f633d2",
    (_ENV, "Environment.set_stop"): "163c10d46b1cb9b5acc34268858aafc6772a2401d1f56edcfbd832d51b3f3aa1",
    (
        _CALLBACK,
        "CallbackEndpoint.interrupt_all",
    ): "d5b1c5de4a0b4fe9a1edd940a6ca4f453d8b56fb0e4619b559ead47c651e5029",
    (_CALLBACK, "CallbackEndpoint.wait"): "85d0fa6224f12b372121a350ed1cd3b9c8c01cdd7e71117d198969da859c8251",
    (
        _CALLBACK,
        "CallbackEndpoint.get_outcome",
    ): "28e3aa43303848c0c1ed4ae790f8e3734973e32425760a9029b0cdd05d2f3c5b",
    (
        _CALLBACK,
        "CallbackPoolManager.__init__",
    ): "072d647a2ea8040bd61bb0c312dca3f1437228f0024e693e1a19b9af9d939cf6",
}
_CLOSED = "_nexus_task_closed"
_STOPPED = "_nexus_execution_stopped"
_registered = threading.local()  # the token the task state evaluating on this thread registered


def _modules() -> tuple[Any, Any]:
    return importlib.import_module(_CALLBACK), importlib.import_module(_TASK)


def check_moto_internals() -> None:
    callback, task = _modules()
    body = getattr(task.StateTaskServiceCallback, "_eval_body", None)
    original = getattr(body, "__wrapped__", body)
    _PATCHER.expect(original is not None, f"{_TASK}.StateTaskServiceCallback._eval_body is missing")
    _PATCHER.expect(
        source_digest(original) == _SOURCE_SHA256["StateTaskServiceCallback._eval_body"],
        "StateTaskServiceCallback._eval_body changed upstream",
    )
    pool = callback.CallbackPoolManager
    for name in ("add", "get", "notify", "heartbeat"):
        _PATCHER.expect(callable(getattr(pool, name, None)), f"CallbackPoolManager.{name} is missing")
    for (module_name, dotted), digest in _STOP_SHA256.items():
        owner_name, name = dotted.split(".")
        method = getattr(getattr(importlib.import_module(module_name), owner_name), name, None)
        original = getattr(method, "__wrapped__", method)
        _PATCHER.expect(
            original is not None and source_digest(original) == digest, f"{dotted} changed upstream"
        )


def _closed_error() -> Exception:
    from moto.core.exceptions import AWSError

    return AWSError("Task Timed Out: 'Provided task does not exist anymore'", "TaskTimedOut", 400)


def _add(original: Any) -> Any:
    def add(self: Any, callback_id: Any) -> Any:
        endpoint = original(self, callback_id)
        _registered.token = callback_id
        return endpoint

    return add


def _refusing_closed(original: Any) -> Any:
    """``notify``/``heartbeat``: a closed task's token raises TaskTimedOut, as on AWS."""

    def send(self: Any, callback_id: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self.get(callback_id), _CLOSED, False):
            raise _closed_error()
        return original(self, callback_id, *args, **kwargs)

    return send


def _eval_body(original: Any) -> Any:
    def eval_body(self: Any, env: Any) -> None:
        outer = getattr(_registered, "token", None)
        _registered.token = None
        try:
            original(self, env)
        finally:
            token = _registered.token
            _registered.token = outer
            endpoint = env.callback_pool_manager.get(token) if token is not None else None
            if endpoint is not None:
                setattr(endpoint, _CLOSED, True)

    return eval_body


def stopped(env: Any) -> bool:
    """``env`` belongs to an execution that was stopped: its frames, and its Distributed Map's child
    executions, share the execution's callback pool (moto does not stop the child executions' own
    environments)."""
    return bool(getattr(env.callback_pool_manager, _STOPPED, False))


def interrupt_waiting(env: Any) -> int:
    """Release every task of a stopped execution that waits for its token (its Distributed Map's child
    executions share the pool), as AWS ends them with the execution; how many were waiting.

    moto stops an execution's states but not a ``.waitForTaskToken`` wait: the task's thread blocks on
    its endpoint until the task's timeout, so a stopped execution ran on and ended FAILED (its Map's
    items timed out) instead of ABORTED at once. ``interrupt_all`` is moto's own release of a waiting
    endpoint (what its task calls when it ends); the interrupted task finds no outcome, and the stopped
    program ends there."""
    setattr(env.callback_pool_manager, _STOPPED, True)
    pool = getattr(env.callback_pool_manager, "_pool", {})
    waiting = [e for e in list(pool.values()) if e.get_outcome() is None and not getattr(e, _CLOSED, False)]
    for endpoint in waiting:
        setattr(endpoint, _CLOSED, True)  # a token of an ended execution is refused, as on AWS
        endpoint.interrupt_all()
    return len(waiting)


def _keeping_stop(original: Any) -> Any:
    """``Environment.set_error``: not over a stop. A task whose wait a stop released fails (moto sees a
    timed-out wait), and that failure reached the program's ``set_error``, which overwrote the stop: the
    stopped execution ended FAILED (States.Timeout) instead of ABORTED."""

    def set_error(self: Any, error: Any) -> None:
        from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

        with self._state_mutex:  # moto's own lock of the program state (an RLock: set_error takes it too)
            if isinstance(self._program_state, ProgramStopped):
                return
            original(self, error)

    return set_error


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        callback, task = _modules()
        _PATCHER.wrap(callback.CallbackPoolManager, "add", _add)
        _PATCHER.wrap(callback.CallbackPoolManager, "notify", _refusing_closed)
        _PATCHER.wrap(callback.CallbackPoolManager, "heartbeat", _refusing_closed)
        _PATCHER.wrap(task.StateTaskServiceCallback, "_eval_body", _eval_body)
        _PATCHER.wrap(importlib.import_module(_ENV).Environment, "set_error", _keeping_stop)
