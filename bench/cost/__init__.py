"""Benchmark 6: what one operation costs, counted from real runs on the local AWS and priced at AWS's
list prices (section 8 of BENCHMARKS.md).

Each operation (a create, an update, a delete of one stack) runs alone, through the HTTP API and the
real workflow, with completion by stack events (the default), and is counted from start to end:

* state transitions: the states entered, from its execution's history;
* Lambda invocations and their billed duration: each handler's wall time in the local Lambda runner
  (localaws/lambda_runner.py), rounded up to the millisecond as Lambda bills, at the configured
  memory (.chalice/config.json); plus the API request's own invocation of the API handler;
* DynamoDB read and write units, computed from item sizes as on-demand bills them (reads: 4 KB,
  halved when eventually consistent; writes: 1 KB, the larger of the item before and after;
  transactions: twice), the sizes read from the local DynamoDB itself;
* AWS API calls by service, made by the service's own code (the handlers and the API request), not
  by AWS calling itself (Step Functions invoking a Lambda task);
* EventBridge events: the target account's stack events forwarded to the service's bus;
* log bytes: the functions' log lines and metric documents (CloudWatch Logs ingestion).

A wait for a stack event that times out (the default wait is 600 s) costs one more reconcile and one
more wait. That increment is measured on its own: a create whose stack outlasts several short waits,
minus a create whose event came first, divided by the number of waits that timed out. An operation
on a stack of duration ``d`` then costs the base plus ``ceil(d / 600) - 1`` such increments (the
event ends the last wait): 0 for 5 s and 10 min stacks, 5 for 1 h.

The package: ``pricing`` (list prices, cost per 1,000 operations), ``capacity`` (DynamoDB units),
``counting`` (``Counts``, ``Meter``), ``operations`` (the counted runs, ``bench_cost``), ``rollout``
(``measure_rollout``) and ``report`` (``cost_report``). Every name is re-exported here
(``from bench.cost import bench_cost``); ``python -m bench.cost`` prints the result and the report.
"""

from bench.cost.capacity import READS, WRITES, Capacity
from bench.cost.capacity import _units as _units
from bench.cost.counting import Counts, Meter, mean
from bench.cost.counting import _CountingStream as _CountingStream
from bench.cost.operations import QUEUE, TARGET_ACCOUNT, TWO_QUEUES, bench_cost, run_operations
from bench.cost.operations import _history as _history
from bench.cost.operations import _request as _request
from bench.cost.pricing import (
    DURATIONS,
    EVENT_TIMEOUT_SECONDS,
    PRICE_PAGES,
    PRICES,
    ROOT,
    at_duration,
    cost_per_1000,
    memory_mb,
)
from bench.cost.report import cost_report
from bench.cost.rollout import (
    END_FUNCTIONS,
    MAP_END_STATES,
    MAP_START_STATES,
    START_FUNCTIONS,
    measure_rollout,
)

__all__ = [
    "DURATIONS",
    "END_FUNCTIONS",
    "EVENT_TIMEOUT_SECONDS",
    "MAP_END_STATES",
    "MAP_START_STATES",
    "PRICES",
    "PRICE_PAGES",
    "QUEUE",
    "READS",
    "ROOT",
    "START_FUNCTIONS",
    "TARGET_ACCOUNT",
    "TWO_QUEUES",
    "WRITES",
    "Capacity",
    "Counts",
    "Meter",
    "at_duration",
    "bench_cost",
    "cost_per_1000",
    "cost_report",
    "mean",
    "measure_rollout",
    "memory_mb",
    "run_operations",
]
