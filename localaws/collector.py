"""Python's cyclic garbage collector, tuned for a process that holds the local AWS.

Such a process holds moto's models, botocore's service models and the app: about 390,000 objects that
the collector walks on every full collection. Python's default thresholds (700, 10, 10) start one after
every 100 young collections (70,000 allocations) once enough has survived, and one deployment through
the local AWS allocates millions. In the fan-out benchmark (N = 1,000, BENCHMARKS.md section 5, with
Python's defaults) the collector took 0.047 s of the rollout's 0.287 s of CPU per item and 0.045 s of
the baseline's 0.256 s. Deploying the service into a fresh local AWS, which every test does, took
0.77 s of CPU (median of 6) and 0.39 s with the collector off, before the setup itself was cut
(localaws/sessions.py, actions.py, kms.py: 0.49 s to about 0.28 s with this setting, median of 10,
alternating rounds on a loaded machine). Observations from timed runs, one each,
not a benchmark: on 43 API tests (one worker) (20000, 20, 20) took the CPU from 46.7 s to 35.4 s and
the peak RSS from 389 MB to 837 MB; the whole suite's CPU went from 867 s to 695 s (three workers: about
1.3 GB more memory in all, of the machine's 24 GiB). Nothing is left uncollected: the same collector
runs, less often, so the process holds more garbage between runs.

Local mode (``localaws/run.py``) and the test processes (tests/conftest.py) call :func:`collect_less_often`
as they start; a library never changes it behind its caller, and the benchmarks keep Python's defaults
so that their figures stay comparable from run to run.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 20)


def collect_less_often() -> None:
    gc.set_threshold(*THRESHOLDS)
