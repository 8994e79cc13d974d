"""DynamoDB refuses expression placeholders that no expression of the request uses.

Why this exists: AWS answers a request whose ``ExpressionAttributeValues`` (or ``ExpressionAttributeNames``)
holds a placeholder that none of its expressions uses with ``ValidationException`` "Value provided in
ExpressionAttributeValues unused in expressions: keys: {:x}", and one that sends either map without any
expression with "ExpressionAttributeValues can only be specified when using expressions". moto 5.2.5
checks that on ``UpdateItem`` only; ``PutItem``, ``DeleteItem``, ``Query``, ``Scan``, ``GetItem`` and each
part of ``TransactWriteItems``, ``TransactGetItems`` and ``BatchGetItem`` accepted it, so a write whose
condition lost a clause (and kept its value) passed here and failed on AWS.

:func:`install` wraps those handlers of ``moto.dynamodb.responses.DynamoHandler``: before moto runs one,
the request's expressions are searched for the placeholders (a DynamoDB expression holds no string
literals, so ``:name`` and ``#name`` are always placeholders), and an unused one is refused in AWS's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from localaws.patching import Patcher

__all__ = ["check_moto_internals", "install", "unused_placeholders"]

_PATCHER = Patcher("localaws.dynamodb_expressions")
_EXPRESSIONS = (
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
    "UpdateExpression",
)
_PLACEHOLDER = re.compile(r"[:#][A-Za-z0-9_]+")
# The handlers moto does not check, and where their request's expressions are: the whole body, each
# part of a transaction's items, each table's entry of a batch read.
_WHOLE_BODY = ("put_item", "delete_item", "query", "scan", "get_item")
_TRANSACT_PARTS = ("ConditionCheck", "Put", "Delete", "Update", "Get")
_BY_PARTS = ("transact_write_items", "transact_get_items", "batch_get_item")


def unused_placeholders(request: Mapping[str, Any]) -> str | None:
    """AWS's message for the first unused placeholder map of ``request`` (one operation's parameters)."""
    used = set(_PLACEHOLDER.findall(" ".join(str(request.get(e) or "") for e in _EXPRESSIONS)))
    for kind in ("Names", "Values"):
        given = list(request.get(f"ExpressionAttribute{kind}") or {})
        if not given:
            continue
        if not any(request.get(e) for e in _EXPRESSIONS):
            return f"ExpressionAttribute{kind} can only be specified when using expressions"
        unused = [key for key in given if key not in used]
        if unused:
            return f"Value provided in ExpressionAttribute{kind} unused in expressions: keys: {{{', '.join(unused)}}}"
    return None


def _whole(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A single operation's request: its expressions are the body's."""
    return [body]


def _parts(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The operations a transaction or a batch read holds, each with its own expressions."""
    parts = [
        item[part]
        for item in body.get("TransactItems") or ()
        if isinstance(item, dict)
        for part in _TRANSACT_PARTS
        if isinstance(item.get(part), dict)
    ]
    requested = body.get("RequestItems")
    if isinstance(requested, dict):
        parts += [entry for entry in requested.values() if isinstance(entry, dict)]
    return parts


def _checking(operations: Callable[[Mapping[str, Any]], list[Mapping[str, Any]]]) -> Callable[[Any], Any]:
    """A wrapper factory for a handler whose request holds ``operations(body)``, each checked."""

    def wrap(original: Any) -> Any:
        def handler(self: Any) -> Any:
            for operation in operations(self.body):
                message = unused_placeholders(operation)
                if message is not None:
                    from moto.dynamodb.exceptions import MockValidationException

                    raise MockValidationException(message)
            return original(self)

        return handler

    return wrap


def check_moto_internals() -> None:
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.responses import DynamoHandler

    for name in (*_WHOLE_BODY, *_BY_PARTS):
        _PATCHER.expect(callable(getattr(DynamoHandler, name, None)), f"DynamoHandler.{name}")
    _PATCHER.expect(
        str(getattr(MockValidationException, "error_type", "")).endswith("ValidationException"),
        "MockValidationException is DynamoDB's ValidationException",
    )


def install() -> None:
    with _PATCHER.lock:
        check_moto_internals()
        from moto.dynamodb.responses import DynamoHandler

        for name in _WHOLE_BODY:
            _PATCHER.wrap(DynamoHandler, name, _checking(_whole))
        for name in _BY_PARTS:
            _PATCHER.wrap(DynamoHandler, name, _checking(_parts))
