"""Local mode (``make run``'s process) as a service for tests that drive it from outside, as a user does.

The process runs in its own process group with its output in a file (a pipe nobody reads would fill
up and block the server), on free ports, and is stopped with SIGINT (then SIGKILL) at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localaws.demo import wait_until_healthy
from localaws.server import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class LocalMode:
    api_url: str
    aws_url: str
    api_port: int
    aws_port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without AWS credentials, endpoints or NEXUS_* settings, plus ``extra``: what a
    fresh shell on a developer's machine has. The venv's bin comes first on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NEXUS_", "MOTO_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@contextmanager
def local_mode(
    token: str | None, command: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Iterator[LocalMode]:
    """Run ``command`` (default ``python -m localaws.run``) on free ports until the block ends; ``token``
    (``NEXUS_API_TOKEN``) None leaves it to the command."""
    api_port, aws_port = free_port(), free_port()
    environ = {
        **(env if env is not None else clean_env()),
        "NEXUS_PORT": str(api_port),
        "NEXUS_AWS_PORT": str(aws_port),
        **({"NEXUS_API_TOKEN": token} if token is not None else {}),
    }
    with tempfile.NamedTemporaryFile("w+b", prefix="local-mode-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            list(command or [sys.executable, "-m", "localaws.run"]),
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = LocalMode(
        f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", api_port, aws_port, Path(log.name)
    )
    try:
        try:
            wait_until_healthy(running.api_url, process, timeout=120)
        except Exception as error:  # noqa: BLE001 - any start failure: show what the process said
            raise AssertionError(f"local mode did not start ({error}):\n{running.output()[-3000:]}") from None
        yield running
    finally:
        _stop(process)
        Path(log.name).unlink(missing_ok=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
