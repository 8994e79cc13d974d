"""Lambda's asynchronous invocation in the local AWS: attempts, retries, then the dead-letter queue.

Why this exists: on AWS, EventBridge and SNS invoke a Lambda function asynchronously, and Lambda, not
the caller, owns what follows a function error (the handler raised, timed out: ``Sandbox.Timedout``, or
crashed): it runs the event again twice, one minute then two minutes later, and after the last failed
attempt sends the event to the function's dead-letter queue, if it has one. The deployer's event
handlers rely on it (``DeploymentExecutionEnded`` lets a throttled AWS leave the function so that Lambda
retries; the template gives each of them a dead-letter queue). moto 5.2.5 does none of it:
a Lambda target or subscriber ran once and its failure was only logged, and ``CreateFunction`` drops
``DeadLetterConfig``. So:

* :func:`invoke` runs an asynchronous invocation on the local AWS's one delivery thread
  (``localaws/eventbridge.py``), through moto's Lambda backend (the project's handler, in-process:
  ``localaws/lambda_runner.py``). Every attempt has the invocation's request ID (``aws_request_id``),
  as on Lambda;
* a failed attempt is retried ``MaximumRetryAttempts`` times (the function's event invoke config;
  default 2), after the delays of ``NEXUS_LOCAL_ASYNC_RETRY_SECONDS`` (default ``1,2``: AWS's one and two
  minutes, as seconds, since everything local runs in seconds), scheduled on that same thread. An event
  older than ``MaximumEventAgeInSeconds`` (default 6 hours) is not attempted again; its age is counted as
  AWS would count it (the real time the attempts took, plus AWS's waits instead of the local ones), so
  the local delays do not change which attempts happen;
* after the last attempt (or once too old), the event goes to the function's dead-letter queue (an SQS
  queue): ``SendMessage`` with the event as the body and the attributes Lambda sets, ``RequestID``,
  ``ErrorCode`` (the invocation's HTTP status, 200 for a function error) and ``ErrorMessage`` (the
  error's message, cut at 1 KB; never its stack trace). Without a queue the event is dropped, logged;
* ``DeadLetterConfig`` is kept on the function: ``CreateFunction`` and ``UpdateFunctionConfiguration``
  set it, ``GetFunctionConfiguration`` returns it;
* an ``Invoke`` with ``InvocationType=Event`` is such an invocation too, as on Lambda: a payload that is
  not JSON is refused (400 ``InvalidRequestContentException``), one over 1 MB too (413
  ``RequestEntityTooLargeException``); else it answers 202 at once and the event takes the same path
  (moto 5.2.5 ran the function once, there and then, and kept no failed event). Its answer's request ID
  is moto's, not the invocation's (moto sets it after the call).

No randomness: the delays are the setting's, so a run repeats. Not emulated: the on-failure destinations
of an event invoke config, an SNS topic as the dead-letter target, Lambda's own throttling retries (up to
6 hours), and the execution role's permission to send to the queue (the send is made as Lambda's).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from localaws import concurrency, eventbridge, lambda_runner
from localaws.patching import Patcher, params, source

__all__ = ["AWS_RETRY_SECONDS", "AsyncRetries", "check_moto_internals", "configure", "install", "invoke"]

logger = logging.getLogger(__name__)

ENV_NAME = "NEXUS_LOCAL_ASYNC_RETRY_SECONDS"
#: Lambda's waits before its second and third attempts of a failed asynchronous invocation.
AWS_RETRY_SECONDS = (60.0, 120.0)
DEFAULT_MAXIMUM_RETRIES = 2
DEFAULT_MAXIMUM_EVENT_AGE = 21600.0  # seconds: 6 hours
ERROR_MESSAGE_LIMIT = 1024  # bytes of ErrorMessage Lambda keeps in the dead-letter message
ASYNC_PAYLOAD_LIMIT = 1_048_576  # bytes: the largest event an asynchronous Invoke takes (1 MB)
FUNCTION_ERROR_STATUS = "200"  # a function error is an Invoke that answered 200 with X-Amz-Function-Error
_DEAD_LETTER = "_nexus_dead_letter_target"
_PATCHER = Patcher("localaws.async_invoke")


@dataclass(frozen=True)
class AsyncRetries:
    """The local waits before the second and third attempts (AWS's are 60 and 120 s)."""

    delays: tuple[float, float] = (1.0, 2.0)

    def __post_init__(self) -> None:
        if len(self.delays) != 2 or any(
            not 0 <= d <= AWS_RETRY_SECONDS[i] for i, d in enumerate(self.delays)
        ):
            raise ValueError(
                f"{ENV_NAME} must be two waits in seconds, from 0 up to AWS's 60 and 120, got {self.delays!r}"
            )

    @classmethod
    def parse(cls, text: str) -> AsyncRetries:
        """``"1,2"`` (the default when empty); ValueError names what is wrong."""
        if not text.strip():
            return cls()
        parts = [p.strip() for p in text.split(",")]
        try:
            delays = tuple(float(p) for p in parts)
        except ValueError:
            raise ValueError(f"{ENV_NAME} must be two numbers of seconds like 1,2, got {text!r}") from None
        if len(delays) != 2:
            raise ValueError(f"{ENV_NAME} must be two numbers of seconds like 1,2, got {text!r}")
        return cls((delays[0], delays[1]))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AsyncRetries:
        return cls.parse(environ.get(ENV_NAME, ""))

    def describe(self) -> str:
        return f"{self.delays[0]:g} s then {self.delays[1]:g} s"


DEFAULT = AsyncRetries()
_SETTINGS: dict[str, AsyncRetries] = {"retries": DEFAULT}


def configure(settings: AsyncRetries) -> None:
    """Put ``settings`` in force (each ``LocalAws`` does, for its lifetime)."""
    _SETTINGS["retries"] = settings


@dataclass
class _Invocation:
    """One asynchronous invocation: its event, its request ID, and how its attempts went."""

    function_arn: str
    payload: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    queued: float = field(default_factory=time.monotonic)
    attempts: int = 0
    local_waits: float = 0.0  # the local delays waited so far
    aws_waits: float = 0.0  # what AWS would have waited instead

    def aws_age(self) -> float:
        return time.monotonic() - self.queued - self.local_waits + self.aws_waits


def invoke(function_arn: str, payload: str) -> None:
    """Invoke the function asynchronously with ``payload`` (a JSON document), as EventBridge and SNS do."""
    eventbridge.deliver(lambda: _attempt(_Invocation(function_arn, payload)))


def _backend(function_arn: str) -> Any:
    from moto.awslambda.utils import get_backend

    _, _, _, region, account_id, *_ = function_arn.split(":")
    return get_backend(account_id, region)


def _attempt(invocation: _Invocation) -> None:
    backend = _backend(invocation.function_arn)
    headers: dict[str, str] = {}
    invocation.attempts += 1
    with lambda_runner.request_id(invocation.request_id):
        answer = backend.invoke(
            function_name=invocation.function_arn,
            qualifier=None,
            body=invocation.payload,
            headers={},
            response_headers=headers,
        )
    if "x-amz-function-error" not in headers:
        return
    error = _error_of(answer)
    function = backend.get_function(invocation.function_arn)
    retries, maximum_age = _retry_config(backend, invocation.function_arn)
    if invocation.attempts <= retries:
        aws_wait = AWS_RETRY_SECONDS[invocation.attempts - 1]
        if invocation.aws_age() + aws_wait <= maximum_age:
            local_wait = _SETTINGS["retries"].delays[invocation.attempts - 1]
            invocation.local_waits += local_wait
            invocation.aws_waits += aws_wait
            logger.info(
                "local lambda %s: asynchronous attempt %d failed (%s); retrying in %g s",
                function.function_name,
                invocation.attempts,
                error[0],
                local_wait,
            )
            eventbridge.deliver(lambda: _attempt(invocation), delay=local_wait)
            return
    _dead_letter(function, invocation, error)


def _invoke_api(original: Any) -> Any:
    """``LambdaBackend.invoke``: an ``Event`` invocation is checked as Lambda checks one (a JSON document
    of at most 1 MB), then queued as :func:`invoke` queues one."""

    def invoke_function(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> Any:
        kind = next((v for k, v in dict(headers or {}).items() if k.lower() == "x-amz-invocation-type"), "")
        if kind != "Event":
            return original(self, function_name, qualifier, body, headers, response_headers)
        from moto.awslambda.exceptions import LambdaClientError

        function = self.get_function(function_name, qualifier)  # an unknown function: its 404, at once
        raw = body if isinstance(body, bytes) else str(body or "").encode()
        if len(raw) > ASYNC_PAYLOAD_LIMIT:
            error = LambdaClientError(
                "RequestEntityTooLargeException",
                f"Request must be smaller than {ASYNC_PAYLOAD_LIMIT} bytes for the Invoke operation",
            )
            error.code = 413
            raise error
        try:
            text = raw.decode("utf-8") or "{}"
            json.loads(text)
        except ValueError as bad:  # UnicodeDecodeError too
            raise LambdaClientError(
                "InvalidRequestContentException", f"Could not parse request body into json: {bad}"
            ) from None
        invoke(function.function_arn, text)
        return b""  # not None: the API answers 202 with an empty body

    return invoke_function


def _error_of(answer: Any) -> tuple[str, str]:
    """(errorType, errorMessage) of a failed invocation's answer, in the Lambda runtime's shape."""
    try:
        body = json.loads(answer or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return str(body.get("errorType") or "Unhandled"), str(body.get("errorMessage") or "")


def _retry_config(backend: Any, function_arn: str) -> tuple[int, float]:
    """``MaximumRetryAttempts`` and ``MaximumEventAgeInSeconds`` of the function's event invoke config."""
    from moto.awslambda.exceptions import UnknownEventConfig

    try:
        config = backend.get_function_event_invoke_config(function_arn)
    except UnknownEventConfig:
        config = {}
    retries = config.get("MaximumRetryAttempts")
    age = config.get("MaximumEventAgeInSeconds")
    # AWS accepts 0 to 2 (PutFunctionEventInvokeConfig); moto stores any number: never more than AWS's.
    return (
        DEFAULT_MAXIMUM_RETRIES if retries is None else max(0, min(int(retries), len(AWS_RETRY_SECONDS))),
        DEFAULT_MAXIMUM_EVENT_AGE if age is None else float(age),
    )


def _dead_letter(function: Any, invocation: _Invocation, error: tuple[str, str]) -> None:
    target = str(getattr(function, _DEAD_LETTER, "") or "")
    if not target:
        logger.warning(
            "local lambda %s: asynchronous invocation %s failed %d attempt(s) (%s); no dead-letter queue, "
            "event dropped",
            function.function_name,
            invocation.request_id,
            invocation.attempts,
            error[0],
        )
        return
    _, _, service, region, account_id, *rest = target.split(":")
    if service != "sqs":
        logger.warning(
            "local lambda %s: dead-letter target %s is not emulated", function.function_name, target
        )
        return
    message = error[1].encode()[:ERROR_MESSAGE_LIMIT].decode(errors="ignore")
    attributes = {
        "RequestID": {"DataType": "String", "StringValue": invocation.request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": FUNCTION_ERROR_STATUS},
        "ErrorMessage": {"DataType": "String", "StringValue": message},
    }
    from moto.sqs.models import sqs_backends

    try:
        with concurrency.lock():
            sqs_backends[account_id][region].send_message(rest[0], invocation.payload, attributes)
    except Exception as exc:  # noqa: BLE001 - Lambda counts a DeadLetterErrors metric; here, a log line
        logger.warning(
            "local lambda %s: could not send to its dead-letter queue %s (%s)",
            function.function_name,
            target,
            type(exc).__name__,
        )
        return
    logger.info(
        "local lambda %s: asynchronous invocation %s failed %d attempt(s) (%s); event sent to %s",
        function.function_name,
        invocation.request_id,
        invocation.attempts,
        error[0],
        target,
    )


# -- DeadLetterConfig on the function ---------------------------------------------------------------


def _target_of(config: Any) -> str:
    return str((config or {}).get("TargetArn") or "") if isinstance(config, dict) else ""


def _init(original: Any) -> Any:
    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original(self, account_id, spec, *args, **kwargs)
        setattr(self, _DEAD_LETTER, _target_of(spec.get("DeadLetterConfig")))

    return __init__


def _get_configuration(original: Any) -> Any:
    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config: dict[str, Any] = original(self, *args, **kwargs)
        target = getattr(self, _DEAD_LETTER, "")
        if target:
            config["DeadLetterConfig"] = {"TargetArn": target}
        return config

    return get_configuration


def _update_configuration(original: Any) -> Any:
    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "DeadLetterConfig" in config_updates:
            setattr(self, _DEAD_LETTER, _target_of(config_updates["DeadLetterConfig"]))
        result: dict[str, Any] = original(self, config_updates)
        return result

    return update_configuration


def check_moto_internals() -> None:
    import inspect

    from moto.awslambda import exceptions
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.sqs.models import SQSBackend

    def unwrapped(owner: type, name: str) -> Any:
        return inspect.unwrap(inspect.getattr_static(owner, name))

    _PATCHER.expect(
        params(unwrapped(LambdaFunction, "__init__"))[:4] == ["self", "account_id", "spec", "region"],
        "LambdaFunction.__init__(self, account_id, spec, region, ...)",
    )
    _PATCHER.expect(
        params(unwrapped(LambdaFunction, "get_configuration"))[:1] == ["self"],
        "LambdaFunction.get_configuration(self, ...)",
    )
    _PATCHER.expect(
        params(unwrapped(LambdaFunction, "update_configuration")) == ["self", "config_updates"],
        "LambdaFunction.update_configuration(self, config_updates)",
    )
    _PATCHER.expect(
        params(LambdaBackend.invoke)[:6]
        == ["self", "function_name", "qualifier", "body", "headers", "response_headers"],
        "LambdaBackend.invoke(self, function_name, qualifier, body, headers, response_headers)",
    )
    _PATCHER.expect(
        'response_headers["x-amz-function-error"]' in source(LambdaFunction.invoke),
        "LambdaFunction.invoke marks a function error with the x-amz-function-error header",
    )
    from moto.awslambda.responses import LambdaResponse

    _PATCHER.expect(  # what _invoke_api relies on: a payload (not None) of an Event invocation is a 202
        'X-Amz-Invocation-Type") == "Event"' in source(LambdaResponse.invoke)
        and "status_code = 202" in source(LambdaResponse.invoke),
        "LambdaResponse.invoke answers an Event invocation's payload with 202",
    )
    _PATCHER.expect(
        hasattr(LambdaBackend, "get_function_event_invoke_config")
        and hasattr(exceptions, "UnknownEventConfig"),
        "LambdaBackend.get_function_event_invoke_config raising UnknownEventConfig",
    )
    _PATCHER.expect(
        params(SQSBackend.send_message)[:4] == ["self", "queue_name", "message_body", "message_attributes"],
        "SQSBackend.send_message(self, queue_name, message_body, message_attributes, ...)",
    )


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        from moto.awslambda.models import LambdaBackend, LambdaFunction

        _PATCHER.wrap(LambdaFunction, "__init__", _init)
        _PATCHER.wrap(LambdaFunction, "get_configuration", _get_configuration)
        _PATCHER.wrap(LambdaFunction, "update_configuration", _update_configuration)
        _PATCHER.wrap(LambdaBackend, "invoke", _invoke_api)
