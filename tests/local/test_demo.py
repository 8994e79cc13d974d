"""``make demo`` end to end, with instant stacks: every step must behave, or it exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_passes() -> None:
    env = {**os.environ, "NEXUS_LOCAL_STACK_SECONDS": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "localaws.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Demo passed" in result.stdout
