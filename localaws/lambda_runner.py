"""Run the project's own Lambda handlers in-process when moto invokes a function.

moto runs every Lambda invocation (Invoke API, Step Functions tasks, event triggers) through one
private method, ``LambdaFunction._invoke_lambda(self, event)``, which wants Docker. This replaces
it: the function's name picks a handler from a registry, the handler runs in this process, and the
result or the error comes back in the Lambda runtime's shape (``errorType``/``errorMessage``), so
the definition's ``Retry`` and ``Catch`` match exactly as on AWS. ``check_moto_internals`` fails
loudly when moto changes that method.

A handler that runs past its timeout is stopped at its next AWS call: Lambda freezes a timed-out
sandbox, so its code makes no further call (Python cannot stop the thread, which then ends with
``SandboxFrozen``). Without that, a timed-out step would go on writing records and calling stacks after
its Task state had failed, retried or been caught: side effects AWS never lets happen.

``recording()`` lists every invocation and its handler's wall time (what Lambda bills), and
``current_function()`` names the function whose handler runs on this thread: the cost benchmark
(bench/cost/) prices invocations and attributes AWS calls with them.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from localaws import faults
from localaws.patching import MotoInternalsChanged, Patcher

Handler = Callable[[dict[str, Any], Any], Any]

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_handlers: dict[str, Handler] = {}
_short_names: dict[str, str] = {}  # deployed name -> the template's (logical id)
_original: Any = None
_recorders: list[list[Invocation]] = []
_running = threading.local()
# The request ID an asynchronous invocation keeps across its attempts (localaws/async_invoke.py).
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("lambda_request_id", default=None)
DEFAULT_TIMEOUT = 3  # seconds: Lambda's default when a function sets none
_PATCHER = Patcher(__name__)


class SandboxFrozen(BaseException):
    """Raised at a timed-out handler's next AWS call (a BaseException, so the handler's own ``except
    Exception`` cannot take it and go on): Lambda froze its sandbox at the timeout."""


class _Sandbox:
    """One invocation's sandbox, known to the thread its handler runs on (a thread-local, not a context
    variable: a thread started with a copy of the handler's context, such as an execution's, or any
    thread where threads inherit their starter's context, is no part of the invocation)."""

    def __init__(self, function: str, timeout: float) -> None:
        self.function, self.timeout = function, timeout
        self.frozen = False


def refuse_if_frozen() -> None:
    """Raise ``SandboxFrozen`` when this thread runs a handler whose invocation has timed out."""
    sandbox: _Sandbox | None = getattr(_running, "sandbox", None)
    if sandbox is not None and sandbox.frozen:
        raise SandboxFrozen(
            f"{sandbox.function} ran past its {sandbox.timeout:.0f} s timeout: Lambda froze its sandbox, "
            "so this AWS call is never made"
        )


def _refusing_frozen(original: Any) -> Any:
    def make_request(self: Any, operation_model: Any, request_dict: Any) -> Any:
        refuse_if_frozen()  # on the caller's side: the request never leaves a frozen sandbox
        return original(self, operation_model, request_dict)

    return make_request


@dataclass(frozen=True)
class Invocation:
    function: str  # the short name (AcquireLock), as the cloud template names the function
    seconds: float  # the handler's wall time
    error: str | None = None  # the errorType Lambda answered with (Sandbox.Timedout, TransientAwsError, ...)

    @property
    def errored(self) -> bool:
        return self.error is not None


@contextmanager
def recording() -> Iterator[list[Invocation]]:
    """Every invocation (any thread) while the block runs, in the order they ended."""
    invocations: list[Invocation] = []
    with _lock:
        _recorders.append(invocations)
    try:
        yield invocations
    finally:
        with _lock:
            _recorders.remove(invocations)


@contextmanager
def request_id(value: str) -> Iterator[None]:
    """Invocations made in this block (on this thread) get ``value`` as their ``aws_request_id``, as
    every attempt of one asynchronous invocation does on Lambda."""
    token = _request_id.set(value)
    try:
        yield
    finally:
        _request_id.reset(token)


def current_function() -> str | None:
    """The function whose handler runs on this thread, if one does."""
    name: str | None = getattr(_running, "function", None)
    return name


@dataclass(frozen=True)
class FakeContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    aws_request_id: str = "local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    deadline: float | None = None  # time.monotonic() when Lambda stops waiting for the handler

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline is None:
            return 300_000
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def check_moto_internals() -> None:
    from moto.awslambda.models import LambdaFunction

    method = _original if _original is not None else getattr(LambdaFunction, "_invoke_lambda", None)
    if method is None:
        raise MotoInternalsChanged("moto.awslambda.models.LambdaFunction._invoke_lambda no longer exists")
    params = list(inspect.signature(method).parameters)
    if params[:2] != ["self", "event"]:
        raise MotoInternalsChanged(f"LambdaFunction._invoke_lambda signature changed: {params}")
    from botocore.endpoint import Endpoint

    sends = list(inspect.signature(inspect.unwrap(Endpoint.make_request)).parameters)
    if sends != ["self", "operation_model", "request_dict"]:
        raise MotoInternalsChanged(f"botocore's Endpoint.make_request signature changed: {sends}")


def register(handlers: Mapping[str, Handler], names: Mapping[str, str] | None = None) -> None:
    """Route invocations of these function names (plain or ``<app>-<stage>-<name>``) to handlers;
    ``names``: each deployed name's short name (its logical id in the template), for a deployed name
    that does not end in it (CloudFormation's ends in a random suffix)."""
    with _lock:
        _handlers.update(handlers)
        _short_names.update(names or {})


def _short(function_name: str) -> str:
    """The function's name as the cloud template has it (what crash_after and the cost name)."""
    return _short_names.get(function_name) or function_name.rsplit("-", 1)[-1]


def _resolve(function_name: str) -> Handler | None:
    if function_name in _handlers:
        return _handlers[function_name]
    return _handlers.get(_short(function_name))


def _invoke(function: Any, event: Any = None) -> tuple[str, bool, str]:
    handler = _resolve(function.function_name)
    if handler is None:
        missing = {
            "errorType": "ResourceNotFoundException",
            "errorMessage": f"no local handler for {function.function_name}",
        }
        return json.dumps(missing), True, ""
    payload = json.loads(event) if isinstance(event, str | bytes) and event else (event or {})
    short = _short(function.function_name)
    timeout = float(getattr(function, "timeout", None) or DEFAULT_TIMEOUT)
    invocation_id = _request_id.get() or str(uuid.uuid4())
    context = FakeContext(
        function.function_name,
        aws_request_id=invocation_id,
        invoked_function_arn=function.function_arn,
        deadline=time.monotonic() + timeout,
    )
    if faults.time_out_now(short, payload):  # NEXUS_LOCAL_FAULTS time_out: nothing done, the error at once
        _record(short, time.perf_counter(), error="Sandbox.Timedout")
        return json.dumps(_timed_out(invocation_id, timeout, "(NEXUS_LOCAL_FAULTS time_out)")), True, ""
    outcome: dict[str, Any] = {}
    done = threading.Event()
    sandbox = _Sandbox(short, timeout)

    def run() -> None:
        _running.function, _running.sandbox = short, sandbox
        _request_id.set(None)  # an invocation the handler makes is another request (this context is a copy)
        try:
            outcome["result"] = handler(payload, context)
        except Exception as error:  # noqa: BLE001 - reported in the Lambda runtime's error shape
            outcome["error"] = error
        except SandboxFrozen as frozen:  # its caller had its answer (Sandbox.Timedout) at the timeout
            logger.info("local lambda %s stopped after its timeout: %s", short, frozen)
        finally:
            _running.function = _running.sandbox = None
            done.set()

    started = time.perf_counter()
    # The handler runs on its own thread (with the caller's context variables), so that the caller
    # stops waiting at the function's timeout as Lambda does. Python cannot stop that thread: a handler
    # past its timeout runs on, detached, until its next AWS call, which its frozen sandbox refuses.
    worker = threading.Thread(
        target=contextvars.copy_context().run, args=(run,), name=f"lambda-{short}", daemon=True
    )
    worker.start()
    if not done.wait(timeout):
        sandbox.frozen = True
        _record(short, started, error="Sandbox.Timedout")
        logger.info("local lambda %s timed out after %.0f s", function.function_name, timeout)
        return json.dumps(_timed_out(invocation_id, timeout)), True, ""
    if "error" in outcome:
        error = outcome["error"]
        _record(short, started, error=type(error).__name__)
        logger.info("local lambda %s raised %s", function.function_name, type(error).__name__)
        body: dict[str, Any] = {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error)[-3:],
        }
        return json.dumps(body), True, ""
    if faults.crash_now(short, payload):  # NEXUS_LOCAL_FAULTS crash_after: the work is done, the answer lost
        _record(short, started, error="Lambda.ServiceException")
        crashed = {
            "errorType": "Lambda.ServiceException",
            "errorMessage": f"{short} crashed after its work (NEXUS_LOCAL_FAULTS crash_after)",
        }
        return json.dumps(crashed), True, ""
    _record(short, started)
    return json.dumps(outcome["result"]), False, ""


def _timed_out(invocation_id: str, timeout: float, why: str = "") -> dict[str, str]:
    """What Lambda answers for an invocation that ran past the function's timeout."""
    message = f"RequestId: {invocation_id} Error: Task timed out after {timeout:.2f} seconds"
    return {"errorType": "Sandbox.Timedout", "errorMessage": f"{message} {why}".rstrip()}


def _record(function: str, started: float, *, error: str | None = None) -> None:
    invocation = Invocation(function, time.perf_counter() - started, error)
    if _recorders:
        with _lock:
            for invocations in _recorders:
                invocations.append(invocation)


def install() -> None:
    global _original
    with _lock:
        if _original is not None:
            return
        check_moto_internals()
        from moto.awslambda.models import LambdaFunction

        _original = LambdaFunction._invoke_lambda
        setattr(LambdaFunction, "_invoke_lambda", _invoke)  # noqa: B010 - a deliberate monkeypatch
        from botocore.endpoint import Endpoint

        # Every boto3 call a handler makes sends its request through this, on the handler's thread,
        # before botocore's retries, the local faults and moto see it: in-process (moto's stub) and in
        # server mode (HTTP to the local server, whose request threads know nothing of the sandbox).
        _PATCHER.wrap(Endpoint, "make_request", _refusing_frozen)
        _installed = True
