"""One call of a running service's own function made to fail once, as AWS makes it fail.

For the tests of what a step, a handler or a route does when AWS still refuses after botocore's own
retries: the function is swapped on the object the service holds, and the first call for each ``key``
raises instead of running (``key`` answering None lets a call through untouched).
"""

from __future__ import annotations

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
    key: Callable[..., Hashable | None] = lambda *args, **kwargs: "first",
    error: Callable[[], Exception] = throttle,
) -> tuple[Callable[..., Any], list[Hashable]]:
    """``original``, whose first call for each ``key(*args, **kwargs)`` raises ``error()``; and the keys
    refused so far, in order."""
    refused: list[Hashable] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        which = key(*args, **kwargs)
        if which is not None and which not in refused:
            refused.append(which)
            raise error()
        return original(*args, **kwargs)

    return wrapped, refused
