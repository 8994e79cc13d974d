"""Section 1 of BENCHMARKS.md: the cold import of ``app`` against ``import boto3``, in fresh interpreters.

Its own module so that the runner (``bench/run.py``) only runs and writes the benchmarks.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from bench.harness import ROOT

IMPORT_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
# What a cold start of the API pays before its first answer can be validated: the import, then the
# body model of POST /deployments built (its models are deferred) and run once on a valid body.
FIRST_BODY_PROBE = (
    "import time; t = time.perf_counter(); import app; "
    "from chalicelib.api.schemas import DeploymentCreate; "
    "DeploymentCreate.model_validate({'target_id': 'tgt-0123456789abcdef01234567', 'region': 'us-east-1', "
    "'stack_name': 's', 'template_body': '{}'}); print(time.perf_counter() - t)"
)


def import_seconds(module: str) -> float:
    return probe_seconds(IMPORT_PROBE.format(module=module))


def probe_seconds(probe: str) -> float:
    """What a probe (which prints its own timing) measured, in a fresh interpreter."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    return float(out.stdout.strip())


def bench_imports(rounds: int = 21) -> dict[str, float]:
    # Bytecode first, as a warm tree has it: the probes write none (PYTHONDONTWRITEBYTECODE), so on a
    # fresh clone every `import app` would compile the project from source while boto3's is compiled.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "app.py", "chalicelib"], check=True, cwd=ROOT)
    app_times, boto_times, first_times = [], [], []
    for _ in range(rounds):
        app_times.append(import_seconds("app"))
        boto_times.append(import_seconds("boto3"))
        first_times.append(probe_seconds(FIRST_BODY_PROBE))
    app_median, boto_median = statistics.median(app_times), statistics.median(boto_times)
    first_median = statistics.median(first_times)
    return {
        "app_ms": app_median * 1000,
        "boto3_ms": boto_median * 1000,
        "ratio": app_median / boto_median,
        "first_body_ms": first_median * 1000,
        "first_body_ratio": first_median / boto_median,
        "rounds": rounds,
    }


def imports_section(imports: dict[str, float]) -> list[str]:
    return [
        "## 1. Import cost of the HTTP handler module",
        "",
        f"Median of {int(imports.get('rounds', 21))} fresh interpreters each, alternating `import app`, "
        "`import boto3` and `import app` followed by the first validation of a request body. The request "
        "and event models are built when first used (pydantic's `defer_build`), so the last row is what "
        "an API cold start pays before it can answer a POST: the import, and the one model the request "
        "needs.",
        "",
        "| module | median | ratio to `import boto3` | target |",
        "|---|---|---|---|",
        f"| `import boto3` | {imports['boto3_ms']:.0f} ms | 1.00 | |",
        f"| `import app` | {imports['app_ms']:.0f} ms | **{imports['ratio']:.2f}** | <= 1.5 |",
        *(
            [
                f"| `import app`, then POST /deployments's body model built and run once | "
                f"{imports['first_body_ms']:.0f} ms | {imports['first_body_ratio']:.2f} | |"
            ]
            if "first_body_ms" in imports
            else []
        ),
        "",
    ]
