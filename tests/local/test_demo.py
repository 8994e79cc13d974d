"""``make demo`` end to end, with instant stacks: every step must behave, or it exits non-zero.

The demo checks each step itself (DescribeStacks in the target accounts, the API's answers) and exits
1 when one does not behave; the assertions here pin what a reader of its output is promised: the
fleet rollout's plan, its canary wave ending before the rest start, and one target SKIPPED because
it already had the rollout's exact configuration.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_passes() -> None:
    env = {**os.environ, "NEXUS_LOCAL_STACK_SECONDS": "0", "COLUMNS": "140"}
    result = subprocess.run(
        [sys.executable, "-m", "localaws.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    assert "Demo passed" in out

    # The rollout part: a plan, then its apply, canary first.
    plan = out[out.index("11. Plan a rollout") : out.index("12. Apply the plan")]
    apply = out[out.index("12. Apply the plan") : out.index("13. Stop the service")]
    assert re.search(r"333333333333/us-east-1 \(canary\): 1 change", plan), plan
    assert re.search(r"Modify\s+WorkQueue\s+AWS::SQS::Queue", plan), plan
    assert "111111111111/us-east-1 (all): no changes" in plan, plan
    assert len(re.findall(r"Add\s+\w+", plan)) == 3, plan
    assert "fleet: 3 items in 3 accounts:" in plan, plan

    assert apply.index("wave canary ENDED") < apply.index("wave all    started"), apply
    assert "rollout SUCCEEDED" in apply, apply
    statuses = dict(re.findall(r"^  (\d{12})/us-east-1  (\w+)\s+dep-", apply, re.MULTILINE))
    assert statuses == {
        "333333333333": "SUCCEEDED",
        "111111111111": "SKIPPED",
        "444444444444": "SUCCEEDED",
    }, apply
    for account in ("111111111111", "333333333333", "444444444444"):
        assert re.search(rf"DescribeStacks in {account}: demo-fleet \w+_COMPLETE", apply), apply
