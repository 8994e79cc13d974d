"""One request at a time inside moto's backends (Lambda invocations excepted).

AWS services are safe under concurrent calls; moto's backends are not. With several Step Functions
executions running at once (each in its own thread), DynamoDB's TransactWriteItems deep-copies a
table while another thread writes to it and fails with "dictionary changed size during iteration".
This serialises every moto action behind one re-entrant lock, so the local AWS is as safe under
concurrency as the real one. Lambda actions are left out: an Invoke runs our step handler, whose
own AWS calls must get through (in server mode they arrive on another server thread).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from localaws.patching import MotoInternalsChanged

_lock = threading.RLock()
_original: Callable[..., Any] | None = None


def check_moto_internals() -> None:
    from moto.core.responses import BaseResponse

    method = _original or getattr(BaseResponse, "call_action", None)
    if method is None or list(inspect.signature(method).parameters) != ["self"]:
        raise MotoInternalsChanged(
            "moto.core.responses.BaseResponse.call_action(self) changed; update localaws.concurrency"
        )


def install() -> None:
    global _original
    if _original is not None:
        return
    check_moto_internals()
    from moto.awslambda.responses import LambdaResponse
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action
    _original = original

    def call_action(self: Any) -> Any:
        if isinstance(self, LambdaResponse):
            return original(self)
        with _lock:
            return original(self)

    setattr(BaseResponse, "call_action", call_action)  # noqa: B010 - a deliberate monkeypatch


def original_call_action() -> Callable[..., Any] | None:
    """moto's own ``BaseResponse.call_action`` once :func:`install` has wrapped it, else None."""
    return _original


def lock() -> threading.RLock:
    """The lock itself, for local AWS code that calls a moto backend directly (outside ``call_action``)."""
    return _lock
