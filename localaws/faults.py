"""Faults on demand in the local AWS (``NEXUS_LOCAL_FAULTS``): throttling, lost stack events, step crashes
and timeouts.

Why this exists: AWS throttles, loses events and kills a Lambda halfway; the service is built to survive
that (botocore's standard retries, the workflow's ``Retry``, the timeout reconcile, idempotent steps),
and this module makes the local AWS do it on purpose so the tests and ``make chaos`` can prove it.

``NEXUS_LOCAL_FAULTS="throttle=0.3,drop_stack_events=0.2,crash_after=StartStackOperation,seed=7"``:

* ``throttle=F``: a fraction F of the calls to STS, CloudFormation, DynamoDB, Step Functions, EventBridge,
  Lambda and SNS answer with that service's throttling error, as botocore's models and AWS name it:
  ``Throttling`` 400 (STS and CloudFormation, query protocol), ``ThrottlingException`` or
  ``ProvisionedThroughputExceededException`` 400 (DynamoDB), ``ThrottlingException`` 400 (Step
  Functions, EventBridge), ``TooManyRequestsException`` 429 (Lambda), ``Throttling`` 400 (SNS: AWS's
  common error, what a throttled Publish answers; SNS's own ``Throttled`` 429 is for its SMS calls only);
  a DynamoDB transaction
  (TransactWriteItems, TransactGetItems) is refused as DynamoDB refuses a throttled one,
  ``TransactionCanceledException`` with the reason ``ThrottlingError`` or ``ProvisionedThroughputExceeded``
  on one item and ``None`` on the others, which botocore does not retry. The refusal is made on the path
  every moto request takes (``ActionAuthenticatorMixin._authenticate_and_authorize_action``, the hook
  :mod:`localaws.authorization` uses), before the action runs, so the caller's botocore really retries
  and a throttled Lambda invocation from Step Functions really fails its Task with
  ``Lambda.TooManyRequestsException``. Only the service's calls are throttled: requests signed by a role
  session (the service's own role, the target roles it assumes) and Step Functions' Lambda invocations.
  An account administrator's calls (``nexus local admin``, a test's setup) are spared.
* ``drop_stack_events=F``: a fraction F of CloudFormation's "Stack Status Change" events are never put on
  the bus (:mod:`localaws.eventbridge` asks :func:`drop_stack_event`).
* ``crash_after=Name[+Name...]``: the named Lambda functions (the workflow's steps are named after their
  Task states) raise after their handler has done its work, on the first invocation of each input: the
  result is lost, Step Functions sees ``Lambda.ServiceException`` and its ``Retry`` runs the step again
  (:mod:`localaws.lambda_runner` asks :func:`crash_now`). The input's task token is not part of "each
  input": a retried ``waitForTaskToken`` task gets a new token.
* ``time_out=Name[+Name...]``: the named Lambda functions time out, on the first invocation of each input,
  before their handler does anything: the local AWS answers at once with the error Lambda gives a
  function that ran past its timeout, ``Sandbox.Timedout``, which no ``Retry`` of the definitions takes,
  so the state's ``Catch`` runs (the definitions' catch-alls: RecordFailure, RecordItemFailure); a state
  without one fails its execution (a Map iteration: the Map, whose Catch runs RecordRolloutFailure). The
  way to reach the catch-alls without minutes of retries. :func:`time_out_now`, asked as :func:`crash_now` is.
* ``seed=N`` (default 0): the same seed gives the same sequence of decisions. Under concurrency, which
  call each decision falls on follows the threads' order.

Faults are off by default (:data:`NO_FAULTS`). :func:`counts` says how many of each were injected.
"""

from __future__ import annotations

import collections
import json
import random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from localaws.patching import Patcher, params, source

__all__ = [
    "NO_FAULTS",
    "THROTTLED_SERVICES",
    "FaultSettings",
    "counts",
    "crash_now",
    "drop_stack_event",
    "install",
    "reset_counts",
    "time_out_now",
]

ENV_NAME = "NEXUS_LOCAL_FAULTS"
# SigV4 signing name -> (HTTP status, error codes botocore's models and AWS use for throttling).
THROTTLED_SERVICES: dict[str, tuple[int, tuple[str, ...]]] = {
    "sts": (400, ("Throttling",)),
    "cloudformation": (400, ("Throttling",)),
    "dynamodb": (400, ("ThrottlingException", "ProvisionedThroughputExceededException")),
    "states": (400, ("ThrottlingException",)),
    "events": (400, ("ThrottlingException",)),
    "lambda": (429, ("TooManyRequestsException",)),
    "sns": (400, ("Throttling",)),
}
_MESSAGES = {
    "Throttling": "Rate exceeded",
    "ThrottlingException": "Rate exceeded",
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing "
        "your provisioning level with the UpdateTable API."
    ),
    "TooManyRequestsException": "Rate Exceeded.",
}
# Step Functions' interpreter signs its Lambda invocations with this key (moto's boto_client_for).
_STEP_FUNCTIONS_KEY = "ak"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request")
_PATCHER = Patcher("localaws.faults")


@dataclass(frozen=True)
class FaultSettings:
    throttle: float = 0.0
    drop_stack_events: float = 0.0
    crash_after: frozenset[str] = frozenset()
    seed: int = 0
    time_out: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return bool(self.throttle or self.drop_stack_events or self.crash_after or self.time_out)

    @classmethod
    def parse(cls, text: str) -> FaultSettings:
        """``throttle=0.3,drop_stack_events=0.2,crash_after=A+B,time_out=C,seed=7``; ValueError names what
        is wrong."""
        values: dict[str, Any] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, raw = (s.strip() for s in part.partition("="))
            if not sep or not raw:
                raise ValueError(f"{ENV_NAME}: {part!r} is not name=value")
            if name in values:
                raise ValueError(f"{ENV_NAME}: {name} is given twice")
            if name in ("throttle", "drop_stack_events"):
                values[name] = _fraction(name, raw)
            elif name == "seed":
                if not raw.isascii() or not raw.isdigit():
                    raise ValueError(f"{ENV_NAME}: seed must be a whole number, got {raw!r}")
                values[name] = int(raw)
            elif name in ("crash_after", "time_out"):
                names = [n.strip() for n in raw.split("+")]
                bad = [n for n in names if not _NAME_RE.fullmatch(n)]
                if bad:
                    raise ValueError(f"{ENV_NAME}: {name} names Lambda functions, got {bad[0]!r}")
                values[name] = frozenset(names)
            else:
                raise ValueError(
                    f"{ENV_NAME}: unknown fault {name!r} "
                    "(throttle, drop_stack_events, crash_after, time_out, seed)"
                )
        return cls(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FaultSettings:
        return cls.parse(environ.get(ENV_NAME, ""))

    def check_functions(self, functions: object) -> None:
        """ValueError unless every ``crash_after`` and ``time_out`` name is one of ``functions``."""
        known = set(functions)  # type: ignore[call-overload]
        for fault, names in (("crash_after", self.crash_after), ("time_out", self.time_out)):
            unknown = sorted(names - known)
            if unknown:
                raise ValueError(
                    f"{ENV_NAME}: {fault}={unknown[0]} is not a Lambda function of the service "
                    f"({', '.join(sorted(known))})"
                )

    def describe(self) -> str:
        if not self.active:
            return "none"
        parts = [f"throttle={self.throttle:g}", f"drop_stack_events={self.drop_stack_events:g}"]
        if self.crash_after:
            parts.append("crash_after=" + "+".join(sorted(self.crash_after)))
        if self.time_out:
            parts.append("time_out=" + "+".join(sorted(self.time_out)))
        return ", ".join([*parts, f"seed={self.seed}"])


def _fraction(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{ENV_NAME}: {name} must be a fraction from 0 to 1, got {raw!r}")
    return value


NO_FAULTS = FaultSettings()


class _State:
    """The settings in force, the seeded generator and what was injected (one per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.settings = NO_FAULTS
        self.random = random.Random(0)
        self.struck: set[tuple[str, str, str]] = set()  # (fault, function, input): once each
        self.counts: collections.Counter[str] = collections.Counter()

    def configure(self, settings: FaultSettings) -> None:
        with self.lock:
            self.settings = settings
            self.random = random.Random(settings.seed)
            self.struck.clear()
            self.counts.clear()

    def draw(self, fraction: float) -> float | None:
        """A draw below ``fraction`` (the fault happens), else None; no draw at all when it is 0."""
        if fraction <= 0.0:
            return None
        with self.lock:
            value = self.random.random()
        return value if value < fraction else None


_STATE = _State()


def configure(settings: FaultSettings) -> None:
    """Put ``settings`` in force (and restart the seeded sequence and the counts)."""
    _STATE.configure(settings)


def current() -> FaultSettings:
    return _STATE.settings


def counts() -> dict[str, int]:
    """What was injected since :func:`configure`: ``throttle:<service>``, ``dropped_stack_events``
    (and ``dropped_final_stack_event:<stack name>``), ``crash:<function>``, ``time_out:<function>``."""
    with _STATE.lock:
        return dict(_STATE.counts)


def reset_counts() -> None:
    with _STATE.lock:
        _STATE.counts.clear()


def _count(what: str) -> None:
    with _STATE.lock:
        _STATE.counts[what] += 1


# ----------------------------------------------------------------------------------------- the faults
def drop_stack_event(status: str = "", stack_name: str = "") -> bool:
    """Whether the stack event about to be put on the bus (``stack_name`` reaching ``status``) is lost.
    A lost event of a status that ends an operation (not ``*_IN_PROGRESS``) is also counted as
    ``dropped_final_stack_event:<stack name>``: an operation waiting for it ends through its reconcile."""
    if _STATE.draw(_STATE.settings.drop_stack_events) is None:
        return False
    _count("dropped_stack_events")
    if status and not status.endswith("_IN_PROGRESS"):
        _count(f"dropped_final_stack_event:{stack_name}")
    return True


def crash_now(function: str, payload: Any) -> bool:
    """Whether ``function``, which has just handled ``payload``, crashes before answering (once per input)."""
    return function in _STATE.settings.crash_after and _strike("crash", function, payload)


def time_out_now(function: str, payload: Any) -> bool:
    """Whether ``function``, about to handle ``payload``, times out instead (once per input)."""
    return function in _STATE.settings.time_out and _strike("time_out", function, payload)


def _strike(fault: str, function: str, payload: Any) -> bool:
    """True the first time ``fault`` falls on ``function`` with this input (counted), False after."""
    key = (fault, function, _input_key(payload))
    with _STATE.lock:
        if key in _STATE.struck:
            return False
        _STATE.struck.add(key)
        _STATE.counts[f"{fault}:{function}"] += 1
    return True


def _input_key(payload: Any) -> str:
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if "token" not in str(k).lower()}
    return json.dumps(payload, sort_keys=True, default=str)


def _throttled_caller(response: Any, access_key: str) -> bool:
    """The service's calls (a role session's key) and Step Functions' Lambda invocations."""
    if access_key == _STEP_FUNCTIONS_KEY:
        return True
    from moto.sts.models import sts_backends

    backend = sts_backends[str(response.current_account)][str(response.partition)]
    return backend.get_assumed_role_from_access_key(access_key) is not None


def throttle_request(response: Any) -> None:
    """Raise the service's throttling error for a fraction of the service's requests."""
    fraction = _STATE.settings.throttle
    if fraction <= 0.0:
        return
    match = _CREDENTIAL_RE.search(str(response.headers.get("Authorization") or ""))
    if match is None or match.group(2) not in THROTTLED_SERVICES:
        return
    access_key, service = match.group(1), match.group(2)
    if not _throttled_caller(response, access_key):
        return
    draw = _STATE.draw(fraction)
    if draw is None:
        return
    status, codes = THROTTLED_SERVICES[service]
    code = codes[int(draw / fraction * len(codes)) % len(codes)]
    _count(f"throttle:{service}")
    items = _transaction_items(response) if service == "dynamodb" else 0
    if items:
        raise _cancelled_transaction(items, code, draw / fraction)
    from localaws.sts import AwsHttpError, _protocol_of

    raise AwsHttpError(status, code, _MESSAGES[code], _protocol_of(response))


# DynamoDB refuses a throttled transaction as TransactionCanceledException, with one cancellation reason
# per item: the throttled item's ThrottlingError (on-demand) or ProvisionedThroughputExceeded
# (provisioned), "None" for the others. botocore does not retry it, unlike the throttling codes.
_CANCELLATION_REASONS = {
    "ThrottlingException": "ThrottlingError",
    "ProvisionedThroughputExceededException": "ProvisionedThroughputExceeded",
}


def _transaction_items(response: Any) -> int:
    """How many items a TransactWriteItems or TransactGetItems request holds; 0 for any other request."""
    target = str(response.headers.get("X-Amz-Target") or "")
    if not target.endswith((".TransactWriteItems", ".TransactGetItems")):
        return 0
    body = response.body  # moto's DynamoDB handler has parsed it already; else the JSON text
    try:
        parsed = body if isinstance(body, dict) else json.loads(body or "{}")
    except (TypeError, ValueError):
        return 0
    items = parsed.get("TransactItems") if isinstance(parsed, dict) else None
    return len(items) if isinstance(items, list) else 0


def _cancelled_transaction(count: int, code: str, position: float) -> Exception:
    from moto.dynamodb.exceptions import TransactionCanceledException

    throttled = min(count - 1, int(position * count))  # the item the throttle fell on
    reason = _CANCELLATION_REASONS[code]
    return TransactionCanceledException(
        [
            (reason, "Throughput exceeded", None) if n == throttled else (None, None, None)
            for n in range(count)
        ]
    )


# ------------------------------------------------------------------------------------------ installation
_STATE_TASK_LAMBDA = "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda"


def _lambda_task_error(original: Any) -> Any:
    """Name a Lambda service error of a ``Resource: <function ARN>`` Task as Step Functions does.

    moto 5.2.5 names every ClientError of such a task ``Exception``; Step Functions names it after
    Lambda's error (``Lambda.TooManyRequestsException``, ``Lambda.ServiceException``), which is what the
    definitions' ``Retry`` matches, and what moto already does for ``arn:aws:states:::lambda:invoke``.
    """

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        from botocore.exceptions import ClientError

        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
            CustomErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

        error = f"Lambda.{ex.response['Error'].get('Code', 'ServiceException')}"
        cause = str(ex.response["Error"].get("Message", ""))
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item] # moto fills one detail at a time
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)
            ),
        )

    return from_error


def _hook(original: Any) -> Any:
    def authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        throttle_request(self)  # AWS throttles before it authorizes or runs anything
        original(self, iam_request_cls, resource)

    return authenticate_and_authorize_action


def check_moto_internals() -> None:
    import inspect

    from localaws import authorization

    authorization.check_moto_internals()  # the same request hook, and STS's access-key lookup
    import importlib

    task = importlib.import_module(_STATE_TASK_LAMBDA).StateTaskLambda
    _PATCHER.expect(
        params(inspect.unwrap(inspect.getattr_static(task, "_from_error")))[:3] == ["self", "env", "ex"],
        "StateTaskLambda._from_error(self, env, ex)",
    )
    _PATCHER.expect(
        'error = "Exception"' in source(inspect.unwrap(inspect.getattr_static(task, "_from_error"))),
        "StateTaskLambda._from_error names a ClientError Exception",
    )
    from moto.dynamodb.exceptions import TransactionCanceledException

    _PATCHER.expect(
        params(TransactionCanceledException.__init__) == ["self", "errors"]
        and "for code, message, item in errors" in source(TransactionCanceledException.__init__),
        "TransactionCanceledException(errors) takes (code, message, item) per item",
    )


def install(settings: FaultSettings = NO_FAULTS) -> None:
    """Hook the request path (process-wide, once) and put ``settings`` in force."""
    with _PATCHER.lock:
        check_moto_internals()
        from moto.core.authorization import ActionAuthenticatorMixin

        _PATCHER.wrap(ActionAuthenticatorMixin, "_authenticate_and_authorize_action", _hook)
        import importlib

        task = importlib.import_module(_STATE_TASK_LAMBDA).StateTaskLambda
        _PATCHER.wrap(task, "_from_error", _lambda_task_error)
    configure(settings)
