"""``python -m bench.cost``: runs ``bench_cost`` and prints its result and the report."""

from __future__ import annotations

import json

from bench.cost.operations import bench_cost
from bench.cost.report import cost_report

if __name__ == "__main__":
    result = bench_cost()
    print(json.dumps(result, indent=1, default=str))
    print(cost_report(result))
