"""A StartItem that Lambda retries after it started the item's deployment but lost its answer.

The fault this guards against: the retry found the item still PENDING, started the deployment again,
was refused (the first operation still ran: OPERATION_IN_PROGRESS) and marked the item FAILED. The
item is now recorded IN_PROGRESS by the very transaction that writes its operation, so a retry always
finds it. The item's operation is held at its AcquireLock step until the retry has run, so the retry
meets it running, as it would in the fault's window on AWS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.adapters.dynamodb import DynamoLockStore
from chalicelib.adapters.rollouts import DynamoRolloutStore
from chalicelib.adapters.stepfunctions import StepFunctionsStarter
from chalicelib.composition import Services
from chalicelib.domain.errors import DeployerError, TransientAwsError
from chalicelib.domain.model import Deployment, stack_key
from chalicelib.domain.rollouts import ItemStatus
from chalicelib.service.deployments import START_ROUNDS, DeploymentService
from chalicelib.steps import handlers, rollout_handlers
from localaws.cloudformation import StackSimulation
from localaws.environment import LocalAws
from tests.conftest import AwsCalls, Tenant, call, local_aws_for_app, state_names
from tests.support import polling
from tests.workflow.rollout_helpers import NoExecution, wired_rollouts
from tests.workflow.test_rollouts import register_fleet, rollout_body, wait_rollout
from tests.workflow.test_rollouts import start as start_rollout


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


def losing_answers(monkeypatch: pytest.MonkeyPatch, count: int) -> list[Deployment]:
    """The first ``count`` item starts do their work (the operation written with the item's start, its
    execution started), then their Lambda fails (a throttled call after the work): the answer is lost.
    The throttle comes out of the item's ``DeploymentService.create`` (the call with ``for_item``) once the
    create has done its work, where the item's start gets the deployment it started."""
    lost: list[Deployment] = []
    create = DeploymentService.create

    def losing(self: DeploymentService, *args: Any, **kwargs: Any) -> Deployment:
        started = create(self, *args, **kwargs)
        if kwargs.get("for_item") is not None and len(lost) < count:
            lost.append(started)
            raise TransientAwsError("PutItem failed: ProvisionedThroughputExceededException")
        return started

    monkeypatch.setattr(DeploymentService, "create", losing)
    return lost


@pytest.fixture
def lost_answer(monkeypatch: pytest.MonkeyPatch) -> list[Deployment]:
    """The first item start's answer is lost after its work was done."""
    return losing_answers(monkeypatch, 1)


def polled_to_its_end(services: Services, event: dict[str, Any], timeout: float = 30) -> None:
    """PollItem, as the item's Map iteration runs it, until the item has ended."""
    deadline = time.monotonic() + timeout
    progress: dict[str, Any] = {"done": False, "wait_seconds": 0}
    while not progress["done"]:
        assert time.monotonic() < deadline, progress
        time.sleep(0.05)
        progress = rollout_handlers.poll_item(services, {**event, "progress": progress})


def runs_on_to_its_end(
    services: Services, tenant: Tenant, event: dict[str, Any], started: Any, held_lock: threading.Event
) -> None:
    """The only item still runs the operation it was ``started`` with, unfailed; once the operation's
    hold is lifted, it ends SUCCEEDED with that deployment."""
    rollout_id = str(event["rollout_id"])
    (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
    assert (item.status, item.operation_id, item.error) == (
        ItemStatus.IN_PROGRESS,
        started.operation_id,
        None,
    )
    held_lock.set()
    polled_to_its_end(services, event)
    (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
    assert (item.status, item.deployment_id, item.error) == (
        ItemStatus.SUCCEEDED,
        started.deployment_id,
        None,
    )


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
    lost_answer: list[Deployment],
) -> None:
    rollout_id = one_item(client, tenant, local_aws)["rollout_id"]

    def only_item() -> dict[str, Any]:
        (item,) = json.loads(call(client, "GET", f"/rollouts/{rollout_id}", tenant).body)["items"]
        return dict(item)

    # StartItem started the deployment, its answer was lost, and its Retry (TransientAwsError) ran it again.
    item = polling.until(
        only_item,
        ready=lambda item: bool(lost_answer) and item["status"] != "PENDING",
        timeout=30,
        what="the lost answer and the item past PENDING",
    )
    assert item["status"] == "IN_PROGRESS", item  # was FAILED with OPERATION_IN_PROGRESS
    assert item["deployment_id"] == lost_answer[0].deployment_id
    held_lock.set()

    done = wait_rollout(client, tenant, rollout_id)
    assert done["status"] == "SUCCEEDED", done["summary"]
    (item,) = done["items"]
    assert (item["status"], item["error"]) == ("SUCCEEDED", None)
    assert aws_calls.count("cloudformation", "CreateStack") == 1
    assert [d["deployment_id"] for d in deployments_of(client, tenant)] == [item["deployment_id"]]


def test_start_item_invoked_again_after_a_lost_answer_starts_nothing_new(
    local_aws: LocalAws,
    aws_calls: AwsCalls,
    held_lock: threading.Event,
    lost_answer: list[Deployment],
) -> None:
    """Each later run reads the item IN_PROGRESS with the first run's operation and takes it up: it
    writes nothing, so a run that loses its own answer too leaves nothing for the next one to undo."""
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]  # no execution: we run the steps
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}

        with pytest.raises(TransientAwsError):
            rollout_handlers.start_item(services, event)
        (started,) = lost_answer
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert (item.status, item.deployment_id, item.operation_id) == (
            ItemStatus.IN_PROGRESS,
            started.deployment_id,
            started.operation.operation_id,
        )
        aws_calls.clear()
        for _ in range(2):  # takes the started one up, and again: still one
            progress = rollout_handlers.start_item(services, event)
            assert (progress["done"], progress["wait_seconds"]) == (False, 1), progress
        assert {c for c in aws_calls.calls if c[0] == "dynamodb"} == {("dynamodb", "BatchGetItem")}
        held_lock.set()

        polled_to_its_end(services, event)
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert (item.status, item.error) == (ItemStatus.SUCCEEDED, None)
        assert (item.deployment_id, item.operation_id) == (
            started.deployment_id,
            started.operation.operation_id,
        )
        assert aws_calls.count("cloudformation", "CreateStack") == 1
        assert aws_calls.count("stepfunctions", "StartExecution") == 0  # only the first run's
        assert [d["deployment_id"] for d in deployments_of(client, tenant)] == [started.deployment_id]


def test_a_start_slower_than_its_wait_is_taken_up_not_failed(
    client: Client, tenant: Tenant, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StartItem's wait timed out while its Lambda was still starting the item (a throttled start):
    PollItem then meets the item PENDING. It waits for the start and takes up what it started; the
    item was FAILED ("no deployment to poll") before, and the late start then overwrote that end."""
    monkeypatch.setattr("chalicelib.service.rollouts.waves.START_SECONDS", 0)  # StartItem's wait: 5 s
    start = rollout_handlers.start_item
    polled_pending: list[str] = []
    poll = rollout_handlers.poll_item

    def slow_start(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        time.sleep(8)  # longer than the task's timeout: PollItem runs first
        return start(services, event)

    def watched_poll(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        item = services.rollouts.get(str(event["tenant_id"]), str(event["rollout_id"])).items[0]
        polled_pending.append(item.status.value)
        return poll(services, event)

    monkeypatch.setattr(rollout_handlers, "start_item", slow_start)
    monkeypatch.setattr(rollout_handlers, "poll_item", watched_poll)
    rollout_id = one_item(client, tenant, local_aws)["rollout_id"]

    done = wait_rollout(client, tenant, rollout_id)
    assert polled_pending[0] == "PENDING", polled_pending  # the wait did time out before the start
    assert done["status"] == "SUCCEEDED", done["summary"]
    (item,) = done["items"]
    assert (item["status"], item["error"]) == ("SUCCEEDED", None)
    assert [d["deployment_id"] for d in deployments_of(client, tenant)] == [item["deployment_id"]]


def test_a_failed_rollout_waits_for_its_running_items_and_records_how_they_ended(
    client: Client,
    tenant: Tenant,
    local_aws: LocalAws,
    held_lock: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One item's iteration fails past its Catch (its RecordItemFailure cannot record), which ends the
    Map and every iteration in it, while the other items' deployments still run. The rollout waits for
    them: each ends as its deployment ended, none is left IN_PROGRESS, and only then is it FAILED."""
    fleet = register_fleet(client, tenant, local_aws, 3)
    record = rollout_handlers.record_item_failure
    start = rollout_handlers.start_item
    others_started = threading.Semaphore(0)
    waited: list[bool] = []  # whether item 0's failure came after items 1 and 2 started

    def failing_start(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        if event["item_id"] == 0:
            raise ValueError("a fault in StartItem")  # Catch States.ALL: RecordItemFailure
        started = start(services, event)
        others_started.release()
        return started

    def unrecordable(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        if event["item_id"] == 0:
            # The Map fails only once items 1 and 2 have started, however loaded the machine is.
            waited.append(others_started.acquire(timeout=30) and others_started.acquire(timeout=30))
            raise ValueError("a fault in RecordItemFailure")  # no Catch: the Map fails
        return record(services, event)

    monkeypatch.setattr(rollout_handlers, "start_item", failing_start)
    monkeypatch.setattr(rollout_handlers, "record_item_failure", unrecordable)
    body = rollout_body(fleet)
    body["targets"] = [{"target_id": t["target_id"], "regions": ["us-east-1"]} for t in fleet]
    response = call(client, "POST", "/rollouts", tenant, body)
    assert response.status_code == 202, response.body
    rollout_id = json.loads(response.body)["rollout_id"]

    sfn = local_aws.account_session(local_aws.central.account_id).client("stepfunctions")
    # The Map has failed; items 1 and 2 wait at their deployments' AcquireLock.
    assert "WaitForInFlightItems" in entered_states(sfn, local_aws, "WaitForInFlightItems")
    assert waited == [True], waited
    running = json.loads(call(client, "GET", f"/rollouts/{rollout_id}", tenant).body)
    assert running["status"] == "IN_PROGRESS", running["summary"]  # not FAILED while items still run
    assert running["counts"]["IN_PROGRESS"] == 2, running["counts"]
    held_lock.set()

    done = wait_rollout(client, tenant, rollout_id)
    assert done["status"] == "FAILED", done["summary"]
    # The Map failed as AWS's does when an item fails past its Catch (tolerated failures: 0).
    assert "tolerated failure threshold was exceeded" in done["error"]["message"], done["error"]
    statuses = {item["item_id"]: item["status"] for item in done["items"]}
    assert statuses == {0: "CANCELLED", 1: "SUCCEEDED", 2: "SUCCEEDED"}, statuses
    local_aws.drain_executions(timeout=30)
    entered = entered_states(sfn, local_aws, "Failed")
    assert "WaitForInFlightItems" in entered, entered  # RecordRolloutFailure waited for items 1 and 2
    assert entered[-1] == "Failed", entered[-3:]


def entered_states(sfn: Any, aws: LocalAws, until: str, timeout: float = 30) -> list[str]:
    """The states the only rollout execution has entered, once it has entered `until`."""

    def entered() -> list[str]:
        (execution,) = sfn.list_executions(stateMachineArn=aws.central.rollout_state_machine_arn)[
            "executions"
        ]
        history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
        return state_names(history)

    return polling.until(
        entered, ready=lambda names: until in names, timeout=timeout, what=f"{until} to be entered"
    )


def test_an_item_start_reads_the_item_and_its_rollout_at_once_and_writes_it_with_its_operation(
    local_aws: LocalAws, aws_calls: AwsCalls, held_lock: threading.Event
) -> None:
    """What one item's start costs in DynamoDB calls: one read of the item and its rollout together
    (BatchGetItem); reads of the rollout's spec (once per process), the target, the stack's claim and
    the stack's lock; the create's transaction, which also records the item IN_PROGRESS (no write of the
    item before or after it); the operation's first event. Run again, it starts nothing: that one read
    finds the item running the operation the first run started."""
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        aws_calls.clear()

        assert rollout_handlers.start_item(services, event)["done"] is False
        dynamodb = sorted(
            (o, aws_calls.count("dynamodb", o)) for s, o in set(aws_calls.calls) if s == "dynamodb"
        )
        assert dynamodb == [
            ("BatchGetItem", 1),
            ("BatchWriteItem", 1),
            ("GetItem", 4),
            ("TransactWriteItems", 1),
        ], dynamodb
        (started,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert started.status is ItemStatus.IN_PROGRESS
        assert started.start_attempted_at is not None
        (deployment,) = deployments_of(client, tenant)
        assert (started.deployment_id, started.operation_id) == (
            deployment["deployment_id"],
            deployment["operation"]["operation_id"],
        )

        aws_calls.clear()
        assert rollout_handlers.start_item(services, event)["done"] is False
        assert [c for c in aws_calls.calls if c[0] == "dynamodb"] == [("dynamodb", "BatchGetItem")]
        held_lock.set()


def test_an_item_that_ended_before_its_start_is_not_started(local_aws: LocalAws, aws_calls: AwsCalls) -> None:
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        session = local_aws.role_session(local_aws.host.role_of(local_aws.host.api_function))
        table = session.resource("dynamodb", region_name=services.settings.region).Table(
            services.settings.table_name
        )
        store = DynamoRolloutStore(table)
        cancelled = replace(item, status=ItemStatus.CANCELLED, updated_at="2026-01-01T00:00:00Z")
        assert store.end_item(tenant.tenant_id, cancelled)
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        aws_calls.clear()

        assert rollout_handlers.start_item(services, event)["done"] is True
        (after,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert after == cancelled  # nothing written, nothing started
        assert aws_calls.count("dynamodb", "TransactWriteItems") == 0
        assert aws_calls.count("cloudformation") == 0
        assert not store.end_item(tenant.tenant_id, replace(cancelled, status=ItemStatus.SUCCEEDED))


def test_an_item_whose_operation_outlived_its_deadline_fails_instead_of_being_waited_for() -> None:
    """The item's deployment execution is stopped while its stack operation runs, so it never records
    how the operation ended: the record shows it IN_PROGRESS for ever. Within the workflow's own
    deadline (6 h) plus an event wait and 15 min the item waits; past it, PollItem ends the item FAILED
    with the reason, instead of polling on."""
    with (
        local_aws_for_app(simulation=StackSimulation(stack_seconds=30)) as aws,
        wired_rollouts(aws, NoExecution()) as services,
        Client(app_module.app) as client,
    ):
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, aws)["rollout_id"]
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        assert rollout_handlers.start_item(services, event)["done"] is False
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        # Stopped only once StartStackOperation has recorded its stack call (its last write of the record):
        # a step still running when its execution stops writes on, and would undo the edit below.
        polling.until(
            lambda: services.deployments.get(tenant.tenant_id, str(item.deployment_id)),
            ready=lambda d: (
                d.operation.status.value == "IN_PROGRESS" and d.stack_status == "CREATE_IN_PROGRESS"
            ),
            timeout=30,
            what="the item's operation IN_PROGRESS with its CreateStack recorded",
        )

        # Step Functions' status events are best effort: this one is lost, so DeploymentExecutionEnded
        # never ends the record (tests/workflow/test_execution_ended.py covers the event that arrives).
        events = aws.central_session().client("events")
        handler = aws.stack.attribute("DeploymentExecutionEnded", "Arn")
        removed = 0
        for rule in events.list_rules()["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            lost = [t["Id"] for t in targets if t["Arn"] == handler]
            if lost:
                events.remove_targets(Rule=rule["Name"], Ids=lost)
                removed += len(lost)
        assert removed == 1
        sfn = aws.central_session().client("stepfunctions")
        (running,) = sfn.list_executions(
            stateMachineArn=aws.central.state_machine_arn, statusFilter="RUNNING"
        )["executions"]
        sfn.stop_execution(executionArn=running["executionArn"], cause="the test stops it")
        progress = rollout_handlers.poll_item(services, {**event, "progress": {"wait_seconds": 1}})
        assert progress["done"] is False  # it may still end: it is within its deadline

        table = aws.central_session().resource("dynamodb").Table(aws.central.table_name)
        (record,) = [r for r in table.scan()["Items"] if r["sk"] == f"DEPLOYMENT#{item.deployment_id}"]
        table.update_item(  # it started long ago
            Key={"pk": record["pk"], "sk": record["sk"]},
            UpdateExpression="SET #op.started_at = :then",
            ExpressionAttributeNames={"#op": "operation"},
            ExpressionAttributeValues={":then": "2026-01-01T00:00:00Z"},
        )
        operation = services.deployments.get(tenant.tenant_id, str(item.deployment_id)).operation
        assert operation.status.value == "IN_PROGRESS"
        progress = rollout_handlers.poll_item(services, {**event, "progress": {"wait_seconds": 1}})
        assert progress["done"] is True
        (ended,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert ended.status is ItemStatus.FAILED
        assert ended.error is not None
        assert ended.error["code"] == "OPERATION_NOT_SEEN_TO_END"
        assert "deadline" in ended.error["message"]


def test_an_item_cancelled_while_its_start_runs_starts_nothing(
    local_aws: LocalAws, aws_calls: AwsCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollout ends (its items CANCELLED) after a StartItem read the item PENDING and before it
    wrote the operation: that write carries the item's start, only while PENDING, so it is refused
    whole: no deployment, no claim on the stack, no execution; the item stays as its end left it. (The
    start was written, and its operation ran unrecorded on the item, when the item's start was a
    separate write after the operation's.)"""
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        table = local_aws.central_session().resource("dynamodb").Table(local_aws.central.table_name)
        store = DynamoRolloutStore(table)
        (pending,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        cancelled = replace(pending, status=ItemStatus.CANCELLED, updated_at="2026-01-01T00:00:00Z")
        # The create's read of the stack's lock: after StartItem read the item, before it writes the operation.
        stack = stack_key(pending.account_id, pending.region, "fleet")
        holder = DynamoLockStore.lock_holder
        read_locks: list[str] = []

        def cancelled_meanwhile(self: DynamoLockStore, key: str) -> str | None:
            if key == stack and not read_locks:
                read_locks.append(key)
                assert store.end_item(tenant.tenant_id, cancelled)  # the rollout's end, while this start runs
            return holder(self, key)

        monkeypatch.setattr(DynamoLockStore, "lock_holder", cancelled_meanwhile)
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        aws_calls.clear()

        assert rollout_handlers.start_item(services, event)["done"] is True
        assert read_locks == [stack]  # the item was ended meanwhile
        (after,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert after == cancelled
        assert deployments_of(client, tenant) == []
        assert aws_calls.count("dynamodb", "TransactWriteItems") == 1  # the refused one
        assert aws_calls.count("stepfunctions", "StartExecution") == 0
        claims = [r for r in table.scan()["Items"] if str(r["sk"]).startswith("CLAIM#")]
        assert claims == []


def test_a_start_whose_execution_was_throttled_is_started_anew_by_the_retry(
    local_aws: LocalAws, aws_calls: AwsCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StartExecution stays throttled through every round of a start: the operation is recorded FAILED
    (AWS_THROTTLED), and the item, which the operation's write had recorded IN_PROGRESS, is PENDING
    again, so that the step's Retry starts it anew rather than wait for an execution that never began."""
    throttled: list[str] = []
    start = StepFunctionsStarter.start

    def throttling(self: StepFunctionsStarter, name: str, execution_input: dict[str, Any]) -> str:
        if len(throttled) < START_ROUNDS:
            throttled.append(name)
            raise TransientAwsError("StartExecution failed: ThrottlingException")
        return start(self, name, execution_input)

    monkeypatch.setattr(StepFunctionsStarter, "start", throttling)
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}

        with pytest.raises(TransientAwsError):
            rollout_handlers.start_item(services, event)
        (reopened,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert reopened.status is ItemStatus.PENDING
        assert reopened.start_attempted_at is not None
        (failed,) = deployments_of(client, tenant)
        assert (failed["operation"]["status"], failed["error"]["code"]) == ("FAILED", "AWS_THROTTLED")

        assert rollout_handlers.start_item(services, event)["done"] is False  # the Retry
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert item.status is ItemStatus.IN_PROGRESS
        assert item.operation_id != failed["operation"]["operation_id"]
        polled_to_its_end(services, event)
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert (item.status, item.error) == (ItemStatus.SUCCEEDED, None)
        assert aws_calls.count("cloudformation", "CreateStack") == 1
        assert [d["deployment_id"] for d in deployments_of(client, tenant)] == [failed["deployment_id"]]


def test_a_second_run_that_read_the_item_before_the_first_run_started_it_takes_that_start_up(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch, held_lock: threading.Event
) -> None:
    """Two runs of StartItem for one item (a Lambda retry while the first still ran): run B read the
    item PENDING before run A's transaction recorded it started. B's own start is refused (the
    operation runs), and B must not end the item FAILED over A's start: it waits for A's operation."""
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        read = DynamoRolloutStore.item_and_rollout
        first_read: list[Any] = []

        def as_first_read(self: DynamoRolloutStore, *args: Any) -> Any:
            if not first_read:
                first_read.append(read(self, *args))
            return first_read[0]  # run B sees what run A saw: the item PENDING

        monkeypatch.setattr(DynamoRolloutStore, "item_and_rollout", as_first_read)
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        assert rollout_handlers.start_item(services, event)["done"] is False  # run A
        (started,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert started.status is ItemStatus.IN_PROGRESS

        assert rollout_handlers.start_item(services, event)["done"] is False  # run B: waits for A's
        runs_on_to_its_end(services, tenant, event, started, held_lock)


def test_an_item_whose_execution_could_not_start_fails_naming_its_deployment(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StartExecution refused (not a throttle) after the transaction recorded the item started: the
    item ends FAILED with the start's error, and names the deployment that records the same failure."""

    def refusing(self: StepFunctionsStarter, name: str, execution_input: dict[str, Any]) -> str:
        raise DeployerError("StartExecution failed: AccessDeniedException", code="ACCESS_DENIED")

    monkeypatch.setattr(StepFunctionsStarter, "start", refusing)
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}

        assert rollout_handlers.start_item(services, event)["done"] is True
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        (deployment,) = deployments_of(client, tenant)
        assert deployment["operation"]["status"] == "FAILED"
        assert item.status is ItemStatus.FAILED
        assert item.error is not None
        assert item.error["code"] == "ACCESS_DENIED", item.error
        assert (item.deployment_id, item.operation_id) == (
            deployment["deployment_id"],
            deployment["operation"]["operation_id"],
        )


def watch_item_steps(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Each call of PollItem, AwaitItem and RecordItemFailure: (item id, its answer), by step, in order."""
    seen: dict[str, list[tuple[int, dict[str, Any]]]] = {"poll": [], "await": [], "record": []}
    steps = {"poll": "poll_item", "await": "await_item", "record": "record_item_failure"}
    for key, name in steps.items():
        step = getattr(rollout_handlers, name)

        def watched(services: Services, event: dict[str, Any], step: Any = step, key: str = key) -> Any:
            answer = step(services, event)
            seen[key].append((int(event["item_id"]), answer))
            return answer

        monkeypatch.setattr(rollout_handlers, name, watched)
    return seen


def of_item(calls: list[tuple[int, dict[str, Any]]], item_id: int) -> list[dict[str, Any]]:
    return [answer for item, answer in list(calls) if item == item_id]


def test_a_step_that_fails_after_its_item_started_leaves_the_item_to_its_operation(
    client: Client,
    tenant: Tenant,
    local_aws: LocalAws,
    held_lock: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RecordItemFailure (the catch-all of an item's steps) records a step's failure on an item that
    started nothing; an item whose operation was started ends as that operation does. Item 0's StartItem
    fails before it starts anything: FAILED with that step's error. Item 1's fails after it started the
    item's deployment (held at its AcquireLock, so it still runs when RecordItemFailure reads it): the
    iteration polls it again after a Wait, then waits for its end (AwaitItem), which the deployment's
    last step announces once the hold is lifted: the item ends SUCCEEDED with it and no further poll.
    Before, item 1 was FAILED with the step's error while its deployment went on to succeed, and the
    rollout counted that failure."""
    fleet = register_fleet(client, tenant, local_aws, 2)
    start = rollout_handlers.start_item

    def failing_start(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        if event["item_id"] == 0:
            raise ValueError("a fault in StartItem before its start")
        start(services, event)
        raise ValueError("a fault in StartItem after its start")  # Catch States.ALL: RecordItemFailure

    monkeypatch.setattr(rollout_handlers, "start_item", failing_start)
    seen = watch_item_steps(monkeypatch)
    body = rollout_body(fleet, failure_tolerance=1)
    body["targets"] = [{"target_id": t["target_id"], "regions": ["us-east-1"]} for t in fleet]
    rollout_id = start_rollout(client, tenant, body)["rollout_id"]

    # Item 1 waits for its operation's end: the release, not a timed-out wait, must end it.
    polling.until(lambda: of_item(seen["await"], 1), ready=bool, timeout=30, what="item 1's AwaitItem")
    (record_0,) = of_item(seen["record"], 0)
    assert (record_0["done"], record_0["recorded"]) == (True, "INTERNAL_ERROR"), record_0
    (record_1,) = of_item(seen["record"], 1)
    assert (record_1["done"], record_1["recorded"], record_1["completion"]) == (False, None, "poll")
    assert record_1["wait_seconds"] >= 1, record_1  # a Wait before the next poll: no spinning
    running = json.loads(call(client, "GET", f"/rollouts/{rollout_id}", tenant).body)
    item_1 = next(item for item in running["items"] if item["item_id"] == 1)
    assert (item_1["status"], item_1["error"]) == ("IN_PROGRESS", None), item_1
    held_lock.set()

    done = wait_rollout(client, tenant, rollout_id)
    items = {item["item_id"]: item for item in done["items"]}
    assert items[0]["status"] == "FAILED", items[0]
    assert "a fault in StartItem before its start" in items[0]["error"]["message"], items[0]["error"]
    assert items[0]["deployment_id"] is None, items[0]
    assert (items[1]["status"], items[1]["error"]) == ("SUCCEEDED", None), items[1]
    (deployment,) = deployments_of(client, tenant)
    assert deployment["deployment_id"] == items[1]["deployment_id"]
    # One poll after RecordItemFailure's Wait; a lost release would have timed out into a second.
    assert len(of_item(seen["poll"], 1)) == 1, of_item(seen["poll"], 1)
    assert (done["counts"]["FAILED"], done["counts"]["SUCCEEDED"]) == (1, 1), done["counts"]
    assert done["status"] == "SUCCEEDED", done["summary"]


def test_an_item_step_that_keeps_failing_waits_between_its_catches(
    client: Client,
    tenant: Tenant,
    local_aws: LocalAws,
    held_lock: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An item whose wait for its operation's end fails every time (AwaitItem raises), while the operation
    runs: each catch polls again after a Wait of at least 1 s (growing up to the poll maximum, which the
    tests set to 0) instead of going straight back to the failing wait. Over 4 s that is at most 5
    catches; going straight back made hundreds (476 in 6 s), each about 12 events of the iteration's
    history. Once the operation ends, the next catch ends the item as its deployment did."""
    start = rollout_handlers.start_item

    def start_then_fail(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        start(services, event)
        raise ValueError("a fault in StartItem after its start")

    def failing_await(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("a fault in AwaitItem")

    monkeypatch.setattr(rollout_handlers, "start_item", start_then_fail)
    seen = watch_item_steps(monkeypatch)
    monkeypatch.setattr(rollout_handlers, "await_item", failing_await)
    rollout_id = one_item(client, tenant, local_aws)["rollout_id"]

    polling.until(lambda: of_item(seen["record"], 0), ready=bool, timeout=30, what="the first catch")
    time.sleep(4)
    catches = len(of_item(seen["record"], 0))
    assert 1 <= catches <= 5, of_item(seen["record"], 0)
    held_lock.set()

    done = wait_rollout(client, tenant, rollout_id)
    (item,) = done["items"]
    assert (item["status"], item["error"]) == ("SUCCEEDED", None), item
    assert done["status"] == "SUCCEEDED", done["summary"]


def test_a_catch_that_read_the_item_before_its_start_was_recorded_leaves_it_to_that_start(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch, held_lock: threading.Event
) -> None:
    """RecordItemFailure read the item PENDING, and a start of it (a StartItem that ran past its Lambda
    timeout, say) then recorded it started: the catch does not overwrite that start with the step's
    error (an operation would then run for an item recorded FAILED). Its write, only while the item is
    PENDING, is refused; it reads the item again and leaves it to its operation."""
    from chalicelib.service.rollouts.item_ends import RolloutItemEnds

    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        (pending,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        assert rollout_handlers.start_item(services, event)["done"] is False
        (started,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert started.status is ItemStatus.IN_PROGRESS

        read = RolloutItemEnds._step_item
        stale = [pending]  # the catch's read came before the start's transaction

        def read_before_the_start(self: RolloutItemEnds, rollout_id: str, index: int) -> Any:
            return stale.pop() if stale else read(self, rollout_id, index)

        monkeypatch.setattr(RolloutItemEnds, "_step_item", read_before_the_start)
        failure = {"Error": "Sandbox.Timedout", "Cause": "a step that timed out"}
        answer = rollout_handlers.record_item_failure(
            services, {**event, "error": failure, "resumable": True}
        )
        assert (answer["done"], answer["recorded"], answer["completion"]) == (False, None, "poll"), answer
        runs_on_to_its_end(services, tenant, event, started, held_lock)


def test_an_iteration_of_the_earlier_definition_fails_its_item_with_the_steps_error(
    local_aws: LocalAws, held_lock: threading.Event
) -> None:
    """An iteration that an earlier rollout definition started (its Catches put the error in ``$.error``,
    and its RecordItemFailure goes on to ItemEnded whatever it answers) running the new RecordItemFailure,
    as during a deploy of the service: the item is FAILED with the step's error, as then. Left running
    (the new definition's answer), it would end its iteration with the item IN_PROGRESS."""
    with wired_rollouts(local_aws, NoExecution()) as services, Client(app_module.app) as client:
        tenant = Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))
        rollout_id = one_item(client, tenant, local_aws)["rollout_id"]
        event = {"tenant_id": tenant.tenant_id, "rollout_id": rollout_id, "item_id": 0, "wait_seconds": 0}
        assert rollout_handlers.start_item(services, event)["done"] is False  # its operation runs, held
        failure = {"Error": "Sandbox.Timedout", "Cause": "a step that timed out"}
        answer = rollout_handlers.record_item_failure(services, {**event, "error": failure})
        assert (answer["done"], answer["recorded"]) == (True, "STEP_TIMED_OUT"), answer
        (item,) = services.rollouts.get(tenant.tenant_id, rollout_id).items
        assert item.status is ItemStatus.FAILED
        assert item.error is not None
        assert item.error["code"] == "STEP_TIMED_OUT"
        held_lock.set()


def test_the_answer_of_an_older_record_item_failure_ends_the_iteration(
    client: Client, tenant: Tenant, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's code rolled back under this definition: RecordItemFailure answers as it did before
    it could send an item back to waiting, ``{"recorded": code}`` only, having FAILED the item. IsItemDone
    ends the iteration (a progress without ``done``) instead of failing it with States.Runtime, which would
    fail the Map and the whole rollout."""
    record = rollout_handlers.record_item_failure

    def failing_start(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("a fault in StartItem before its start")

    def older_record(services: Services, event: dict[str, Any]) -> dict[str, Any]:
        as_then = {k: v for k, v in event.items() if k != "resumable"}  # it did not know the marker
        return {"recorded": record(services, as_then)["recorded"]}

    monkeypatch.setattr(rollout_handlers, "start_item", failing_start)
    monkeypatch.setattr(rollout_handlers, "record_item_failure", older_record)
    fleet = register_fleet(client, tenant, local_aws, 2)
    body = rollout_body(fleet, failure_tolerance=2)
    body["targets"] = [{"target_id": t["target_id"], "regions": ["us-east-1"]} for t in fleet]
    done = wait_rollout(client, tenant, start_rollout(client, tenant, body)["rollout_id"])
    assert done["status"] == "SUCCEEDED", (done["summary"], done.get("error"))  # within its tolerance
    assert {item["status"] for item in done["items"]} == {"FAILED"}, done["items"]
    assert {item["error"]["code"] for item in done["items"]} == {"INTERNAL_ERROR"}, done["items"]
