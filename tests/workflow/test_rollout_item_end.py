"""A rollout item's end, written by the last step of its operation's execution, costs one write.

The step ends the item with a conditional update that answers with the item (the token of the
StartItem task to release), or, refused, with the item as it is: no read of the item first. A failure
still reads it (its count on the rollout is a transaction, which answers with nothing).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

import app as app_module
from chalicelib.adapters import errors as errors_module
from chalicelib.adapters import rollouts as rollouts_module
from chalicelib.adapters.rollouts import DynamoRolloutStore
from chalicelib.domain.errors import TransientAwsError
from chalicelib.domain.metrics import Metric
from chalicelib.domain.rollouts import ItemRef, ItemStatus
from localaws.environment import LocalAws
from tests.conftest import AwsCalls, Tenant, call
from tests.workflow.rollout_helpers import NoExecution, wired_rollouts
from tests.workflow.test_observability import emf_documents, totals
from tests.workflow.test_rollout_item_completion import FLEET, fleet_service, run_rollout
from tests.workflow.test_rollout_item_retry import one_item
from tests.workflow.test_rollouts import break_account, register_fleet, rollout_body, start, wait_rollout


def test_the_last_step_ends_each_item_in_one_write_and_reads_only_its_deployment(
    aws_calls: AwsCalls, capsys: pytest.CaptureFixture[str]
) -> None:
    with fleet_service(NEXUS_EVENT_TIMEOUT_SECONDS="60") as (client, tenant, aws, _, invocations):
        ended = run_rollout(client, tenant, aws)
        aws.drain_executions(timeout=30)
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["counts"]["SUCCEEDED"] == FLEET
    assert invocations["ReleaseLock"] == FLEET, invocations
    assert invocations["PollItem"] == 0, invocations  # each release said that its item had ended
    # Per item: its deployment read, its lock released, its end written, its StartItem task released.
    # It read the item (GetItem) and then put it whole (PutItem) before.
    assert aws_calls.by_function("ReleaseLock") == Counter(
        {
            ("dynamodb", "GetItem"): FLEET,
            ("dynamodb", "DeleteItem"): FLEET,
            ("dynamodb", "UpdateItem"): FLEET,
            ("stepfunctions", "SendTaskSuccess"): FLEET,
        }
    ), aws_calls.by_function("ReleaseLock")
    # Each end counted once, by the write that made it.
    documents = emf_documents(capsys.readouterr().out)
    assert totals(documents, Metric.ROLLOUT_ITEMS) == {(("status", "SUCCEEDED"),): FLEET}


def test_an_item_end_is_written_only_while_the_item_runs_that_operation(local_aws: LocalAws) -> None:
    """The store's one-write end: refused for an item running another operation, one reopened PENDING
    with that operation's id still on it (a plan's item, when the plan is applied), an ended item and a
    missing one, each refusal answering with the item as it is (None when missing); written once, it
    clears the error, keeps the rest, and keeps the changes unless given."""
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        session = local_aws.role_session(local_aws.host.role_of("ReleaseLock"))
        table = session.resource("dynamodb", region_name=services.settings.region).Table(
            services.settings.table_name
        )
        store = DynamoRolloutStore(table)
        planned = [{"action": "Add", "logical_id": "Queue", "replacement": "False"}]
        ref = ItemRef(rollout_id, item.index)

        reopened = replace(item, deployment_id="dep-1", operation_id="op-1", changes=planned)
        assert store.save_item(reopened, reopen=True)
        pending, found = store.end_running_item(ref, "op-1", ItemStatus.SUCCEEDED, None)
        assert (pending, found) == (False, reopened)

        running = replace(
            reopened,
            status=ItemStatus.IN_PROGRESS,
            error={"code": "EARLIER", "message": "an earlier attempt", "hint": "none"},
            task_token="t-1",
        )
        assert store.save_item(running)
        other, found = store.end_running_item(ref, "op-2", ItemStatus.SUCCEEDED, None)
        assert (other, found) == (False, running)

        written, ended = store.end_running_item(ref, "op-1", ItemStatus.SUCCEEDED, None)
        assert written is True
        assert ended is not None
        assert (ended.status, ended.error, ended.changes) == (ItemStatus.SUCCEEDED, None, planned)
        assert (ended.deployment_id, ended.operation_id, ended.task_token) == ("dep-1", "op-1", "t-1")
        assert ended.updated_at > running.updated_at
        assert store.get_item(rollout_id, item.index) == ended

        again, found = store.end_running_item(ref, "op-1", ItemStatus.PLANNED, [])
        assert (again, found) == (False, ended)  # ended once: the second end found it as written

        assert store.save_item(running, reopen=True)
        written, ended = store.end_running_item(ref, "op-1", ItemStatus.PLANNED, [])
        assert written is True
        assert ended is not None
        assert (ended.status, ended.changes) == (ItemStatus.PLANNED, [])

        missing = ItemRef(rollout_id, item.index + 1)
        assert store.end_running_item(missing, "op-1", ItemStatus.SUCCEEDED, None) == (False, None)


def test_items_a_rollout_cancels_in_bulk_are_counted_ended(
    client: Client, local_aws: LocalAws, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """A paused rollout that is cancelled ends its items that never started CANCELLED in a few
    transactions, not one write per item: each of them is counted, as the items that ran are."""
    fleet = register_fleet(client, tenant, local_aws, 4)
    break_account(local_aws, 0)
    body = rollout_body(fleet, canary=1)
    body["targets"] = [{"target_id": t["target_id"], "regions": ["us-east-1"]} for t in fleet]
    started = start(client, tenant, body)
    paused = wait_rollout(client, tenant, started["rollout_id"])
    assert paused["status"] == "PAUSED"
    assert (paused["counts"]["FAILED"], paused["counts"]["PENDING"]) == (1, 3)
    cancelled = call(client, "POST", f"/rollouts/{started['rollout_id']}/cancel", tenant)
    assert cancelled.status_code == 202, cancelled.body
    done = wait_rollout(client, tenant, started["rollout_id"])
    assert done["status"] == "CANCELLED"
    assert [i["status"] for i in done["items"]] == ["FAILED"] + ["CANCELLED"] * 3
    local_aws.drain_executions(timeout=30)
    assert totals(emf_documents(capsys.readouterr().out), Metric.ROLLOUT_ITEMS) == {
        (("status", "FAILED"),): 1,
        (("status", "CANCELLED"),): 3,
    }


def test_items_ended_in_bulk_are_heard_write_by_write_so_a_failure_part_way_loses_no_count(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 items end in two transactions (25, then 5); the second is throttled past botocore's retries.
    The 25 already ended were heard as their write landed, and the rest are still PENDING, for the
    step's retry to end and count."""
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        session = local_aws.role_session(local_aws.host.role_of("NextWave"))
        table = session.resource("dynamodb", region_name=services.settings.region).Table(
            services.settings.table_name
        )
        store = DynamoRolloutStore(table)
        items = [replace(item, index=n) for n in range(30)]
        for other in items[1:]:
            assert store.save_item(other, reopen=True)
        transact = errors_module.transact_write_items
        sent: list[int] = []

        def second_throttled(client: Any, puts: Any) -> None:
            sent.append(len(puts))
            if len(sent) == 2:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "x")
            transact(client, puts)

        monkeypatch.setattr(rollouts_module, "transact_write_items", second_throttled)
        heard: list[int] = []
        cancelled = [
            replace(i, status=ItemStatus.CANCELLED, updated_at="2026-12-07T00:00:00Z") for i in items
        ]
        with pytest.raises(TransientAwsError):
            store.end_items(tenant.tenant_id, cancelled, heard.append)
        assert sent == [25, 5]
        assert heard == [25]
        statuses = Counter(i.status for i in store.list_items(rollout_id))
        assert statuses == Counter({ItemStatus.CANCELLED: 25, ItemStatus.PENDING: 5})
