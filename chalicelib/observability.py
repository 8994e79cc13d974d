"""Logs, traces and per-invocation metrics of every Lambda handler, through Powertools.

Logs: modules log with the standard library (``logging.getLogger(__name__)``), which costs nothing
at import. ``configure_logging`` gives those loggers Powertools' JSON formatter, so CloudWatch Logs
Insights can query by level, service and key. Nothing here logs request bodies or credentials.

Every handler (HTTP routes, workflow steps, event handlers) runs inside ``middleware``, a Chalice
middleware registered for all event types in app.py. Per invocation it

* binds the operation's keys to every log line of this thread (Powertools Logger's thread-safe
  keys: local mode runs many invocations at once in one process): ``tenant_id``, ``deployment_id``,
  ``operation_id`` (or ``rollout_id``/``item_id``) from a step's input, and ``correlation_id``; an
  event's id as ``event_id`` too, which stays when its handler binds the keys of the operation the
  event turns out to concern (``bind``: the execution's input, a stack waiter's record, the item's
  record; the middleware cannot know them);
* counts a cold start the first time a function runs in the process (the ``ColdStarts`` metric);
* runs the handler inside a trace subsegment (chalicelib/adapters/tracing.py);
* logs one line when the handler returns or raises, with its duration.

The correlation id runs from the API request into everything it starts: an ``X-Correlation-Id``
header of the expected shape, else API Gateway's request id. The services put it into each
execution's input (``correlation_id``), the definitions pass it to every step, and a step's own
calls carry it on (a rollout item's deployment execution gets its rollout's, InspectTarget's invoke
the request's). An EventBridge or SNS event's id is the correlation id of what that event starts; an
event about a running operation (its stack's status, its execution's end) logs under that operation's
correlation id once its handler knows the operation. The answer to an HTTP request names it in its
``X-Correlation-Id`` header.

Nothing here is imported heavily at import time: Powertools' Logger is imported when logging is first
configured, the Tracer only by the composition root when tracing is on.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chalicelib.domain.errors import TransientAwsError
from chalicelib.domain.metrics import Metric

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from chalicelib.service.ports import Metrics

SERVICE_NAME = "nexus-deployer"
CORRELATION_HEADER = "X-Correlation-Id"
CORRELATION_ID = re.compile(r"^[\w.:/=+@-]{1,128}$", re.ASCII)
API_FUNCTION = "APIHandler"  # the cloud template's name for the HTTP handler function
# What a step's input may name, bound as log keys as they are (ids the service made).
STEP_KEYS = ("tenant_id", "deployment_id", "operation_id", "rollout_id", "item_id")

T = TypeVar("T")
logger = logging.getLogger(__name__)
_lock = threading.Lock()
_source: Logger | None = None


def configure_logging(level: str = "INFO") -> None:
    global _source
    with _lock:
        if _source is None:
            from aws_lambda_powertools import Logger

            _source = Logger(service=SERVICE_NAME, level=level)
            # Only Powertools' JSON handler: its logger is Chalice's app logger too (both are named
            # after the service), whose plain-text handler would write every line a second time.
            package = logging.getLogger("chalicelib")  # every module's logger is a child of this one
            package.handlers = [_source.registered_handler]
            package.propagate = False
        _source.setLevel(level)
        logging.getLogger("chalicelib").setLevel(level)


def _logger() -> Logger:
    if _source is None:
        configure_logging()
    assert _source is not None
    return _source


def bind(**keys: str | None) -> None:
    """Add keys to every log line this thread writes until the invocation ends (None: left out)."""
    _logger().thread_safe_append_keys(**{k: v for k, v in keys.items() if v is not None})


@contextmanager
def binding(**keys: str | None) -> Iterator[None]:
    """``bind`` for a block of work on one of several things (each deployment of a redeploy): at its
    end the keys are back as they were before it, so the next one's lines carry none of this one's."""
    before = dict(_logger().thread_safe_get_current_keys())
    bind(**keys)
    try:
        yield
    finally:
        source = _logger()
        source.thread_safe_clear_keys()
        source.thread_safe_append_keys(**before)


def input_keys(payload: Mapping[str, Any]) -> dict[str, str]:
    """The log keys a step's or an execution's input names: its ids and its correlation id (else its
    operation's or rollout's id)."""
    keys = {k: str(payload[k]) for k in STEP_KEYS if payload.get(k) is not None}
    fallback = keys.get("operation_id") or keys.get("rollout_id") or str(uuid.uuid4())
    keys["correlation_id"] = valid_correlation_id(payload.get("correlation_id")) or fallback
    return keys


def carried_keys() -> dict[str, str]:
    """The keys of this thread's operation (its ids and correlation id) for a record to carry to
    another invocation that acts for it: a stack waiter's, read by the stack event that releases it."""
    current = _logger().thread_safe_get_current_keys()
    return {k: str(current[k]) for k in (*STEP_KEYS, "correlation_id") if current.get(k)}


def restored_keys(keys: Mapping[str, Any]) -> dict[str, str]:
    """``carried_keys`` as read back from a record: only those keys, and a correlation id that is one,
    whatever else the record was made to hold (a key of Powertools' own would override its field)."""
    restored = {k: str(keys[k]) for k in STEP_KEYS if keys.get(k) is not None}
    correlation = valid_correlation_id(keys.get("correlation_id"))
    return {**restored, "correlation_id": correlation} if correlation else restored


def bound(key: str) -> str | None:
    value = _logger().thread_safe_get_current_keys().get(key)
    return None if value is None else str(value)


def correlation_id() -> str | None:
    """The correlation id of the invocation running on this thread, if any."""
    return bound("correlation_id")


def valid_correlation_id(value: Any) -> str | None:
    return value if isinstance(value, str) and CORRELATION_ID.match(value) else None


class Tracing(Protocol):
    """What the middleware needs of a tracer (chalicelib/adapters/tracing.py)."""

    def trace(self, function: str, cold_start: bool, call: Callable[[], T]) -> T: ...


@dataclass(frozen=True)
class Telemetry:
    """The process's tracer and metrics, built by the composition root."""

    tracing: Tracing
    metrics: Metrics
    # The function's name as the cloud template has it (NEXUS_FUNCTION_NAME); "" when not given (the
    # tests' services), then read from the invocation's context.
    function: str = ""


@dataclass(frozen=True)
class Invocation:
    function: str
    keys: dict[str, str]
    http: bool


def describe(event: Any) -> Invocation:
    """Which function runs, and the log keys of its event (Chalice's event objects)."""
    from chalice.app import CloudWatchEvent, LambdaFunctionEvent, Request, SNSEvent

    if isinstance(event, Request):
        headers = {k.lower(): v for k, v in (event.headers or {}).items()}
        given = valid_correlation_id(headers.get(CORRELATION_HEADER.lower()))
        request_id = valid_correlation_id((event.context or {}).get("requestId"))
        return Invocation(API_FUNCTION, {"correlation_id": given or request_id or str(uuid.uuid4())}, True)
    function = _function_name(getattr(event, "context", None))
    if isinstance(event, LambdaFunctionEvent):
        return Invocation(function, input_keys(event.event if isinstance(event.event, dict) else {}), False)
    if isinstance(event, CloudWatchEvent):
        return Invocation(function, _event_keys(event.event_id), False)
    if isinstance(event, SNSEvent):
        message_id = (event.to_dict().get("Records") or [{}])[0].get("Sns", {}).get("MessageId")
        return Invocation(function, _event_keys(message_id), False)
    return Invocation(function, {}, False)


def _event_keys(event_id: Any) -> dict[str, str]:
    """An event's or message's id: the correlation id of what it starts, and kept as ``event_id`` when
    its handler binds the correlation id of the operation it concerns."""
    valid = valid_correlation_id(event_id) or ""
    return {"correlation_id": valid, "event_id": valid}


def _function_name(context: Any) -> str:
    """The function's name as the cloud template has it when its deployed name is ``<...>-<Name>``:
    chalice's own deploy and the local AWS name them so. CloudFormation adds a random suffix, so the
    deployed service names each function in ``Telemetry.function`` instead (NEXUS_FUNCTION_NAME)."""
    name = str(getattr(context, "function_name", "") or "unknown")
    return name.rsplit("-", 1)[-1]


def middleware(telemetry: Callable[[], Telemetry]) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """The Chalice middleware of every handler (app.py registers it for all event types)."""
    seen: set[str] = set()
    seen_lock = threading.Lock()

    def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
        invocation = describe(event)
        with seen_lock:
            cold = invocation.function not in seen
            seen.add(invocation.function)
        current = telemetry()
        # The template's name of the function: what the alarms and the dashboard read.
        function = invocation.function if invocation.http or not current.function else current.function
        source = _logger()
        source.thread_safe_clear_keys()  # nothing left over from an earlier invocation on this thread
        bind(**{k: v for k, v in invocation.keys.items() if v})
        if cold:
            current.metrics.add(Metric.COLD_STARTS, function=function)
        started = time.perf_counter()
        outcome = "error"
        try:
            response = current.tracing.trace(function, cold, lambda: get_response(event))
            outcome = "ok"
        except TransientAwsError:
            # Raised on purpose, for the step's Retry (or Lambda's retry of an event) to run it again:
            # an error to Lambda's metrics, which the errors alarms discount by this count.
            outcome = "retry"
            current.metrics.add(Metric.RETRIES_REQUESTED, function=function)
            raise
        finally:
            logger.info(
                "invocation ended",
                extra={
                    "function": function,
                    "outcome": outcome,
                    "cold_start": cold,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            source.thread_safe_clear_keys()
        if invocation.http and hasattr(response, "headers"):
            response.headers[CORRELATION_HEADER] = invocation.keys["correlation_id"]
        return response

    return observe
