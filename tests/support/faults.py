"""One call of a running service's own function made to fail once, as AWS makes it fail.

For the tests of what a step, a handler or a route does when AWS still refuses after botocore's own
retries: the test patches the public method on its class (``monkeypatch.setattr``), which reaches every
function's instance in the local AWS's one process, so ``key`` picks out the call meant; the first call
for each key raises instead of running (``key`` answering None lets a call through untouched).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import TransientAwsError


def throttle() -> TransientAwsError:
    """What an adapter raises when AWS still throttles after botocore's retries."""
    return TransientAwsError("the call failed: ThrottlingException: Rate exceeded")


def throttling_exception() -> ClientError:
    """What botocore raises for a throttled call, before an adapter translates it."""
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "call")


def refused_once(
    original: Callable[..., Any],
    key: Callable[..., Hashable | None],
    error: Callable[[], Exception] = throttle,
) -> tuple[Callable[..., Any], list[Hashable]]:
    """``original``, whose first call for each ``key(*args, **kwargs)`` raises ``error()``; and the keys
    refused so far, in order. Two threads calling with one key at once: only one is refused."""
    refused: list[Hashable] = []
    lock = threading.Lock()

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        which = key(*args, **kwargs)
        if which is not None:
            with lock:
                first = which not in refused
                if first:
                    refused.append(which)
            if first:
                raise error()
        return original(*args, **kwargs)

    return wrapped, refused
