"""The one place a botocore ClientError becomes a domain error."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.aws_errors import cancelled_in_passing, translate
from chalicelib.domain.errors import DeployerError, TransientAwsError

_DESERIALIZER = TypeDeserializer()


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def cancellation_reasons(error: ClientError) -> list[str]:
    """Why DynamoDB cancelled a transaction, item by item ("None" for an item that was not the cause)."""
    return [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons") or []]


def condition_failed(error: ClientError) -> bool:
    """A transaction refused because a condition did not hold."""
    return error_code(error) == "TransactionCanceledException" and "ConditionalCheckFailed" in (
        cancellation_reasons(error)
    )


def refused_item(error: ClientError) -> dict[str, Any] | None:
    """The item a conditional write refused with ReturnValuesOnConditionCheckFailure=ALL_OLD answered
    with, as plain values (the Table resource converts only the answers that succeeded); None when there
    was none."""
    found = cast("dict[str, Any]", error.response).get("Item")
    if not found:
        return None
    return {name: _DESERIALIZER.deserialize(value) for name, value in found.items()}


# botocore's standard retry mode: up to 3 attempts unless the client says otherwise; waits of up to
# 1, 2, 4... s (full jitter), at most 20 s.
_DEFAULT_ATTEMPTS = 3
_MAX_BACKOFF_SECONDS = 20.0


def _total_attempts(client: Any) -> int:
    retries = getattr(client.meta.config, "retries", None) or {}
    if "total_max_attempts" in retries:
        return max(1, int(retries["total_max_attempts"]))
    if "max_attempts" in retries:
        return max(1, int(retries["max_attempts"]) + 1)
    return _DEFAULT_ATTEMPTS


# Emitted on the client's event system before a cancelled transaction is sent again, with the reasons
# (``reasons``, item by item) it was cancelled for: ThrottleCounter counts the throttled ones, as it counts
# the throttles botocore retries (its ``needs-retry`` event).
TRANSACTION_RETRIED = "nexus-transaction-retried.dynamodb.TransactWriteItems"


def transact_write_items(
    client: Any,
    items: Sequence[Mapping[str, Any]],
    *,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> None:
    """TransactWriteItems, sent again while DynamoDB cancels it only in passing (an item throttled, or
    held by another transaction: ``cancelled_in_passing``), as botocore sends again any other throttled
    call: the client's attempts (``total_max_attempts``) and standard mode's backoff. botocore never
    retries a cancelled transaction, so without this a 30% throttle failed a step's attempt each time one
    of its transactions met it. A cancelled transaction wrote nothing, so sending it again is safe (its
    conditions are evaluated anew). The last refusal, or any other, is raised as botocore raised it.
    Each retry is announced (``TRANSACTION_RETRIED``) on the client's events."""
    attempts = _total_attempts(client)
    for attempt in range(1, attempts + 1):
        try:
            client.transact_write_items(TransactItems=list(items))
            return
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if not cancelled_in_passing(error_code(error), reasons) or attempt == attempts:
                raise
            client.meta.events.emit(TRANSACTION_RETRIED, reasons=reasons)
        sleep(jitter() * min(_MAX_BACKOFF_SECONDS, 2.0 ** (attempt - 1)))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Run AWS calls; re-raise their failures as domain errors that name ``operation``."""
    try:
        yield
    except ClientError as error:
        raise translate(
            error_code(error),
            error_message(error),
            operation=operation,
            cancellation_reasons=cancellation_reasons(error),
        ) from error
    except BotoCoreError as error:
        raise TransientAwsError(f"{operation} failed: {error}") from error
    except DeployerError:
        raise
