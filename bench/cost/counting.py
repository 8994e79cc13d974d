"""Counting one operation: ``Counts`` (transitions, invocations, billed ms, request units, AWS calls,
events, API requests, log bytes), the ``Meter`` that fills them while the operation runs, and
``mean`` over several."""

from __future__ import annotations

import io
import math
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.cost.capacity import Capacity

# -- one operation, counted --------------------------------------------------------------------------


@dataclass
class Counts:
    transitions: int = 0
    timeouts: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    billed_ms: int = 0
    rru: float = 0.0
    wru: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    events: int = 0
    api_requests: int = 0
    log_bytes: int = 0
    # the same calls by the function that made them ("StartItem sts:AssumeRole"), and handler seconds
    by_function: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)

    def minus(self, other: Counts) -> Counts:
        return Counts(
            self.transitions - other.transitions,
            self.timeouts - other.timeouts,
            self.invocations - other.invocations,
            self.billed_ms - other.billed_ms,
            self.rru - other.rru,
            self.wru - other.wru,
            self.calls - other.calls,
            self.events - other.events,
            self.api_requests - other.api_requests,
            self.log_bytes - other.log_bytes,
        )

    def scaled(self, k: float) -> dict[str, float]:
        return {
            "transitions": self.transitions * k,
            "invocations": sum(self.invocations.values()) * k,
            "billed_ms": self.billed_ms * k,
            "rru": self.rru * k,
            "wru": self.wru * k,
            "calls": sum(self.calls.values()) * k,
            "events": self.events * k,
            "api_requests": self.api_requests * k,
            "log_bytes": self.log_bytes * k,
        }


class _CountingStream(io.TextIOBase):
    """Stands in for stdout while an operation runs: counts what the service writes there."""

    def __init__(self) -> None:
        self.chars = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.chars += len(text.encode("utf-8"))
        return len(text)


class Meter:
    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self._api = threading.local()

    @contextmanager
    def api_request(self) -> Iterator[None]:
        self._api.active = True
        try:
            yield
        finally:
            self._api.active = False

    @contextmanager
    def counting(self, counts: Counts) -> Iterator[None]:
        """Count AWS calls made by the service's code while the block runs, and its invocations."""
        from botocore.client import BaseClient

        from localaws import lambda_runner

        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        meter, lock = self, threading.Lock()
        rru, wru = self.capacity.rru, self.capacity.wru

        def counted(client: Any, operation: str, params: Any) -> Any:
            function = lambda_runner.current_function()
            if function is not None or getattr(meter._api, "active", False):
                call = f"{client.meta.service_model.service_name}:{operation}"
                with lock:
                    counts.calls[call] += 1
                    counts.by_function[f"{function or 'APIHandler'} {call}"] += 1
            return original(client, operation, params)

        import logging

        stream, stdout = _CountingStream(), sys.stdout
        package = logging.getLogger("chalicelib")  # the service's log lines, formatted as they are written
        lines = logging.StreamHandler(stream)
        lines.setFormatter(package.handlers[0].formatter)
        BaseClient._make_api_call = counted  # type: ignore[attr-defined]
        sys.stdout = stream  # the metric documents
        package.addHandler(lines)
        try:
            with lambda_runner.recording() as invocations:
                yield
        finally:
            BaseClient._make_api_call = original  # type: ignore[attr-defined]
            sys.stdout = stdout
            package.removeHandler(lines)
        for invocation in invocations:
            counts.invocations[invocation.function] += 1
            counts.seconds[invocation.function] = (
                counts.seconds.get(invocation.function, 0.0) + invocation.seconds
            )
            counts.billed_ms += math.ceil(invocation.seconds * 1000)
        counts.events += counts.invocations["StackStatusChanged"]
        counts.rru += self.capacity.rru - rru
        counts.wru += self.capacity.wru - wru
        counts.log_bytes += stream.chars


def mean(counts: list[Counts]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for one in counts:
        for key, value in one.scaled(1).items():
            totals[key] = totals.get(key, 0) + value / len(counts)
    return totals
