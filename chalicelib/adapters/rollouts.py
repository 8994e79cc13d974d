"""Rollouts in the service's one DynamoDB table, beside the records of ``adapters/dynamodb/``.

    pk                   sk                    what
    TENANT#<tenant>      ROLLOUT#<id>          a rollout: its waves, progress, and two counters
    ROLLOUT#<id>         SPEC                  the template, parameters and tags every item deploys
    ROLLOUT#<id>         ITEM#<index:05d>      one (target, region) item and its deployment
    ROLLOUT#<id>         NOTICE#<attempt>#<st> the claim to announce one status change (see below)

Why the rollout record is updated field by field rather than put whole: three writers share it.
The workflow's steps move its progress (``data``), items that fail ``ADD`` one to ``failed`` in the
same transaction that ends them (so a step retried by Lambda cannot count a failure twice), and
``POST /rollouts/{id}/cancel`` sets ``cancel_requested`` while the workflow runs. A whole-item put
by one would erase the others' writes.

Why a notice is a record of its own: a status change is announced by whoever first *creates* its
``NOTICE#`` record (a conditional PutItem), so a step that Lambda retries after the message went out
finds the claim taken and sends nothing, while a retry after a lost announcement still sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, ConditionBase
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb import DynamoDeploymentStore, SharedTable, query_page
from chalicelib.adapters.errors import (
    aws_call,
    condition_failed,
    error_code,
    refused_item,
    transact_write_items,
)
from chalicelib.domain.automation import Notifications
from chalicelib.domain.model import ErrorInfo, utc_now
from chalicelib.domain.rollouts import (
    ENDED_ITEM,
    ItemRef,
    ItemStatus,
    Rollout,
    RolloutFilter,
    RolloutItem,
    RolloutMode,
    RolloutSpec,
    RolloutStatus,
    Strategy,
    Wave,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

# Items per TransactWriteItems: AWS allows 100 since 2022, the local AWS (moto 5.2.5) the former 25;
# 25 works on both and still ends 2,000 items in 80 calls.
TRANSACTION_ITEMS = 25


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back into ints (every number stored here is an integer)."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _rollout_key(tenant_id: str, rollout_id: str) -> dict[str, str]:
    return {"pk": f"TENANT#{tenant_id}", "sk": f"ROLLOUT#{rollout_id}"}


# What a read of a rollout record returns: all but ``targets``, which only the listing's filter needs
# (up to MAX_ROLLOUT_ITEMS ids, tens of KB: the bulk of the record, and StartItem reads it per item).
_ROLLOUT_FIELDS = (
    "pk",
    "sk",
    "tenant_id",
    "rollout_id",
    "status",
    "updated_at",
    "data",
    "failed",
    "cancel_requested",
    "pause_requested",
)
# An item's fields (``item_to_record`` keeps each RolloutItem field under its own name; the rollout id is
# in the key) but its ``task_token``: StartItem reads the item PENDING, and the start writes the token of
# its own task.
_ITEM_FIELDS = (
    *(f.name for f in fields(RolloutItem) if f.name not in ("rollout_id", "task_token")),
    "kind",
)
# StartItem's read of an item and its rollout (one BatchGetItem, one projection for both records).
_ITEM_AND_ROLLOUT_FIELDS = tuple(dict.fromkeys(_ROLLOUT_FIELDS + _ITEM_FIELDS))


def _projection(fields: tuple[str, ...]) -> dict[str, Any]:
    """A read of ``fields``, a placeholder for every name (several, such as index, region, status, data
    and error, are reserved words). A new dict per request: boto3's condition builder may add its
    placeholders to ExpressionAttributeNames."""
    names = {f"#f{n}": field for n, field in enumerate(fields)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def _rollout_read() -> dict[str, Any]:
    return _projection(_ROLLOUT_FIELDS)


def _item_and_rollout_read() -> dict[str, Any]:
    return _projection(_ITEM_AND_ROLLOUT_FIELDS)


def _targets_field(target_ids: set[str]) -> str:
    """The rollout record's ``targets``; of one id, the substring that matches exactly that id."""
    return "," + ",".join(sorted(target_ids)) + ","


def _item_key(rollout_id: str, index: int) -> dict[str, str]:
    return {"pk": f"ROLLOUT#{rollout_id}", "sk": f"ITEM#{index:05d}"}


def rollout_data(rollout: Rollout) -> dict[str, Any]:
    strategy = rollout.strategy
    return {
        "stack_name": rollout.stack_name,
        "mode": rollout.mode.value,
        "strategy": {
            "canary": strategy.canary,
            "max_concurrent": strategy.max_concurrent,
            "failure_tolerance": strategy.failure_tolerance,
            "region_order": list(strategy.region_order) if strategy.region_order is not None else None,
        },
        "waves": [[w.name, w.first, w.end] for w in rollout.waves],
        "item_count": rollout.item_count,
        "created_at": rollout.created_at,
        "next_wave": rollout.next_wave,
        "running_wave": rollout.running_wave,
        "attempt": rollout.attempt,
        "accepted_failures": rollout.accepted_failures,
        "planned": rollout.planned,
        "error": rollout.error.as_dict() if rollout.error else None,
        # Only the topic, the URL and the secret's *name* (Notifications never holds the secret).
        "notifications": rollout.notifications.as_item() if rollout.notifications else None,
    }


def rollout_from_item(item: dict[str, Any]) -> Rollout:
    data = _plain(item["data"])
    strategy = data["strategy"]
    error = data.get("error")
    return Rollout(
        tenant_id=str(item["tenant_id"]),
        rollout_id=str(item["rollout_id"]),
        stack_name=str(data["stack_name"]),
        mode=RolloutMode(data["mode"]),
        strategy=Strategy(
            canary=int(strategy["canary"]),
            max_concurrent=strategy["max_concurrent"],
            failure_tolerance=strategy["failure_tolerance"],
            region_order=tuple(strategy["region_order"]) if strategy["region_order"] is not None else None,
        ),
        status=RolloutStatus(item["status"]),
        waves=tuple(
            Wave(n, str(name), int(first), int(end)) for n, (name, first, end) in enumerate(data["waves"])
        ),
        item_count=int(data["item_count"]),
        created_at=str(data["created_at"]),
        updated_at=str(item["updated_at"]),
        next_wave=int(data["next_wave"]),
        running_wave=None if data.get("running_wave") is None else int(data["running_wave"]),
        attempt=int(data["attempt"]),
        failed=int(_plain(item.get("failed", 0))),
        accepted_failures=int(data["accepted_failures"]),
        cancel_requested=bool(item.get("cancel_requested", False)),
        pause_requested=bool(item.get("pause_requested", False)),
        planned=bool(data.get("planned", False)),
        error=ErrorInfo(str(error["code"]), str(error["message"]), str(error["hint"])) if error else None,
        notifications=Notifications.from_item(data.get("notifications")),
    )


def item_to_record(item: RolloutItem) -> dict[str, Any]:
    return {
        **_item_key(item.rollout_id, item.index),
        "kind": "rollout_item",
        "index": item.index,
        "target_id": item.target_id,
        "account_id": item.account_id,
        "region": item.region,
        "wave": item.wave,
        "status": item.status.value,
        "deployment_id": item.deployment_id,
        "operation_id": item.operation_id,
        "error": item.error,
        "changes": item.changes,
        "updated_at": item.updated_at,
        "start_attempted_at": item.start_attempted_at,
        "task_token": item.task_token,
    }


def item_from_record(rollout_id: str, record: dict[str, Any]) -> RolloutItem:
    return RolloutItem(
        rollout_id=rollout_id,
        index=int(_plain(record["index"])),
        target_id=str(record["target_id"]),
        account_id=str(record["account_id"]),
        region=str(record["region"]),
        wave=int(_plain(record["wave"])),
        status=ItemStatus(record["status"]),
        deployment_id=record.get("deployment_id"),
        operation_id=record.get("operation_id"),
        error=_plain(record["error"]) if record.get("error") else None,
        changes=_plain(record["changes"]) if record.get("changes") is not None else None,
        updated_at=str(record.get("updated_at") or ""),
        start_attempted_at=str(record["start_attempted_at"]) if record.get("start_attempted_at") else None,
        task_token=str(record["task_token"]) if record.get("task_token") else None,
    )


class DynamoRolloutStore:
    """Implements RolloutStore (``chalicelib/service/ports.py``)."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self._name = table.name
        # The deployments' own adapter answers which deployment holds a stack (its key layout stays there).
        self._deployments = DynamoDeploymentStore(SharedTable(table))

    def create_rollout(self, rollout: Rollout, items: list[RolloutItem], spec: RolloutSpec) -> None:
        with aws_call("BatchWriteItem"), self._table.batch_writer() as batch:
            batch.put_item(
                Item={
                    "pk": f"ROLLOUT#{rollout.rollout_id}",
                    "sk": "SPEC",
                    "kind": "rollout_spec",
                    "stack_name": spec.stack_name,
                    "template_body": spec.template_body,
                    "parameters": dict(spec.parameters),
                    "tags": dict(spec.tags),
                }
            )
            for item in items:
                batch.put_item(Item=item_to_record(item))
        # The rollout record last: it is what makes the rollout visible, so it never names missing items.
        with aws_call("PutItem"):
            self._table.put_item(
                Item={
                    **_rollout_key(rollout.tenant_id, rollout.rollout_id),
                    "kind": "rollout",
                    "tenant_id": rollout.tenant_id,
                    "rollout_id": rollout.rollout_id,
                    "status": rollout.status.value,
                    "updated_at": rollout.updated_at,
                    "data": rollout_data(rollout),
                    "failed": 0,
                    "cancel_requested": False,
                    "pause_requested": False,
                    # For GET /rollouts?target_id=: the distinct targets of its items, as one string
                    # (",tgt-1,tgt-2,"), not a list: a read of a 2,000-string list costs the local
                    # DynamoDB 140 ms of CPU, one string 2 ms (and the ids hold no comma).
                    "targets": _targets_field({item.target_id for item in items}),
                }
            )

    def get_rollout(self, tenant_id: str, rollout_id: str) -> Rollout | None:
        with aws_call("GetItem"):
            found = self._table.get_item(
                Key=_rollout_key(tenant_id, rollout_id), ConsistentRead=True, **_rollout_read()
            ).get("Item")
        return rollout_from_item(dict(found)) if found else None

    def list_rollouts(
        self, tenant_id: str, filters: RolloutFilter, *, limit: int, next_token: str | None
    ) -> tuple[list[Rollout], str | None]:
        condition: ConditionBase | None = None
        for one in (
            Attr("status").eq(filters.status.value) if filters.status is not None else None,
            Attr("data.stack_name").eq(filters.stack_name) if filters.stack_name is not None else None,
            # ``target_ids``: the list records written before ``targets`` hold.
            Attr("targets").contains(_targets_field({filters.target_id}))
            | Attr("target_ids").contains(filters.target_id)
            if filters.target_id is not None
            else None,
        ):
            if one is not None:
                condition = one if condition is None else condition & one
        items, token = query_page(
            self._table, f"TENANT#{tenant_id}", "ROLLOUT#", limit, next_token, condition, _rollout_read()
        )
        return [rollout_from_item(item) for item in items], token

    def save_rollout(self, rollout: Rollout, *, pause_spent: bool = False) -> None:
        """Write the rollout's progress; leaves ``failed``, ``cancel_requested`` and ``pause_requested``
        alone, but with ``pause_spent`` clears ``pause_requested`` in the same write."""
        values: dict[str, Any] = {
            ":d": rollout_data(rollout),
            ":s": rollout.status.value,
            ":u": rollout.updated_at,
        }
        expression = "SET #d = :d, #s = :s, updated_at = :u"
        if pause_spent:
            expression += ", pause_requested = :no"
            values[":no"] = False
        with aws_call("UpdateItem"):
            self._table.update_item(
                Key=_rollout_key(rollout.tenant_id, rollout.rollout_id),
                UpdateExpression=expression,
                ExpressionAttributeNames={"#d": "data", "#s": "status"},
                ExpressionAttributeValues=values,
            )

    def request_cancel(self, tenant_id: str, rollout_id: str) -> None:
        with aws_call("UpdateItem"):
            self._table.update_item(
                Key=_rollout_key(tenant_id, rollout_id),
                UpdateExpression="SET cancel_requested = :yes",
                ExpressionAttributeValues={":yes": True},
            )

    def request_pause(self, tenant_id: str, rollout_id: str, requested: bool) -> None:
        with aws_call("UpdateItem"):
            self._table.update_item(
                Key=_rollout_key(tenant_id, rollout_id),
                UpdateExpression="SET pause_requested = :p",
                ExpressionAttributeValues={":p": requested},
            )

    def get_spec(self, rollout_id: str) -> RolloutSpec | None:
        with aws_call("GetItem"):
            found = self._table.get_item(
                Key={"pk": f"ROLLOUT#{rollout_id}", "sk": "SPEC"}, ConsistentRead=True
            ).get("Item")
        if not found:
            return None
        return RolloutSpec(
            stack_name=str(found["stack_name"]),
            template_body=str(found["template_body"]),
            parameters={str(k): str(v) for k, v in _plain(found.get("parameters") or {}).items()},
            tags={str(k): str(v) for k, v in _plain(found.get("tags") or {}).items()},
        )

    def get_item(self, rollout_id: str, index: int) -> RolloutItem | None:
        with aws_call("GetItem"):
            found = self._table.get_item(Key=_item_key(rollout_id, index), ConsistentRead=True).get("Item")
        return item_from_record(rollout_id, dict(found)) if found else None

    def list_items(self, rollout_id: str) -> list[RolloutItem]:
        # A plain expression string: boto3's Key()/Attr() builder is shared by every thread using the
        # table and is not thread-safe (its placeholder counter), which the local AWS's many
        # in-process executions would hit.
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": f"ROLLOUT#{rollout_id}", ":prefix": "ITEM#"},
            "ConsistentRead": True,
        }
        found: list[RolloutItem] = []
        with aws_call("Query"):
            while True:
                page = self._table.query(**kwargs)
                found.extend(item_from_record(rollout_id, dict(i)) for i in page.get("Items", []))
                if not page.get("LastEvaluatedKey"):
                    return found
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def item_and_rollout(
        self, tenant_id: str, rollout_id: str, index: int
    ) -> tuple[RolloutItem | None, Rollout | None]:
        """The item and its rollout (as ``get_rollout`` reads it), in one consistent BatchGetItem:
        StartItem's one read before it starts the item. A key DynamoDB leaves unprocessed (throttled)
        is read on its own."""
        keys = [_item_key(rollout_id, index), _rollout_key(tenant_id, rollout_id)]
        request = {self._name: {"Keys": keys, "ConsistentRead": True, **_item_and_rollout_read()}}
        client: Any = self._table.meta.client  # the table's: it takes and gives plain Python values
        with aws_call("BatchGetItem"):
            answer = client.batch_get_item(RequestItems=request)
        found = {str(r["sk"]): dict(r) for r in answer.get("Responses", {}).get(self._name, [])}
        unprocessed = {
            str(k["sk"]) for k in (answer.get("UnprocessedKeys") or {}).get(self._name, {}).get("Keys", [])
        }
        item_sk, rollout_sk = keys[0]["sk"], keys[1]["sk"]
        if item_sk in unprocessed:
            item = self.get_item(rollout_id, index)
        else:
            item = item_from_record(rollout_id, found[item_sk]) if item_sk in found else None
        if rollout_sk in unprocessed:
            rollout = self.get_rollout(tenant_id, rollout_id)
        else:
            rollout = rollout_from_item(found[rollout_sk]) if rollout_sk in found else None
        return item, rollout

    def start_write(self, item: RolloutItem) -> dict[str, Any]:
        """The write (a transaction's part) that records ``item`` as started, only while it is PENDING:
        the operation's first write carries it (``ItemStart.write``), so the item is IN_PROGRESS
        exactly when its operation exists."""
        return self._end_put(item, only_pending=True)

    def save_item(self, item: RolloutItem, *, reopen: bool = False, only_pending: bool = False) -> bool:
        """Progress of an item that has not ended (PENDING -> IN_PROGRESS, its deployment id); False,
        and nothing written, when the item ended meanwhile (an end is never overwritten by a late
        start). ``reopen``: an ended item starts again (a plan's items, when the plan is applied).
        ``only_pending``: only while the item is PENDING (neither started nor ended)."""
        if reopen:
            with aws_call("PutItem"):
                self._table.put_item(Item=item_to_record(item))
            return True
        put = self._end_put(item, only_pending=only_pending)["Put"]
        with aws_call("PutItem"):
            try:
                self._table.put_item(
                    Item=put["Item"],
                    ConditionExpression=put["ConditionExpression"],
                    ExpressionAttributeNames=put["ExpressionAttributeNames"],
                    ExpressionAttributeValues=put["ExpressionAttributeValues"],
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def _end_put(self, item: RolloutItem, *, only_pending: bool = False) -> dict[str, Any]:
        """The conditional put that records an item (its end, or its progress) unless it has ended
        (``only_pending``: unless it has started either, for items a rollout's end cancels)."""
        names = {f":e{n}": status.value for n, status in enumerate(ENDED_ITEM)}
        condition = f"NOT (#s IN ({', '.join(names)}))"
        if only_pending:
            names = {":pending": ItemStatus.PENDING.value}
            condition = "#s = :pending"
        return {
            "Put": {
                "TableName": self._name,
                "Item": item_to_record(item),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": names,
            }
        }

    def end_items(
        self, tenant_id: str, items: list[RolloutItem], on_ended: Callable[[int], None] | None = None
    ) -> int:
        """End many items that never started (a rollout's end cancels them; none counts as failed), each
        only while still PENDING, 25 per transaction, so that ending a fleet's items takes tens of calls,
        not thousands. A chunk where some item started or ended meanwhile is done one item at a time.
        How many items it ended; ``on_ended`` hears each write's count as it is written."""
        if any(item.status is ItemStatus.FAILED for item in items):
            raise ValueError("end_items records no failures: end a FAILED item with end_item")
        ended = 0

        def wrote(count: int) -> None:
            nonlocal ended
            ended += count
            if on_ended is not None:
                on_ended(count)

        for first in range(0, len(items), TRANSACTION_ITEMS):
            chunk = items[first : first + TRANSACTION_ITEMS]
            puts: list[Any] = [self._end_put(item, only_pending=True) for item in chunk]
            with aws_call("TransactWriteItems"):
                try:
                    transact_write_items(self._table.meta.client, puts)
                    wrote(len(chunk))
                    continue
                except ClientError as error:
                    if error_code(error) != "TransactionCanceledException":
                        raise
            for item in chunk:
                with aws_call("PutItem"):
                    try:
                        self._table.meta.client.put_item(**self._end_put(item, only_pending=True)["Put"])
                        wrote(1)
                    except ClientError as error:
                        if error_code(error) != "ConditionalCheckFailedException":
                            raise
        return ended

    def end_item(self, tenant_id: str, item: RolloutItem, *, only_pending: bool = False) -> bool:
        """Record the item's final status once; a FAILED one adds 1 to the rollout's ``failed``.

        False when the item had already ended (a retried step), or with ``only_pending`` had started:
        nothing is written or counted. Only a failure needs a transaction (the item and the count); any
        other end is one conditional put, which on AWS costs half the write units of a transaction.
        """
        if item.status is not ItemStatus.FAILED:
            return self.save_item(item, only_pending=only_pending)
        transact: list[dict[str, Any]] = [
            self._end_put(item, only_pending=only_pending),
            {
                "Update": {
                    "TableName": self._name,
                    "Key": _rollout_key(tenant_id, item.rollout_id),
                    "UpdateExpression": "ADD failed :one",
                    "ExpressionAttributeValues": {":one": 1},
                }
            },
        ]
        with aws_call("TransactWriteItems"):
            try:
                transact_write_items(self._table.meta.client, transact)
            except ClientError as error:
                if condition_failed(error):
                    return False
                raise
        return True

    def end_running_item(
        self,
        ref: ItemRef,
        operation_id: str,
        status: ItemStatus,
        changes: list[dict[str, Any]] | None,
    ) -> tuple[bool, RolloutItem | None]:
        """End the item ``ref`` with ``status`` only while it runs ``operation_id`` (IN_PROGRESS), in one
        conditional update that also answers with the item: (True, the item as written), or, refused,
        (False, the item as it is; None when there is none). So the end of an operation needs no read
        of its item. Not for FAILED, whose count on the rollout needs a transaction (``end_item``).
        ``changes``: the item's changes (a plan's), None to keep them."""
        if status is ItemStatus.FAILED or status not in ENDED_ITEM:
            raise ValueError(f"end_running_item ends an item without a failure, not {status.value}")
        sets = ["#s = :status", "updated_at = :now", "#e = :none"]
        values: dict[str, Any] = {
            ":status": status.value,
            ":now": utc_now(),
            ":none": None,
            ":running": ItemStatus.IN_PROGRESS.value,
            ":op": operation_id,
        }
        if changes is not None:
            sets.append("changes = :changes")
            values[":changes"] = changes
        with aws_call("UpdateItem"):
            try:
                written = self._table.update_item(
                    Key=_item_key(ref.rollout_id, ref.index),
                    UpdateExpression="SET " + ", ".join(sets),
                    ConditionExpression="#s = :running AND operation_id = :op",
                    ExpressionAttributeNames={"#s": "status", "#e": "error"},
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    # The item as it is comes back with a refusal: no read to learn why.
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                found = refused_item(error)
                return False, item_from_record(ref.rollout_id, found) if found else None
        return True, item_from_record(ref.rollout_id, dict(written))

    def stack_deployment_id(self, target_id: str, region: str, stack_name: str) -> str | None:
        """The live deployment holding (target, region, stack name), if any."""
        return self._deployments.claimed_deployment_id(target_id, region, stack_name)

    def release_notice(self, rollout_id: str, key: str) -> None:
        with aws_call("DeleteItem"):
            self._table.delete_item(Key={"pk": f"ROLLOUT#{rollout_id}", "sk": f"NOTICE#{key}"})

    def claim_notice(self, rollout_id: str, key: str) -> bool:
        """Take the right to announce one status change; False when it was taken before (a retry)."""
        with aws_call("PutItem"):
            try:
                self._table.put_item(
                    Item={
                        "pk": f"ROLLOUT#{rollout_id}",
                        "sk": f"NOTICE#{key}",
                        "kind": "rollout_notice",
                        "claimed_at": utc_now(),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
        return True
