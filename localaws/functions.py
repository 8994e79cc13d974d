"""Run the deployed stack's functions in this process as Lambda runs them: handler, environment, role.

On AWS each function runs in its own process, with the environment the template gives it and the
credentials of its execution role, and the app's ``Container`` builds the services from both. Here every
function runs in one process, so ``FunctionHost`` does per invocation what Lambda does per process:

* the handler is the function's ``Handler`` (``app.acquire_lock``), imported from this checkout;
* its services are built (once per role and environment, then reused, as a warm container would) from
  the function's template environment, with local tuning (short polls and waits, tracing off) underneath, and a
  session of the function's role, minted as Lambda mints it (``LocalAws.role_session``);
* the handler runs inside ``container.serving(those services)``, so ``container.get()`` answers them for
  that invocation only. The HTTP API runs in-process the same way, as the function the API's routes
  reach, under its role (the container's default services).

Every AWS call the functions make is recorded with the function and the role that signed it
(``calls``), so a test can show that each function ran under its own role.
"""

from __future__ import annotations

import collections
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from chalicelib.composition import Container, Services
    from localaws.environment import LocalAws
    from localaws.stack import DeployedFunction

Handler = Callable[[Any, Any], Any]
Builder = Callable[[Mapping[str, str], "boto3.Session"], "Services"]
# Lambda's own variables, which the app's settings read (AWS_REGION).
_LAMBDA_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def default_builder(environment: Mapping[str, str], session: boto3.Session) -> Services:
    from chalicelib.composition import build_services
    from chalicelib.settings import Settings

    return build_services(Settings.from_env(environment), session)


class FunctionHost:
    def __init__(self, aws: LocalAws, container: Container, build: Builder = default_builder) -> None:
        self._aws = aws
        self._container = container
        self._build = build
        self._functions = aws.stack.functions()
        self.api_function = aws.stack.api_function()
        self._tuning: dict[str, str] | None = None  # what configure() was last given
        self._services: dict[tuple[str, tuple[tuple[str, str], ...]], Services] = {}
        self._role_sessions: dict[str, boto3.Session] = {}
        self._lock = threading.Lock()
        self._current: ContextVar[str | None] = ContextVar("local_function", default=None)
        self.calls: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.invocations: collections.Counter[str] = collections.Counter()  # by logical id

    # -- configuration -----------------------------------------------------------------------------

    def configure(self, tuning: Mapping[str, str] | None) -> Services | None:
        """Set the local tuning every function's environment gets (``None``: stop serving the API).

        Answers the API function's services, which become the container's default (what the HTTP
        routes get); the other functions' services are rebuilt on their next invocation.
        """
        with self._lock:
            self._services.clear()
            self._role_sessions.clear()
            self._tuning = None if tuning is None else dict(tuning)
        if tuning is None:
            self._container.configure(None)
            return None
        api = self.services(self.api_function)
        self._container.configure(api)
        return api

    @property
    def tuning(self) -> dict[str, str] | None:
        """The tuning in force (a copy), or None when the host does not serve the API."""
        with self._lock:
            return None if self._tuning is None else dict(self._tuning)

    def environment(self, logical_id: str) -> dict[str, str]:
        """What the function's settings read: Lambda's variables, tracing off (there is no X-Ray daemon
        here; tuning may turn it on), local tuning, then the template's."""
        function = self._functions[logical_id]
        region = self._aws.region
        return {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "POWERTOOLS_TRACE_DISABLED": "true",
            **{k: v for k, v in (self._tuning or {}).items() if k not in _LAMBDA_VARIABLES},
            **function.environment,
        }

    def services(self, logical_id: str) -> Services:
        """The function's services: built once per (role, environment), as a warm Lambda keeps them."""
        function = self._functions[logical_id]
        environment = self.environment(logical_id)
        key = (function.role_arn, tuple(sorted(environment.items())))
        with self._lock:
            built = self._services.get(key)
            if built is None:
                session = self._role_sessions.get(function.role_arn)
                if session is None:
                    session = self._role_sessions[function.role_arn] = _shared_clients(
                        self._aws.role_session(function.role_arn)
                    )
                    self._record_calls(session, function)
                built = self._services[key] = self._build(environment, session)
            return built

    def services_with(self, logical_id: str, **tuning: str) -> Services:
        """Separate services of the function, with more tuning (e.g. an API whose requests ask for
        another completion mode); not what the function's invocations get."""
        function = self._functions[logical_id]
        environment = {**self.environment(logical_id), **tuning, **function.environment}
        session = self._aws.role_session(function.role_arn)
        self._record_calls(session, function)
        return self._build(environment, session)

    # -- running -----------------------------------------------------------------------------------

    def handlers(self) -> dict[str, Handler]:
        """Each function's handler by its deployed name, for ``localaws.lambda_runner``."""
        return {function.name: self._handler(function) for function in self._functions.values()}

    def names(self) -> dict[str, str]:
        """Each function's logical id by its deployed name (which ends in a suffix, as on AWS)."""
        return {function.name: function.logical_id for function in self._functions.values()}

    def _handler(self, function: DeployedFunction) -> Handler:
        module_name, _, attribute = function.handler.rpartition(".")
        target: Handler = getattr(importlib.import_module(module_name), attribute)

        def run(event: Any, context: Any) -> Any:
            self.invocations[function.logical_id] += 1
            services = self.services(function.logical_id)
            with self.acting_as(function.logical_id), self._container.serving(services):
                return target(event, context)

        return run

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Run the function on ``event`` now, in this thread, as Lambda would (its role, its environment):
        for tests that send a trigger's event many times and read each answer. The triggers themselves
        (rules, subscription, schedule) deliver through the local AWS."""
        function = self._functions[logical_id]
        from localaws.lambda_runner import FakeContext

        return self._handler(function)(event, FakeContext(function.name, invoked_function_arn=function.arn))

    @contextmanager
    def acting_as(self, logical_id: str) -> Iterator[None]:
        token = self._current.set(logical_id)
        try:
            yield
        finally:
            self._current.reset(token)

    def _record_calls(self, session: boto3.Session, function: DeployedFunction) -> None:
        """Count each AWS call made with ``session``, by the function running and the role signing it.

        Outside any invocation the caller is the HTTP API (the container's default services).
        """
        role_arn = function.role_arn

        def record(model: Any, **_: Any) -> None:
            service = model.service_model.signing_name or model.service_model.endpoint_prefix
            running = self._current.get() or self.api_function
            self.calls[(running, role_arn, f"{service}:{model.name}")] += 1

        session.events.register("before-call", record)

    def role_of(self, logical_id: str) -> str:
        return self._functions[logical_id].role_arn

    def close(self) -> None:
        self.configure(None)


def _shared_clients(session: boto3.Session) -> boto3.Session:
    """``session``, its clients made once: the functions of one role (warm containers of several
    functions, here) share them, as clients are thread-safe. Client creation is most of the cost of
    building a function's services, and tests start many. (``resource`` makes its client through
    ``client``, so it shares them too.)"""
    make = session.client
    made: dict[tuple[str, str | None, str], Any] = {}
    lock = threading.Lock()

    def client(service_name: str, region_name: str | None = None, **kwargs: Any) -> Any:
        key = (service_name, region_name, repr(getattr(kwargs.get("config"), "retries", None)))
        with lock:
            if key not in made:
                made[key] = make(service_name, region_name, **kwargs)  # type: ignore[call-overload]
            return made[key]

    session.client = client  # type: ignore[method-assign,assignment]
    return session
