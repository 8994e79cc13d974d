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


def import_seconds(module: str) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed probe
        [sys.executable, "-c", IMPORT_PROBE.format(module=module)],
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
    app_times, boto_times = [], []
    for _ in range(rounds):
        app_times.append(import_seconds("app"))
        boto_times.append(import_seconds("boto3"))
    app_median, boto_median = statistics.median(app_times), statistics.median(boto_times)
    return {
        "app_ms": app_median * 1000,
        "boto3_ms": boto_median * 1000,
        "ratio": app_median / boto_median,
        "rounds": rounds,
    }


def imports_section(imports: dict[str, float]) -> list[str]:
    return [
        "## 1. Import cost of the HTTP handler module",
        "",
        f"Median of {int(imports.get('rounds', 21))} fresh interpreters each, alternating `import app` and "
        "`import boto3`.",
        "",
        "| module | median | ratio to `import boto3` | target |",
        "|---|---|---|---|",
        f"| `import boto3` | {imports['boto3_ms']:.0f} ms | 1.00 | |",
        f"| `import app` | {imports['app_ms']:.0f} ms | **{imports['ratio']:.2f}** | <= 1.5 |",
        "",
    ]
