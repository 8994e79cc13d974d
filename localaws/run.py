"""Local mode (``make run``): the whole service and its AWS in one foreground process.

Why one process: the embedded AWS is moto plus this project's patches (in-process Lambda, STS
trust-policy enforcement, CloudFormation that takes time and fails like AWS), and those patches
only act on a moto server running in the same interpreter. So this process runs

* the embedded AWS on ``127.0.0.1:$NEXUS_AWS_PORT`` (default 5000): a ``ThreadedMotoServer`` with
  state machine execution on and the service deployed into the central account (123456789012) from
  its own cloud template (``localaws.environment.LocalAws`` in server mode);
* the HTTP API on ``127.0.0.1:$NEXUS_PORT`` (default 8000): Chalice's dev server, running the routes
  as the API function the template deploys, under its role (``ApiRole``). The service talks to the
  embedded AWS only through ``AWS_ENDPOINT_URL``, exactly as its Lambda functions talk to AWS. The
  workflows' steps and the event handlers run inside the moto server's threads, each under the role
  the template gives its function (``localaws/functions.py``).

The HTTP server starts last, so ``GET /health`` answering 200 means everything is ready. The tenant
token comes from ``NEXUS_API_TOKEN`` or is generated and printed once. ``NEXUS_LOCAL_STACK_SECONDS``
(default 3) sets how long stack operations stay in progress; ``NEXUS_LOCAL_ASYNC_RETRY_SECONDS`` (default
``1,2``) Lambda's waits before retrying a failed asynchronous invocation; ``NEXUS_LOCAL_UNSUPPORTED`` (``fail``, the
default; ``skip``; ``simulate``) what happens to resource types moto does not emulate. A busy port is a one-line error and
exit code 2; SIGINT or SIGTERM stops both servers and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localaws.async_invoke import AsyncRetries
    from localaws.cloudformation import StackSimulation
    from localaws.faults import FaultSettings

HOST = "127.0.0.1"
TENANT_ID = "local"
EXIT_PORT_IN_USE = 2
EXIT_BAD_CONFIG = 2
# Stacks take seconds here, not minutes: poll often so progress shows as it happens.
# Polls (change sets, and NEXUS_COMPLETION_MODE=poll) every 1-2 s; a stack event not seen within 15 s
# (a target account without the bootstrap template's forwarding rule) is reconciled then.
LOCAL_SETTINGS = {
    "NEXUS_POLL_INITIAL_SECONDS": "1",
    "NEXUS_POLL_MAX_SECONDS": "2",
    "NEXUS_EVENT_TIMEOUT_SECONDS": "15",
}


# What the banner says each NEXUS_LOCAL_UNSUPPORTED mode does with a resource type moto does not emulate.
UNSUPPORTED_WORDS = {
    "fail": "their stacks fail",
    "skip": "skipped, with a WARNING event",
    "simulate": "simulated (schema-checked, no real resource; every event says so)",
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class LocalConfig:
    aws_port: int
    api_port: int
    token: str | None  # None: generate one
    adfs_account: str = "111111111111"  # where the local ADFS's roles live (localaws/local_adfs.py)
    adfs_password: str = ""  # "": generated and printed

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalConfig:
        account = environ.get("NEXUS_LOCAL_ADFS_ACCOUNT", "").strip() or "111111111111"
        if not (account.isdigit() and len(account) == 12) or account == "123456789012":
            raise ConfigError("NEXUS_LOCAL_ADFS_ACCOUNT must be a 12-digit target account (not 123456789012)")
        return cls(
            aws_port=_port(environ, "NEXUS_AWS_PORT", 5000),
            api_port=_port(environ, "NEXUS_PORT", 8000),
            token=environ.get("NEXUS_API_TOKEN", "").strip() or None,
            adfs_account=account,
            adfs_password=environ.get("NEXUS_LOCAL_ADFS_PASSWORD", ""),
        )


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name} must be a TCP port number (1-65535), got {raw!r}")
    return int(raw)


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    from localaws.async_invoke import AsyncRetries
    from localaws.cloudformation import StackSimulation
    from localaws.collector import collect_less_often
    from localaws.faults import FaultSettings
    from localaws.server import port_in_use

    try:
        config = LocalConfig.from_env(environ)
        simulation = StackSimulation.from_env(environ)
        faults = FaultSettings.from_env(environ)
        retries = AsyncRetries.from_env(environ)
        if faults.crash_after or faults.time_out:
            import app as app_module

            chalice_app = app_module.app
            faults.check_functions(
                {f.name for f in chalice_app.pure_lambda_functions}
                | {s.name for s in chalice_app.event_sources}
            )
    except ValueError as error:
        print(f"nexus local: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if config.aws_port == config.api_port:
        print(f"nexus local: NEXUS_PORT and NEXUS_AWS_PORT are both {config.api_port}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    for name, port in (("NEXUS_AWS_PORT", config.aws_port), ("NEXUS_PORT", config.api_port)):
        if port_in_use(HOST, port):
            print(
                f"nexus local: port {port} on {HOST} is already in use; stop what holds it or set {name}",
                file=sys.stderr,
            )
            return EXIT_PORT_IN_USE

    collect_less_often()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    serve(config, simulation, stop, faults, retries)
    return 0


def serve(
    config: LocalConfig,
    simulation: StackSimulation,
    stop: threading.Event,
    faults: FaultSettings | None = None,
    retries: AsyncRetries | None = None,
) -> None:
    """Start the embedded AWS, wire the service to it, then serve HTTP until ``stop`` is set."""
    import app as app_module
    from chalicelib.service.auth import new_token
    from localaws.environment import CENTRAL_ACCOUNT, LocalAws
    from localaws.functions import FunctionHost
    from localaws.local_adfs import USER, LocalAdfs
    from localaws.server import ApiServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request log lines
    with (
        LocalAws(
            lambda aws: FunctionHost(aws, app_module.container),
            simulation=simulation,
            serve_on=(HOST, config.aws_port),
            faults=faults,
            async_retries=retries,
        ) as aws,
        LocalAdfs(aws, config.adfs_account, config.adfs_password) as adfs,
    ):
        services = aws.host.configure(tuning(os.environ, adfs.settings_env()))
        assert services is not None
        token = config.token or new_token()
        services.auth.issue(TENANT_ID, "local mode", token)
        api = ApiServer(app_module.app, HOST, config.api_port)
        api.start()
        try:
            source = "from NEXUS_API_TOKEN" if config.token else f"{token}  (generated; set NEXUS_API_TOKEN)"
            print(banner(aws.endpoint_url or "", api.url, source, CENTRAL_ACCOUNT, simulation), flush=True)
            print(f"  Faults:           {aws.faults.describe()} (NEXUS_LOCAL_FAULTS)", flush=True)
            print(
                f"  Async retries:    {aws.async_retries.describe()} (NEXUS_LOCAL_ASYNC_RETRY_SECONDS;"
                " AWS waits 60 s then 120 s)",
                flush=True,
            )
            print(f"  Console:          {api.url}/console   (sign in with the tenant token)", flush=True)
            print(
                f"  Local ADFS:       {adfs.url}   user {USER}, password {adfs.password},"
                f" roles in account {config.adfs_account}",
                flush=True,
            )
            stop.wait()
            print("nexus local: stopping", flush=True)
        finally:
            api.stop()


# Local mode's own variables: not the service's settings (the token and the ADFS password are secrets).
_LOCAL_MODE_VARIABLES = frozenset(
    {
        "NEXUS_PORT",
        "NEXUS_AWS_PORT",
        "NEXUS_API_TOKEN",
        "NEXUS_LOCAL_STACK_SECONDS",
        "NEXUS_LOCAL_UNSUPPORTED",
        "NEXUS_LOCAL_ASYNC_RETRY_SECONDS",
        "NEXUS_LOCAL_ADFS_ACCOUNT",
        "NEXUS_LOCAL_ADFS_PASSWORD",
    }
)


def tuning(environ: Mapping[str, str], provisioned: Mapping[str, str] | None = None) -> dict[str, str]:
    """What every deployed function's environment gets besides the template's: local polling defaults,
    then any ``NEXUS_*`` setting from this environment, then what local mode provisioned beside the
    stack (the local ADFS's host and certificate), then ``POWERTOOLS_TRACE_DISABLED`` if set (the
    functions run with tracing off locally unless it says false, ``localaws/functions.py``). The
    template's own variables (the table, the roles, the state machines) win over all of them."""
    given = {k: v for k, v in environ.items() if k.startswith("NEXUS_") and k not in _LOCAL_MODE_VARIABLES}
    tracing = {name: environ[name] for name in ("POWERTOOLS_TRACE_DISABLED",) if name in environ}
    return {**LOCAL_SETTINGS, **given, **(provisioned or {}), **tracing}


def banner(aws_url: str, api_url: str, token: str, account: str, simulation: StackSimulation) -> str:
    return "\n".join(
        [
            "NexusAI Deployer, local mode: ready",
            f"  HTTP API:         {api_url}   (GET /health)",
            f"  Embedded AWS:     {aws_url}   (use it as AWS_ENDPOINT_URL)",
            f"  Central account:  {account}",
            f"  Tenant token:     {token}",
            f"  Stack operations: {simulation.stack_seconds:g} s each (NEXUS_LOCAL_STACK_SECONDS)",
            f"  Unemulated types: {UNSUPPORTED_WORDS[simulation.unsupported]} (NEXUS_LOCAL_UNSUPPORTED="
            f"{simulation.unsupported}; fail|skip|simulate)",
            "  State lives in memory: stopping local mode forgets every target, deployment and stack.",
            "  Ctrl-C stops both servers.",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
