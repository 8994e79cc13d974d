"""A StartItem that Lambda retries after it started the item's deployment but lost the save of it.

The fault this guards against: the retry found the item still PENDING, started the deployment again,
was refused (the first operation still ran: OPERATION_IN_PROGRESS) and marked the item FAILED. The
item's operation is held at its AcquireLock step until the retry has run, so the retry always meets
it running, as it would in the fault's window on AWS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.adapters.rollouts import DynamoRolloutStore
from chalicelib.composition import Services
from chalicelib.domain.errors import TransientAwsError
from chalicelib.domain.rollouts import ItemStatus, RolloutItem
from chalicelib.steps import handlers, rollout_handlers
from localaws.environment import LocalAws
from tests.conftest import AwsCalls, Tenant, call
from tests.workflow.rollout_helpers import NoExecution, wired_rollouts
from tests.workflow.test_rollouts import register_fleet, rollout_body, wait_rollout


@pytest.fixture
def held_lock(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Every deployment operation waits at AcquireLock until the event is set."""
    release = threading.Event()
    acquire = handlers.acquire_lock

    def held(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        release.wait(30)
        return acquire(services, event)

    monkeypatch.setattr(handlers, "acquire_lock", held)
    try:
        yield release
    finally:
        release.set()


@pytest.fixture
def lost_save(monkeypatch: pytest.MonkeyPatch) -> list[RolloutItem]:
    """The first save of an item as IN_PROGRESS fails (a throttled PutItem) and is not written."""
    lost: list[RolloutItem] = []
    save = DynamoRolloutStore.save_item

    def losing(self: DynamoRolloutStore, item: RolloutItem) -> None:
        if item.status is ItemStatus.IN_PROGRESS and not lost:
            lost.append(item)
            raise TransientAwsError("PutItem failed: ProvisionedThroughputExceededException")
        save(self, item)

    monkeypatch.setattr(DynamoRolloutStore, "save_item", losing)
    return lost


def one_item(client: Client, tenant: Tenant, aws: LocalAws) -> dict[str, Any]:
    fleet = register_fleet(client, tenant, aws, 1)
    body = rollout_body(fleet)
    body["targets"] = [{"target_id": fleet[0]["target_id"], "regions": ["us-east-1"]}]
    response = call(client, "POST", "/rollouts", tenant, body)
    assert response.status_code == 202, response.body
    started: dict[str, Any] = json.loads(response.body)
    return started


def deployments_of(client: Client, tenant: Tenant) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(call(client, "GET", "/deployments", tenant).body)["items"]
    return items


def test_the_state_machine_retry_of_start_item_takes_up_the_started_operation(
    client: Client,
    tenant: Tenant,
    local_aws: LocalAws,
    aws_calls: AwsCalls,
    held_lock: threading.Event,
    lost_save: list[RolloutItem],
) -> None:
    rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
    # StartItem started the deployment, its save failed, and its Retry (TransientAwsError) ran it again.
    deadline = time.monotonic() + 30
    while True:
        rollout = json.loads(call(client, "GET", f"/rollouts/{rollout_id}", tenant).body)
        (item,) = rollout["items"]
        if lost_save and item["status"] != "PENDING":
            break
        assert time.monotonic() < deadline, rollout
        time.sleep(0.05)
    assert item["status"] == "IN_PROGRESS", item  # was FAILED with OPERATION_IN_PROGRESS
    assert item["deployment_id"] == lost_save[0].deployment_id
    held_lock.set()

    done = wait_rollout(client, tenant, rollout_id)
    assert done["status"] == "SUCCEEDED", done["summary"]
    (item,) = done["items"]
    assert (item["status"], item["error"]) == ("SUCCEEDED", None)
    assert aws_calls.count("cloudformation", "CreateStack") == 1
    assert [d["deployment_id"] for d in deployments_of(client, tenant)] == [item["deployment_id"]]


def test_start_item_invoked_again_after_a_lost_save_starts_nothing_new(
    local_aws: LocalAws,
    aws_calls: AwsCalls,
    held_lock: threading.Event,
    lost_save: list[RolloutItem],
) -> None:
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]  # no execution: we run the steps
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}

        with pytest.raises(TransientAwsError):
            rollout_handlers.start_item(services, event)
        (started,) = lost_save
        assert started.deployment_id is not None
        progress = rollout_handlers.start_item(services, event)
        assert (progress["done"], progress["wait_seconds"]) == (False, 1), (
            progress
        )  # takes the started one up
        assert rollout_handlers.start_item(services, event)["done"] is False  # and again: still one
        held_lock.set()

        deadline = time.monotonic() + 30
        progress = {"done": False, "wait_seconds": 0}
        while not progress["done"]:
            assert time.monotonic() < deadline, progress
            time.sleep(0.05)
            progress = rollout_handlers.poll_item(services, {**event, "progress": progress})
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert (item.status, item.error) == (ItemStatus.SUCCEEDED, None)
        assert (item.deployment_id, item.operation_id) == (started.deployment_id, started.operation_id)
        assert aws_calls.count("cloudformation", "CreateStack") == 1
        assert [d["deployment_id"] for d in deployments_of(client, tenant)] == [started.deployment_id]
