"""Completion waiters on the deployments table: one item per stack, ``WAIT#<account>#<region>#<stack>``.

The item holds the task token of the execution waiting for that stack (with the ClientRequestTokens
whose events may release it) or, when an event came first, that event. Both sides use single
conditional UpdateItems, so the race between "the waiter registers" and "the event arrives" has no
window in which both miss each other:

* ``wait`` sets the task token and removes any recorded event in one write, reading the old item:
  an event for this operation's tokens recorded earlier releases the waiter at once, and is used up.
* ``signal`` first takes the task token if one waits for this event's token (conditional REMOVE);
  if none does, it records the event, on condition that still no waiter for that token arrived in
  between, and tries again otherwise.

An event is therefore used at most once (twice when the task it released first had already closed:
then it goes to the waiter that replaced that task), which matters when CloudFormation reports more than
one settled status for one token (``CREATE_FAILED`` then ``ROLLBACK_COMPLETE``): each one leads to at
most one reconcile, never to a loop. ``EVENTS_LOST#<account>#<region>`` marks an account and region whose
events did not arrive (``WorkflowService._completion_for``). Expressions are plain strings (no boto3
condition builder, which is not thread-safe; see ``_SerializedTable``). Items expire a day after their
last write.

The waiter's record also keeps the log keys of the operation that waits (its ids and correlation id,
``log_keys``, with its tokens), and both writes of ``signal`` answer with the record as it was before
them: an event of that operation's tokens is then logged as that operation's without another read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call, error_code
from chalicelib.service.ports import Signalled, StackStatusEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

TTL_SECONDS = 24 * 3600
_ATTEMPTS = 5


class DynamoCompletionWaiters:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    @staticmethod
    def _key(key: str) -> dict[str, str]:
        return {"pk": f"WAIT#{key}", "sk": "WAIT"}

    def _expires(self) -> int:
        return int(self._clock()) + TTL_SECONDS

    def wait(
        self,
        key: str,
        operation_id: str,
        task_token: str,
        tokens: tuple[str, ...],
        log_keys: Mapping[str, str] | None = None,
    ) -> StackStatusEvent | None:
        keys = dict(log_keys or {})
        with aws_call("UpdateItem"):
            old = self._table.update_item(
                Key=self._key(key),
                UpdateExpression=_wait_update(bool(keys)),
                ExpressionAttributeValues={
                    ":op": operation_id,
                    ":task": task_token,
                    ":tokens": list(tokens),
                    ":ttl": self._expires(),
                    **({":keys": keys} if keys else {}),
                },
                ReturnValues="ALL_OLD",
            ).get("Attributes", {})
        recorded = str(old.get("event_token", ""))
        if recorded and recorded in tokens:
            return StackStatusEvent(
                recorded, str(old.get("event_status", "")), str(old.get("event_reason", ""))
            )
        return None

    def signal(self, key: str, event: StackStatusEvent) -> Signalled:
        token = event.client_request_token
        for _ in range(_ATTEMPTS):
            taken = self._take(
                key, "attribute_exists(task_token) AND contains(tokens, :token)", {":token": token}
            )
            if taken is not None:
                return Signalled(str(taken["task_token"]), _log_keys(taken, token))
            recorded = self._record(key, event)
            if recorded is not None:
                return Signalled(None, _log_keys(recorded, token))
        return Signalled(None)  # a waiter kept arriving and leaving: its own timeout reconciles

    def wake(self, key: str, operation_id: str) -> str | None:
        taken = self._take(key, "attribute_exists(task_token) AND operation_id = :op", {":op": operation_id})
        return None if taken is None else str(taken["task_token"])

    def restore(self, key: str, task_token: str) -> bool:
        """Put back a task token that ``signal`` or ``wake`` took but whose release failed, so that the
        retried event or step takes it again: only while it is the last token taken (``taken_token``),
        so never over a waiter that registered since, nor in place of one taken since."""
        with aws_call("UpdateItem"):
            try:
                self._table.update_item(
                    Key=self._key(key),
                    UpdateExpression="SET task_token = :task, expires_at = :ttl REMOVE taken_token",
                    ConditionExpression="attribute_not_exists(task_token) AND taken_token = :task",
                    ExpressionAttributeValues={":task": task_token, ":ttl": self._expires()},
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def restore_event(self, key: str, event: StackStatusEvent, tokens: tuple[str, ...]) -> bool:
        """Record again an event that ``wait`` used up but whose release failed, so that the waiter's
        retried registration (waiting for ``tokens``) finds it; never over an event for those tokens
        recorded since (newer news of the same operation), but over another operation's."""
        names = {f":t{n}": token for n, token in enumerate(tokens)}
        condition = "attribute_not_exists(event_token)"
        if names:
            condition += f" OR NOT (event_token IN ({', '.join(names)}))"
        return self._record(key, event, condition, names) is not None

    def _take(self, key: str, condition: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """The record as it was before its task token was taken; None when ``condition`` failed."""
        with aws_call("UpdateItem"):
            try:
                old = self._table.update_item(
                    Key=self._key(key),
                    # Which token was taken last, so that ``restore`` gives back only that one.
                    UpdateExpression="SET taken_token = task_token REMOVE task_token",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_OLD",
                )["Attributes"]
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return None
                raise
        return dict(old)

    def _record(
        self,
        key: str,
        event: StackStatusEvent,
        condition: str = "attribute_not_exists(task_token) OR NOT contains(tokens, :token)",
        values: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Keep ``event`` for the next waiter, on ``condition`` (by default: no waiter for its token),
        with ``values`` for the condition's own placeholders. The record as it was before (from the same
        write); None when ``condition`` failed."""
        with aws_call("UpdateItem"):
            try:
                old = self._table.update_item(
                    Key=self._key(key),
                    UpdateExpression="SET event_token = :token, event_status = :status, "
                    "event_reason = :reason, expires_at = :ttl",
                    ConditionExpression=condition,
                    ExpressionAttributeValues={
                        ":token": event.client_request_token,
                        ":status": event.status,
                        ":reason": event.reason[:1000],
                        ":ttl": self._expires(),
                        **(values or {}),
                    },
                    ReturnValues="ALL_OLD",
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return None
                raise
        return dict(old.get("Attributes", {}))

    # -- regions whose events do not arrive --------------------------------------------------------

    @staticmethod
    def _lost_key(account_id: str, region: str) -> dict[str, str]:
        return {"pk": f"EVENTS_LOST#{account_id}#{region}", "sk": "EVENTS_LOST"}

    def mark_events_lost(self, account_id: str, region: str, seconds: int) -> None:
        until = int(self._clock()) + seconds
        with aws_call("PutItem"):
            self._table.put_item(
                Item={**self._lost_key(account_id, region), "lost_until": until, "expires_at": until}
            )

    def events_lost(self, account_id: str, region: str) -> bool:
        with aws_call("GetItem"):
            item = self._table.get_item(Key=self._lost_key(account_id, region)).get("Item")
        return item is not None and int(str(item["lost_until"])) > self._clock()


def _wait_update(with_keys: bool) -> str:
    """A waiter's write. Its log keys go with the tokens they are for: a waiter without keys removes
    those of the one before, which may be another operation's."""
    keys = ", log_keys = :keys" if with_keys else ""
    removed = "" if with_keys else ", log_keys"
    return (
        f"SET operation_id = :op, task_token = :task, tokens = :tokens, expires_at = :ttl{keys} "
        f"REMOVE event_token, event_status, event_reason, taken_token{removed}"
    )


def _log_keys(record: Mapping[str, Any], token: str) -> dict[str, str]:
    """The log keys ``record`` keeps for its waiter's operation, if ``token`` is one of that operation's."""
    tokens = record.get("tokens") or []
    keys = record.get("log_keys") if token in tokens else None
    return {str(k): str(v) for k, v in keys.items()} if isinstance(keys, Mapping) else {}
