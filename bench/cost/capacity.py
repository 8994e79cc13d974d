"""DynamoDB capacity: the read and write request units of every call, computed from item sizes as
on-demand bills them (``Capacity``, fed by botocore events)."""

from __future__ import annotations

import json
import math
import threading
from typing import Any

# -- DynamoDB capacity, from item sizes ------------------------------------------------------------

WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
READS = {"GetItem", "Query", "Scan"}


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


class Capacity:
    """DynamoDB request units of every call made through one session's clients (botocore events)."""

    def __init__(self, account: str, region: str) -> None:
        self._account, self._region = account, region
        self._pending = threading.local()
        self.rru = 0.0
        self.wru = 0.0
        self._lock = threading.Lock()

    def observe(self, session: Any) -> None:
        session.events.register("before-call.dynamodb", self._before)
        session.events.register("after-call.dynamodb", self._after)

    def _table(self, name: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self._account][self._region].get_table(name)

    def _size(self, table_name: str, key: dict[str, Any]) -> int:
        from moto.dynamodb.models import dynamodb_backends

        item = dynamodb_backends[self._account][self._region].get_item(table_name, key)
        return int(item.size()) if item is not None else 0

    def _before(self, model: Any, params: Any, **_: Any) -> None:
        body = json.loads(params.get("body") or b"{}")
        name = model.name
        before: list[tuple[str, dict[str, Any], int, int]] = []  # table, key, size before, factor
        if name in WRITES:
            before.append((body["TableName"], body["Key"] if "Key" in body else self._key(body), 0, 1))
        elif name == "TransactWriteItems":
            for entry in body["TransactItems"]:
                ((_kind, spec),) = entry.items()
                key = spec["Key"] if "Key" in spec else self._key(spec)
                before.append((spec["TableName"], key, 0, 2))
        elif name == "BatchWriteItem":
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    ((_kind, spec),) = request.items()
                    before.append(
                        (
                            table,
                            spec["Key"] if "Key" in spec else self._key({**spec, "TableName": table}),
                            0,
                            1,
                        )
                    )
        self._pending.entries = [(t, k, self._size(t, k), f) for t, k, _, f in before]
        self._pending.body = body

    def _key(self, spec: dict[str, Any]) -> dict[str, Any]:
        table = self._table(spec["TableName"])
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        return {n: spec["Item"][n] for n in names}

    def _after(self, model: Any, parsed: Any, **_: Any) -> None:
        name = model.name
        body = getattr(self._pending, "body", {})
        entries = getattr(self._pending, "entries", [])
        wru = sum(f * _units(max(old, self._size(t, k)), 1024) for t, k, old, f in entries)
        rru = 0.0
        if name in READS:
            half = 1 if body.get("ConsistentRead") else 0.5
            if name == "GetItem":
                size = self._item_size(parsed.get("Item"))
            else:
                size = sum(self._item_size(i) for i in parsed.get("Items", []))
            rru = half * _units(size, 4096)
        with self._lock:
            self.wru += wru
            self.rru += rru

    @staticmethod
    def _item_size(item: Any) -> int:
        if not item:
            return 0
        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.models.utilities import bytesize

        return sum(bytesize(name) + DynamoType(value).size() for name, value in item.items())
