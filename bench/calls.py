"""Watching the service's AWS calls from botocore's side, for the benchmarks that count them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def stack_name(params: Any) -> str:
    """The stack a CloudFormation call names (its ``StackName``: a name, or a stack ARN)."""
    name = str(params.get("StackName", ""))
    return name.split(":stack/")[1].split("/")[0] if ":stack/" in name else name


@contextmanager
def observing_calls(
    observe: Callable[[str, Any], None], refused: Callable[[str, Any, Exception], None] | None = None
) -> Iterator[None]:
    """``observe(operation, params)`` before every botocore call, from any thread, while the block runs;
    ``refused(operation, params, error)`` after each that raised (once botocore's own retries ran out)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def observed(client: Any, operation: str, params: Any) -> Any:
        observe(operation, params)
        if refused is None:
            return original(client, operation, params)
        try:
            return original(client, operation, params)
        except Exception as error:
            refused(operation, params, error)
            raise

    BaseClient._make_api_call = observed  # type: ignore[attr-defined]
    try:
        yield
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
