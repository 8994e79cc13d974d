"""Traces through Powertools' Tracer (AWS X-Ray): one subsegment per handler invocation, and one per
AWS call, since the Tracer patches botocore (aws-xray-sdk) for every client of the process.

``XRayTracing`` is built only when tracing is on (``POWERTOOLS_TRACE_DISABLED`` unset or false, as
the cloud template leaves it): local mode and the tests set it to true and get ``NoTracing``, which
imports nothing. Even when on, the Tracer turns itself off outside Lambda (no ``LAMBDA_TASK_ROOT``),
so a run outside Lambda never tries to reach an X-Ray daemon.

Neither events nor answers are recorded in the traces (they hold tenant data); only names,
annotations (function, cold start, service) and, for a failed invocation, the exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class NoTracing:
    def trace(self, function: str, cold_start: bool, call: Callable[[], T]) -> T:
        return call()


class XRayTracing:
    def __init__(self, service: str) -> None:
        from aws_lambda_powertools import Tracer

        # Only botocore: the adapters' AWS clients. auto_patch would patch every library it knows.
        self._tracer = Tracer(service=service, patch_modules=["botocore"])
        self._service = service

    @property
    def disabled(self) -> bool:
        return bool(self._tracer.disabled)

    def trace(self, function: str, cold_start: bool, call: Callable[[], T]) -> T:
        if self._tracer.disabled:
            return call()
        with self._tracer.provider.in_subsegment(f"## {function}") as subsegment:
            subsegment.put_annotation(key="ColdStart", value=cold_start)
            subsegment.put_annotation(key="Service", value=self._service)
            subsegment.put_annotation(key="Function", value=function)
            return call()
