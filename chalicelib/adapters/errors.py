"""The one place a botocore ClientError becomes a domain error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.aws_errors import translate
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
