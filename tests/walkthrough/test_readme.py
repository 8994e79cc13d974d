"""The README's hands-on walkthrough, run as written: a real ``make run`` and bash.

The blocks marked ```` ```sh walkthrough-server ```` (terminal 1) and ```` ```sh walkthrough ````
(terminal 2) are taken from README.md as they are. The server block runs in the background on free
ports (``NEXUS_PORT``/``NEXUS_AWS_PORT``, which both local mode and the ``nexus`` CLI read); the others
run in order in one ``bash`` with ``set -euo pipefail``, from a PATH without ``.venv/bin`` (the README
must put it there) and a HOME of its own (profiles and config land there, not in yours). Any command
that fails fails the test, with the command and its output.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from tests.support.local_mode import BIN, ROOT, clean_env, local_mode

README = ROOT / "README.md"
BLOCK = re.compile(r"^```sh (walkthrough(?:-server)?)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    return [body for marker, body in BLOCK.findall(README.read_text()) if marker == kind]


def test_the_readme_marks_one_server_block_and_the_ten_steps() -> None:
    assert len(blocks("walkthrough-server")) == 1
    steps = blocks("walkthrough")
    assert len(steps) == 10
    text = "\n".join(steps)
    for command in ("nexus local admin", "nexus targets create", "nexus targets bootstrap", "nexus targets validate",
                    "nexus deploy", "--follow", "--plan", "nexus apply", "nexus deployments delete",
                    "nexus rollouts create", "nexus rollouts watch"):  # fmt: skip
        assert command in text, command


def test_the_readme_walkthrough_runs_against_make_run(tmp_path: Path) -> None:
    (server,) = blocks("walkthrough-server")
    script = tmp_path / "walkthrough.sh"
    script.write_text(
        "set -euo pipefail\n"
        "trap 'echo \"walkthrough: this command failed (line $LINENO): $BASH_COMMAND\" >&2' ERR\n"
        + "\n".join(blocks("walkthrough"))
    )
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    env = {**clean_env(HOME=str(tmp_path)), "PATH": path, "NEXUS_LOCAL_STACK_SECONDS": "1"}
    began = time.monotonic()
    with local_mode(None, command=["bash", "-c", server], env=env) as running:  # the block sets the token
        shell_env = {**env, "NEXUS_PORT": str(running.api_port), "NEXUS_AWS_PORT": str(running.aws_port)}
        result = subprocess.run(
            ["bash", str(script)],  # noqa: S607
            cwd=ROOT,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        banner = running.output()
    elapsed = time.monotonic() - began
    assert result.returncode == 0, (
        f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    )
    assert "State lives in memory" in banner
    out = result.stdout
    assert "111111111111" in out  # sts get-caller-identity as the target's admin
    assert "All checks passed." in out  # bootstrap, validate, credentials test
    assert re.search(r"^prod$", out, re.MULTILINE)  # the applied plan, seen by the AWS CLI
    assert "DELETED" in out
    assert re.search(r"Rollout rol-\w+ \(fleet, apply\): SUCCEEDED", out)
    print(f"walkthrough wall time {elapsed:.1f} s")
