"""DynamoDB transactions whose cost does not grow with the size of the table.

Why this exists: moto 5.2.5's ``DynamoDBBackend.transact_write_items`` makes its rollback copy with
``copy.deepcopy(self.tables[name])`` for every table a transaction names, before it runs. Every
``TransactWriteItems`` therefore costs time proportional to the whole table, and the service's one
table grows with the fleet (targets, deployments, operations, events, rollout items): N deployments
or rollout items do O(N) transactions over an O(N) table, O(N^2) in all. Measured here, a 3-item
transaction cost 20 ms of CPU against a table of 100 items, 150 ms at 1,000 and 2.2 s at 15,000 (a
1,000-target fleet's table); with this patch, 3.5 ms at every size. moto's copy also skips a table
named only by its ARN, so such a transaction was not rolled back at all, and its rollback swapped
new ``Table`` objects into the backend.

:func:`install` replaces that one method with the same algorithm, step for step (same validation
order, same per-item error reasons, the same exceptions), except for the rollback: before an
operation touches an item, the item's before-image (a deep copy of that one item, or "absent") is
journalled, and a cancelled transaction puts exactly those items back, in the same ``Table``
objects, and drops the stream records the transaction added. All or nothing, as on AWS, at a cost
proportional to the items the transaction names.

Everything moto-internal this relies on is checked by :func:`check_moto_internals`, which
:func:`install` calls first, including a hash of moto's own method: since this replaces its body,
any change to it upstream must be looked at, so a moto upgrade fails loudly here.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

from localaws.patching import MotoInternalsChanged, missing_internals, source, source_digest

__all__ = ["check_moto_internals", "install"]

# sha256 of inspect.getsource(DynamoDBBackend.transact_write_items) in moto 5.2.5.
_ORIGINAL_SOURCE_SHA256 = "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4"

# (module, dotted attribute, leading parameter names or None for "must exist")
_REQUIRED_INTERNALS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("moto.dynamodb.models", "DynamoDBBackend.transact_write_items", ("self", "transact_items")),
    ("moto.dynamodb.models", "DynamoDBBackend.get_table", ("self", "table_name")),
    ("moto.dynamodb.models", "DynamoDBBackend.get_keys_value", ("self", "table", "keys")),
    ("moto.dynamodb.models", "DynamoDBBackend.get_item", ("self", "table_name", "keys")),
    (
        "moto.dynamodb.models",
        "DynamoDBBackend.put_item",
        (
            "self",
            "table_name",
            "item_attrs",
            "expected",
            "condition_expression",
            "expression_attribute_names",
            "expression_attribute_values",
        ),
    ),
    (
        "moto.dynamodb.models",
        "DynamoDBBackend.delete_item",
        (
            "self",
            "table_name",
            "key",
            "expression_attribute_names",
            "expression_attribute_values",
            "condition_expression",
        ),
    ),
    (
        "moto.dynamodb.models",
        "DynamoDBBackend.update_item",
        (
            "self",
            "table_name",
            "key",
            "update_expression",
            "expression_attribute_names",
            "expression_attribute_values",
            "attribute_updates",
            "expected",
            "condition_expression",
        ),
    ),
    ("moto.dynamodb.models.table", "Table.get_item", ("self", "hash_key", "range_key")),
    ("moto.dynamodb.comparisons", "get_filter_expression", ("expr", "names", "values")),
    ("moto.dynamodb.exceptions", "ConditionalCheckFailed", None),
    ("moto.dynamodb.exceptions", "MockValidationException", None),
    ("moto.dynamodb.exceptions", "MultipleTransactionsException", None),
    ("moto.dynamodb.exceptions", "TooManyTransactionsException", None),
    ("moto.dynamodb.exceptions", "TransactionCanceledException", None),
    ("moto.dynamodb.exceptions", "TransactWriteSingleOpException", None),
    ("moto.dynamodb.models.dynamo_type", "Item.__deepcopy__", ("self", "memo")),
)
# Instance attributes the journal reads and writes, all set in Table.__init__ and StreamShard.__init__.
_TABLE_ATTRIBUTES = ("items", "hash_key_attr", "range_key_attr", "stream_shard")

_lock = threading.Lock()
_original: Any = None


def check_moto_internals() -> None:
    """Fail loudly when a moto internal this module replaces or calls has moved or changed."""
    problems = missing_internals(
        _REQUIRED_INTERNALS, {"DynamoDBBackend.transact_write_items": _original} if _original else None
    )
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard, Table

    original = _original or DynamoDBBackend.transact_write_items
    if source_digest(original) != _ORIGINAL_SOURCE_SHA256:
        problems.append(
            "DynamoDBBackend.transact_write_items changed upstream: re-compare it with this module"
        )
    table_init = source(Table.__init__)
    problems.extend(f"Table.{name} is gone" for name in _TABLE_ATTRIBUTES if f"self.{name}" not in table_init)
    if "self.items" not in source(StreamShard.__init__):
        problems.append("StreamShard.items is gone")
    if problems:
        raise MotoInternalsChanged(
            "localaws.dynamodb relies on moto internals that changed (pin moto==5.2.5 or update the patch): "
            + "; ".join(problems)
        )


# ------------------------------------------------------------------------------------------- journal


@dataclass
class _BeforeImage:
    table: Any
    hash_key: Any
    range_key: Any
    item: Any  # a deep copy of the item as it was, or None when it did not exist
    partition_existed: bool


class _Journal:
    """Before-images of the items one transaction touches, and how long each table's stream was."""

    def __init__(self) -> None:
        self._images: list[_BeforeImage] = []
        self._stream_lengths: dict[int, tuple[Any, int]] = {}

    def remember(self, backend: Any, table_name: str, key: dict[str, Any]) -> None:
        table = backend.get_table(table_name)
        hash_key, range_key = backend.get_keys_value(table, key)
        partition_existed = hash_key in table.items
        current = table.get_item(hash_key, range_key)
        self._images.append(
            _BeforeImage(table, hash_key, range_key, copy.deepcopy(current), partition_existed)
        )
        shard = table.stream_shard
        if shard is not None and id(table) not in self._stream_lengths:
            self._stream_lengths[id(table)] = (shard, len(shard.items))

    def restore(self) -> None:
        for image in reversed(self._images):
            items = image.table.items
            if image.table.range_key_attr is None:
                if image.item is None:
                    items.pop(image.hash_key, None)
                else:
                    items[image.hash_key] = image.item
                continue
            if image.item is not None:
                items[image.hash_key][image.range_key] = image.item
                continue
            partition = items.get(image.hash_key)
            if partition is not None:
                partition.pop(image.range_key, None)
                if not partition and not image.partition_existed:
                    del items[image.hash_key]
        for shard, length in self._stream_lengths.values():
            if len(shard.items) >= length:  # else a Lambda event source mapping already took them
                del shard.items[length:]


# ------------------------------------------------------------------------------- the replacement


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's algorithm, with a per-item journal instead of a copy of every table it names."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    journal = _Journal()
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any] | None] | tuple[None, None, None]] = []
    try:
        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition_expression = op.get("ConditionExpression")
                expression_attribute_names = op.get("ExpressionAttributeNames")
                expression_attribute_values = op.get("ExpressionAttributeValues")
                return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")
                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                check_unicity(table_name, key)
                journal.remember(self, table_name, key)

                current = self.get_item(table_name, key)
                if condition_expression is not None:
                    condition_op = get_filter_expression(
                        condition_expression, expression_attribute_names, expression_attribute_values
                    )
                    if not condition_op.expr(current):
                        if return_values_on_condition_check_failure == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)

                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        condition_expression=condition_expression,
                        expression_attribute_names=expression_attribute_names,
                        expression_attribute_values=expression_attribute_values,
                    )
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise  # moto: roll back and re-raise as is (below)
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 - moto records any other failure as the item's reason
                errors.append((type(e).__name__, str(e), original_item))
    except BaseException:
        journal.restore()
        raise
    if any(code is not None for code, _, _ in errors):
        journal.restore()
        raise TransactionCanceledException(errors)


def install() -> None:
    global _original
    with _lock:
        if _original is not None:
            return
        check_moto_internals()
        from moto.dynamodb.models import DynamoDBBackend

        _original = DynamoDBBackend.transact_write_items
        setattr(DynamoDBBackend, "transact_write_items", _transact_write_items)  # noqa: B010 - a deliberate monkeypatch
