"""The service as a child process (start it, wait for ``/health``, stop it with SIGINT) and ``main``:
the demo's whole run, from starting local mode to its exit code."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from localaws.demo.base import HOST, ROOT, STOP_STEP, DemoFailed, expect
from localaws.demo.clients import Api
from localaws.demo.story import run_story

# -- the service, as a child process ----------------------------------------------------------------


def start_service(env: Mapping[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "localaws.run"]
    return subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def wait_until_healthy(url: str, service: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        expect(service.poll() is None, f"local mode exited with code {service.returncode} while starting")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise DemoFailed(f"local mode was not healthy after {timeout:.0f} s")


def stop_service(service: subprocess.Popen[bytes]) -> int:
    if service.poll() is None:
        service.send_signal(signal.SIGINT)
        try:
            return service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
            return -9
    return service.returncode


def main(environ: Mapping[str, str] | None = None) -> int:
    from localaws.server import free_port

    started = time.monotonic()
    console = Console(highlight=False, width=shutil.get_terminal_size((120, 24)).columns)
    environ = os.environ if environ is None else environ
    api_port, aws_port = free_port(), free_port()
    token = "nxs_demo_" + secrets.token_urlsafe(24)
    env = {
        **environ,
        "NEXUS_PORT": str(api_port),
        "NEXUS_AWS_PORT": str(aws_port),
        "NEXUS_API_TOKEN": token,
        "NEXUS_LOCAL_STACK_SECONDS": environ.get("NEXUS_LOCAL_STACK_SECONDS", "3"),
    }
    api, aws_url = Api(f"http://{HOST}:{api_port}", token), f"http://{HOST}:{aws_port}"
    failure: str | None = None
    with tempfile.TemporaryFile() as log:
        console.rule("[bold]NexusAI Deployer demo")
        console.print(f"  starting local mode: API {api.base_url}, embedded AWS {aws_url}")
        console.print(
            f"  stack operations take {env['NEXUS_LOCAL_STACK_SECONDS']} s (NEXUS_LOCAL_STACK_SECONDS)"
        )
        service = start_service(env, log)
        try:
            wait_until_healthy(api.base_url, service)
            console.print(f"  healthy after {time.monotonic() - started:.1f} s")
            run_story(console, api, aws_url)
        except (DemoFailed, OSError, ValueError, KeyError) as error:
            failure = f"{type(error).__name__}: {error}"
        finally:
            console.rule(f"[bold]{STOP_STEP}. Stop the service")
            code = stop_service(service)
        console.print(f"  local mode exited with code {code}")
        if code != 0 and failure is None:
            failure = f"local mode exited with code {code}, expected 0"
        if failure is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace").splitlines()[-25:]
            console.print("\n".join(f"  | {line}" for line in tail), markup=False, style="dim")
    elapsed = time.monotonic() - started
    if failure is not None:
        console.print(f"[bold red]DEMO FAILED[/bold red] after {elapsed:.1f} s: {escape(failure)}")
        return 1
    console.print(
        f"[bold green]Demo passed[/bold green]: every step behaved as expected. Wall time {elapsed:.1f} s"
    )
    return 0
