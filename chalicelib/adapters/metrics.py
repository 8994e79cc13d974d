"""The ``Metrics`` port: CloudWatch embedded metric format through Powertools, or a list in memory.

``EmfMetrics`` builds each data point's EMF document with Powertools' own EMF provider (the one
behind ``aws_lambda_powertools.Metrics``) and writes it as one line on stdout, which Lambda sends to
CloudWatch Logs, where CloudWatch turns it into metrics. One document per data point, written at
once, rather than Powertools' ``Metrics`` (whose metric set is shared by every instance in the
process and flushed at the end of an invocation): local mode runs every function in one process, on
many threads at once, and a shared set would mix their data points and dimensions.

``InMemoryMetrics`` keeps the data points in a list, for the service tests.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from typing import IO

from chalicelib.domain.metrics import SERVICE_DIMENSION, Metric

_WRITE_LOCK = threading.Lock()  # every EmfMetrics of the process writes to the same stdout


class EmfMetrics:
    def __init__(self, namespace: str, service: str, stream: IO[str] | None = None) -> None:
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
            AmazonCloudWatchEMFProvider,
        )

        self._provider = AmazonCloudWatchEMFProvider
        self._namespace = namespace
        self._service = service
        self._stream = stream  # None: sys.stdout as it is at each write (tests capture it)

    def document(self, metric: Metric, value: float = 1.0, **dimensions: str) -> dict[str, object]:
        """The EMF document of one data point: under ``service`` alone and under its own dimensions."""
        metric.check(dimensions)
        spec = metric.spec
        emf = self._provider(
            namespace=self._namespace,
            service=self._service,
            default_dimensions={SERVICE_DIMENSION: self._service},
        )
        emf.add_metric(name=spec.name, unit=spec.unit, value=value)
        if dimensions:
            emf.add_dimensions(**dimensions)
        return dict(emf.serialize_metric_set())

    def add(self, metric: Metric, value: float = 1.0, **dimensions: str) -> None:
        line = json.dumps(self.document(metric, value, **dimensions), separators=(",", ":")) + "\n"
        stream = self._stream or sys.stdout
        with _WRITE_LOCK:  # one write per document: lines from concurrent threads never interleave
            stream.write(line)
            stream.flush()


@dataclass
class InMemoryMetrics:
    points: list[tuple[str, float, dict[str, str]]] = field(default_factory=list)

    def add(self, metric: Metric, value: float = 1.0, **dimensions: str) -> None:
        metric.check(dimensions)
        self.points.append((metric.spec.name, value, dict(dimensions)))

    def total(self, metric: Metric, **dimensions: str) -> float:
        """The sum of ``metric``'s data points whose dimensions include ``dimensions``."""
        return sum(
            value
            for name, value, dims in self.points
            if name == metric.spec.name and dimensions.items() <= dims.items()
        )
