"""Fleet rollouts, end to end: the real statemachine/rollout.asl.json (and, for each item, the real
deployment.asl.json) executed by the local AWS, driven only through the HTTP API.

Targets live in distinct accounts. A failing item is made the way it fails on AWS: the target
account already holds a DynamoDB table of the name the template creates, so CloudFormation fails
that resource, and the item's error names the account, region, resource and reason.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.adapters.rollouts import DynamoRolloutStore
from chalicelib.adapters.stepfunctions import StepFunctionsStarter
from chalicelib.composition import Services
from chalicelib.domain.paging import encode_token
from chalicelib.domain.permissions import PermissionProfile
from chalicelib.domain.rollouts import RolloutStatus
from chalicelib.service.executions import START_ROUNDS
from localaws.environment import LocalAws
from tests.conftest import AwsCalls, Tenant, call, create_target_role
from tests.support import polling
from tests.support.faults import refused_once, throttle

REGIONS = ["us-east-1", "eu-west-1"]
TABLE_NAME = "nexus-fleet-table"
TEMPLATE = json.dumps(
    {
        "Resources": {
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": TABLE_NAME,
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                },
            }
        }
    }
)
QUEUE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
ENDED = {"SUCCEEDED", "FAILED", "PAUSED", "CANCELLED", "PLANNED"}


def account(n: int) -> str:
    return f"{300000000000 + n}"


def register_fleet(
    client: Client, tenant: Tenant, aws: LocalAws, count: int, profile: str | PermissionProfile = "default"
) -> list[dict[str, Any]]:
    fleet = []
    for n in range(count):
        response = call(
            client,
            "POST",
            "/targets",
            tenant,
            {
                "name": f"fleet-{n}",
                "account_id": account(n),
                "role_arn": f"arn:aws:iam::{account(n)}:role/NexusDeploymentRole",
                "regions": REGIONS,
            },
        )
        assert response.status_code == 201, response.body
        target = json.loads(response.body)
        create_target_role(aws, target["trust_policy"], account(n), profile=profile)
        fleet.append(target)
    return fleet


def break_account(aws: LocalAws, n: int, region: str = "us-east-1") -> None:
    """Make the template's table fail in this account and region: the name is taken."""
    aws.account_session(account(n)).client("dynamodb", region_name=region).create_table(
        TableName=TABLE_NAME,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )


def rollout_body(fleet: list[dict[str, Any]], **strategy: Any) -> dict[str, Any]:
    return {
        "stack_name": "fleet",
        "template_body": TEMPLATE,
        "targets": [{"target_id": t["target_id"]} for t in fleet],
        "strategy": {"max_concurrent": 10, **strategy},
    }


def start(client: Client, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = call(client, "POST", "/rollouts", tenant, body)
    assert response.status_code == 202, response.body
    started: dict[str, Any] = json.loads(response.body)
    return started


def wait_rollout(
    client: Client, tenant: Tenant, rollout_id: str, until: set[str] = ENDED, timeout: float = 60
) -> dict[str, Any]:
    def shown() -> dict[str, Any]:
        body: dict[str, Any] = json.loads(call(client, "GET", f"/rollouts/{rollout_id}", tenant).body)
        return body

    return polling.until(
        shown,
        ready=lambda body: body["status"] in until,
        timeout=timeout,
        interval=0.1,
        max_interval=0.5,
        what=f"rollout {rollout_id} to settle",
    )


# The fleet: 30 targets x 2 regions (about 45 s per test on 2 cores since the steps share one
# botocore loader); NEXUS_FLEET_TEST_TARGETS sets another size.
FLEET = int(os.environ.get("NEXUS_FLEET_TEST_TARGETS", "30"))
FLEET_TIMEOUT = 30 + 8 * FLEET


CFN_WRITES = ("CreateStack", "UpdateStack", "CreateChangeSet", "ExecuteChangeSet", "DeleteStack")


def cfn_writes(calls: AwsCalls) -> int:
    return sum(calls.count("cloudformation", op) for op in CFN_WRITES)


def stack_count(aws: LocalAws, n: int, region: str) -> int:
    cfn = aws.account_session(account(n)).client("cloudformation", region_name=region)
    return sum(
        1
        for s in cfn.describe_stacks()["Stacks"]
        if s["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    )


def by_status(rollout: dict[str, Any], status: str) -> list[dict[str, Any]]:
    return [i for i in rollout["items"] if i["status"] == status]


# -- waves, canary, pause and resume ---------------------------------------------------------------


def test_failing_canary_pauses_the_fleet_and_resume_continues(
    client: Client, local_aws: LocalAws, tenant: Tenant
) -> None:
    fleet = register_fleet(client, tenant, local_aws, FLEET)
    break_account(local_aws, 0, "us-east-1")
    started = start(client, tenant, rollout_body(fleet, canary=1, region_order=REGIONS))
    assert started["status"] == "PENDING"
    assert [(w["name"], w["items"]) for w in started["waves"]] == [
        ("canary", 1),
        ("us-east-1", FLEET - 1),
        ("eu-west-1", FLEET),
    ]
    assert len(started["items"]) == 2 * FLEET

    paused = wait_rollout(client, tenant, started["rollout_id"])
    assert paused["status"] == "PAUSED"
    (failed,) = by_status(paused, "FAILED")
    assert (failed["account_id"], failed["region"], failed["item_id"]) == (account(0), "us-east-1", 0)
    error = failed["error"]
    assert (error["account_id"], error["region"]) == (account(0), "us-east-1")
    assert "Table (AWS::DynamoDB::Table)" in error["message"]
    assert "already exists" in error["message"]
    assert error["deployment_id"] == failed["deployment_id"]
    assert paused["counts"]["PENDING"] == 2 * FLEET - 1  # nothing after the canary started
    assert all(stack_count(local_aws, n, r) == 0 for n in range(1, FLEET) for r in REGIONS)

    resumed = call(client, "POST", f"/rollouts/{started['rollout_id']}/resume", tenant)
    assert resumed.status_code == 202, resumed.body
    done = wait_rollout(client, tenant, started["rollout_id"], timeout=FLEET_TIMEOUT)
    assert done["status"] == "SUCCEEDED", done["summary"]
    assert (done["counts"]["SUCCEEDED"], done["counts"]["FAILED"]) == (2 * FLEET - 1, 1)
    assert [n for n in range(FLEET) for r in REGIONS if stack_count(local_aws, n, r) != 1] == [0]
    assert call(client, "POST", f"/rollouts/{started['rollout_id']}/resume", tenant).status_code == 409


def test_pause_on_request_stops_between_waves_until_resumed(
    client: Client, local_aws: LocalAws, tenant: Tenant
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 3)
    started = start(client, tenant, rollout_body(fleet, region_order=REGIONS))
    rollout_id = started["rollout_id"]
    paused = call(client, "POST", f"/rollouts/{rollout_id}/pause", tenant)
    assert paused.status_code == 202, paused.body
    stopped = wait_rollout(client, tenant, rollout_id)
    assert stopped["status"] == "PAUSED"
    # Nothing of the second region's wave started (the first may have run, if it started before the ask).
    eu = [i for i in stopped["items"] if i["region"] == "eu-west-1"]
    assert {i["status"] for i in eu} == {"PENDING"}
    assert all(stack_count(local_aws, n, "eu-west-1") == 0 for n in range(3))
    again = call(client, "POST", f"/rollouts/{rollout_id}/pause", tenant)  # paused already: no change
    assert again.status_code == 202
    assert json.loads(again.body)["status"] == "PAUSED"

    assert call(client, "POST", f"/rollouts/{rollout_id}/resume", tenant).status_code == 202
    done = wait_rollout(client, tenant, rollout_id, timeout=120)
    assert done["status"] == "SUCCEEDED", done["summary"]
    assert done["counts"]["SUCCEEDED"] == 6
    ended = call(client, "POST", f"/rollouts/{rollout_id}/pause", tenant)
    assert ended.status_code == 409
    assert json.loads(ended.body)["error"]["code"] == "ROLLOUT_NOT_RUNNING"


def test_a_pause_whose_write_aws_throttled_still_pauses_on_the_steps_retry(
    client: Client, local_aws: LocalAws, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NextWave's write of PAUSED is throttled past botocore's retries: its Retry pauses, because the
    flag is spent in that same write. (Spent first, in a write of its own, the retry found no flag and ran
    the next wave: the operator's pause was lost.)"""
    fleet = register_fleet(client, tenant, local_aws, 2)
    save, refused = refused_once(
        DynamoRolloutStore.save_rollout,
        lambda store, rollout, **_: rollout.rollout_id if rollout.status is RolloutStatus.PAUSED else None,
    )
    monkeypatch.setattr(DynamoRolloutStore, "save_rollout", save)
    rollout_id = start(client, tenant, rollout_body(fleet, region_order=REGIONS))["rollout_id"]
    assert call(client, "POST", f"/rollouts/{rollout_id}/pause", tenant).status_code == 202
    stopped = wait_rollout(client, tenant, rollout_id)
    assert refused == [rollout_id]
    assert stopped["status"] == "PAUSED", stopped["summary"]
    assert {i["status"] for i in stopped["items"] if i["region"] == "eu-west-1"} == {"PENDING"}


def test_passing_canary_rolls_out_to_the_whole_fleet(
    client: Client, local_aws: LocalAws, tenant: Tenant
) -> None:
    fleet = register_fleet(client, tenant, local_aws, FLEET)
    started = start(client, tenant, rollout_body(fleet, canary=2, max_concurrent="50%"))
    assert [(w["name"], w["items"]) for w in started["waves"]] == [("canary", 2), ("all", 2 * FLEET - 2)]
    done = wait_rollout(client, tenant, started["rollout_id"], timeout=FLEET_TIMEOUT)
    assert done["status"] == "SUCCEEDED", done["summary"]
    assert done["counts"]["SUCCEEDED"] == 2 * FLEET
    assert done["summary"].startswith(f"{2 * FLEET} items in {FLEET} accounts: {2 * FLEET} succeeded")
    assert all(stack_count(local_aws, n, r) == 1 for n in range(FLEET) for r in REGIONS)
    # Each item is an ordinary deployment, visible through the deployments API.
    item = done["items"][FLEET // 2]
    deployment = json.loads(call(client, "GET", f"/deployments/{item['deployment_id']}", tenant).body)
    assert (deployment["account_id"], deployment["region"], deployment["status"]) == (
        item["account_id"],
        item["region"],
        "ACTIVE",
    )


def test_failures_over_the_tolerance_stop_new_items_and_fail_naming_them(
    client: Client, local_aws: LocalAws, tenant: Tenant
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 8)
    break_account(local_aws, 1)
    break_account(local_aws, 2)
    body = rollout_body(fleet, max_concurrent=1, failure_tolerance=1)
    body["targets"] = [{"target_id": t["target_id"], "regions": ["us-east-1"]} for t in fleet]
    started = start(client, tenant, body)
    done = wait_rollout(client, tenant, started["rollout_id"])
    assert done["status"] == "FAILED"
    assert [i["status"] for i in done["items"]] == ["SUCCEEDED", "FAILED", "FAILED"] + ["CANCELLED"] * 5
    assert all(i["deployment_id"] is None for i in by_status(done, "CANCELLED"))  # never started
    assert done["error"]["code"] == "FAILURE_TOLERANCE_EXCEEDED"
    assert f"{account(1)}/us-east-1" in done["error"]["message"]
    assert f"{account(2)}/us-east-1" in done["error"]["message"]
    assert [stack_count(local_aws, n, "us-east-1") for n in range(3, 8)] == [0] * 5


def test_cancel_lets_running_items_finish_and_starts_nothing_new(
    client: Client, local_aws: LocalAws, tenant: Tenant
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 6)
    started = start(client, tenant, rollout_body(fleet, max_concurrent=1))
    cancelled = call(client, "POST", f"/rollouts/{started['rollout_id']}/cancel", tenant)
    assert cancelled.status_code == 202, cancelled.body
    done = wait_rollout(client, tenant, started["rollout_id"])
    assert done["status"] == "CANCELLED"
    assert done["counts"]["PENDING"] == done["counts"]["IN_PROGRESS"] == 0
    assert len(by_status(done, "CANCELLED")) >= 10  # at most the first item or two got going
    for item in by_status(done, "SUCCEEDED"):  # one that was running when cancelled finished
        assert stack_count(local_aws, int(item["account_id"]) - 300000000000, item["region"]) == 1
    again = call(client, "POST", f"/rollouts/{started['rollout_id']}/cancel", tenant)
    assert again.status_code == 409
    assert json.loads(again.body)["error"]["code"] == "ROLLOUT_ENDED"


def test_items_come_in_pages_while_counts_cover_every_item(
    client: Client, local_aws: LocalAws, tenant: Tenant, aws_calls: AwsCalls
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 4)
    break_account(local_aws, 1)
    body = rollout_body(fleet, max_concurrent="100%", failure_tolerance="100%")
    rid = start(client, tenant, body)["rollout_id"]
    whole = wait_rollout(client, tenant, rid)
    assert [i["item_id"] for i in whole["items"]] == list(range(8))  # the default page holds all 8
    assert whole["next_token"] is None
    assert whole["counts"]["FAILED"] == 1

    pages: list[list[int]] = []
    token = None
    while True:
        path = f"/rollouts/{rid}?limit=3" + (f"&next_token={token}" if token else "")
        page = json.loads(call(client, "GET", path, tenant).body)
        assert page["counts"] == whole["counts"]  # every page counts every item
        assert page["summary"] == whole["summary"]
        pages.append([i["item_id"] for i in page["items"]])
        token = page["next_token"]
        if token is None:
            break
    assert pages == [[0, 1, 2], [3, 4, 5], [6, 7]]

    failed = json.loads(call(client, "GET", f"/rollouts/{rid}?status=FAILED", tenant).body)
    assert [(i["account_id"], i["region"]) for i in failed["items"]] == [(account(1), "us-east-1")]
    first = json.loads(call(client, "GET", f"/rollouts/{rid}?status=SUCCEEDED&limit=4", tenant).body)
    rest = json.loads(
        call(client, "GET", f"/rollouts/{rid}?status=SUCCEEDED&next_token={first['next_token']}", tenant).body
    )
    assert [i["item_id"] for i in first["items"] + rest["items"]] == [0, 1, 3, 4, 5, 6, 7]

    another_rollout = encode_token({"pk": "ROLLOUT#rol-" + "0" * 24, "sk": "ITEM#00001"})
    a_deployment_listing = encode_token({"pk": f"ROLLOUT#{rid}", "sk": "DEPLOYMENT#dep-1"})
    not_a_number = encode_token({"pk": f"ROLLOUT#{rid}", "sk": "ITEM#\u00b2"})  # str.isdigit() says yes
    aws_calls.clear()
    for query, status, code in [
        ("limit=0", 422, "VALIDATION_FAILED"),
        ("limit=1001", 422, "VALIDATION_FAILED"),
        ("status=DONE", 422, "VALIDATION_FAILED"),
        ("next_token=garbage", 400, "INVALID_NEXT_TOKEN"),
        (f"next_token={another_rollout}", 400, "INVALID_NEXT_TOKEN"),
        (f"next_token={a_deployment_listing}", 400, "INVALID_NEXT_TOKEN"),
        (f"next_token={not_a_number}", 400, "INVALID_NEXT_TOKEN"),
    ]:
        response = call(client, "GET", f"/rollouts/{rid}?{query}", tenant)
        assert (response.status_code, json.loads(response.body)["error"]["code"]) == (status, code), query
    assert aws_calls.calls == []  # refused before anything was read


# -- skip unchanged, plan and apply ----------------------------------------------------------------


def test_rerunning_an_unchanged_rollout_writes_nothing_to_cloudformation(
    client: Client, local_aws: LocalAws, tenant: Tenant, services: Services, aws_calls: AwsCalls
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 5)
    body = rollout_body(fleet, max_concurrent="100%")
    first = wait_rollout(client, tenant, start(client, tenant, body)["rollout_id"])
    assert first["status"] == "SUCCEEDED", first["summary"]
    aws_calls.clear()
    again = wait_rollout(client, tenant, start(client, tenant, body)["rollout_id"])
    assert again["status"] == "SUCCEEDED", again["summary"]
    assert again["counts"]["SKIPPED"] == 10
    assert cfn_writes(aws_calls) == 0
    assert aws_calls.count("sts", "AssumeRole") == 0


def test_plan_reports_per_item_changes_and_a_fleet_summary_then_apply_executes_them(
    client: Client, local_aws: LocalAws, tenant: Tenant, services: Services
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 4)
    body = {**rollout_body(fleet), "mode": "plan"}
    body["targets"] = [{"target_id": t["target_id"], "regions": ["eu-west-1"]} for t in fleet]
    planned = wait_rollout(client, tenant, start(client, tenant, body)["rollout_id"])
    assert planned["status"] == "PLANNED", planned["summary"]
    assert planned["counts"]["PLANNED"] == 4
    for item in planned["items"]:
        assert [(c["action"], c["logical_id"]) for c in item["changes"]] == [("Add", "Table")]
    assert planned["summary"].startswith("4 items in 4 accounts:")
    assert "4 with changes" in planned["summary"]
    assert "0 no-ops" in planned["summary"]
    assert all(stack_count(local_aws, n, "eu-west-1") == 0 for n in range(4))

    applied = call(client, "POST", f"/rollouts/{planned['rollout_id']}/apply", tenant)
    assert applied.status_code == 202, applied.body
    done = wait_rollout(client, tenant, planned["rollout_id"])
    assert done["status"] == "SUCCEEDED", done["summary"]
    assert all(stack_count(local_aws, n, "eu-west-1") == 1 for n in range(4))
    assert call(client, "POST", f"/rollouts/{planned['rollout_id']}/apply", tenant).status_code == 409


def test_a_plan_that_found_no_changes_is_stale_once_its_stack_changed(
    client: Client, local_aws: LocalAws, tenant: Tenant
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 1)
    body = rollout_body(fleet)
    body["targets"] = [{"target_id": fleet[0]["target_id"], "regions": ["us-east-1"]}]
    assert wait_rollout(client, tenant, start(client, tenant, body)["rollout_id"])["status"] == "SUCCEEDED"
    planned = wait_rollout(client, tenant, start(client, tenant, {**body, "mode": "plan"})["rollout_id"])
    assert planned["status"] == "PLANNED", planned["summary"]
    (item,) = planned["items"]
    assert item["changes"] == []
    # The stack changes after the plan: "no changes" no longer holds, so the plan may not be applied.
    changed = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
    put = call(
        client, "PUT", f"/deployments/{item['deployment_id']}", tenant, {"template_body": json.dumps(changed)}
    )
    assert put.status_code == 202, put.body
    polling.until(
        lambda: json.loads(call(client, "GET", f"/deployments/{item['deployment_id']}", tenant).body)[
            "operation"
        ]["status"],
        ready=lambda status: status in ("SUCCEEDED", "FAILED"),
        timeout=30,
        what="the update to end",
    )
    refused = call(client, "POST", f"/rollouts/{planned['rollout_id']}/apply", tenant)
    assert refused.status_code == 409, refused.body
    assert json.loads(refused.body)["error"]["code"] == "PLAN_STALE"


# -- tenancy and validation ------------------------------------------------------------------------


def test_rollouts_are_invisible_to_other_tenants(
    client: Client, local_aws: LocalAws, tenant: Tenant, other_tenant: Tenant
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 1)
    started = start(client, tenant, rollout_body(fleet))
    rid = started["rollout_id"]
    for method, path in [
        ("GET", f"/rollouts/{rid}"),
        ("POST", f"/rollouts/{rid}/cancel"),
        ("POST", f"/rollouts/{rid}/resume"),
        ("POST", f"/rollouts/{rid}/apply"),
    ]:
        response = call(client, method, path, other_tenant)
        assert response.status_code == 404, (path, response.body)
    # Another tenant's target is "not found" in a rollout, exactly like a made-up one.
    response = call(client, "POST", "/rollouts", other_tenant, rollout_body(fleet))
    assert response.status_code == 422
    assert json.loads(response.body)["error"]["code"] == "TARGET_NOT_FOUND"
    assert wait_rollout(client, tenant, rid)["status"] == "SUCCEEDED"


def test_rollouts_are_listed_with_filters_and_pages(
    client: Client, local_aws: LocalAws, tenant: Tenant, other_tenant: Tenant
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 2)
    planned = start(client, tenant, {**rollout_body(fleet), "mode": "plan"})["rollout_id"]
    applied = start(client, tenant, {**rollout_body(fleet[1:]), "stack_name": "other"})["rollout_id"]
    assert wait_rollout(client, tenant, planned)["status"] == "PLANNED"
    assert wait_rollout(client, tenant, applied)["status"] == "SUCCEEDED"

    def listed(query: str, who: Tenant = tenant) -> dict[str, Any]:
        response = call(client, "GET", f"/rollouts?{query}", who)
        assert response.status_code == 200, response.body
        page: dict[str, Any] = json.loads(response.body)
        return page

    everything = listed("")
    assert {r["rollout_id"] for r in everything["items"]} == {planned, applied}
    assert everything["next_token"] is None
    summary = next(r for r in everything["items"] if r["rollout_id"] == planned)
    assert summary["item_count"] == 4
    assert summary["mode"] == "plan"
    assert "items" not in summary  # GET /rollouts/{id} pages them
    assert [r["rollout_id"] for r in listed("status=PLANNED")["items"]] == [planned]
    assert [r["rollout_id"] for r in listed("stack_name=other")["items"]] == [applied]
    assert [r["rollout_id"] for r in listed(f"target_id={fleet[0]['target_id']}")["items"]] == [planned]
    assert {r["rollout_id"] for r in listed(f"target_id={fleet[1]['target_id']}")["items"]} == {
        planned,
        applied,
    }
    first = listed("limit=1")
    assert len(first["items"]) == 1
    second = listed(f"limit=1&next_token={first['next_token']}")
    assert {first["items"][0]["rollout_id"], second["items"][0]["rollout_id"]} == {planned, applied}
    assert second["next_token"] is None
    assert listed("", other_tenant)["items"] == []
    stolen = call(client, "GET", f"/rollouts?next_token={first['next_token']}", other_tenant)
    assert stolen.status_code == 400
    for wrong in ("status=DONE", "limit=0", "target_id=tgt-1", "stack_name=1bad"):
        assert call(client, "GET", f"/rollouts?{wrong}", tenant).status_code == 422, wrong


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"targets": []}, "targets"),
        ({"strategy": {"max_concurrent": 0}}, "strategy.max_concurrent"),
        ({"strategy": {"max_concurrent": "0%"}}, "strategy.max_concurrent"),
        ({"strategy": {"failure_tolerance": "150%"}}, "strategy.failure_tolerance"),
        ({"strategy": {"canary": True}}, "strategy.canary"),
        ({"strategy": {"region_order": ["us-east-1", "us-east-1"]}}, "strategy.region_order"),
        ({"strategy": {"region_order": "sequential"}}, "strategy.region_order"),
        ({"mode": "yolo"}, "mode"),
        ({"stack_name": "1bad"}, "stack_name"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_malformed_rollouts_are_refused_before_any_aws_call(
    client: Client, tenant: Tenant, aws_calls: AwsCalls, change: dict[str, Any], field: str
) -> None:
    body = {**rollout_body([{"target_id": "tgt-" + "0" * 24}]), **change}
    aws_calls.clear()
    response = call(client, "POST", "/rollouts", tenant, body)
    assert response.status_code == 422, response.body
    error = json.loads(response.body)["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert any(d["field"].startswith(field) for d in error["details"]), error
    assert aws_calls.calls == []


def test_a_rollout_whose_body_names_every_region_is_checked_before_the_targets_are_read(
    client: Client, local_aws: LocalAws, tenant: Tenant, aws_calls: AwsCalls
) -> None:
    """With every target's regions in the body, the item count and region_order need no read: refused
    with no AWS call. (The targets need not exist: they would be read only after.)"""
    targets = [{"target_id": f"tgt-{n:024x}", "regions": ["us-east-1", "eu-west-1"]} for n in range(1001)]
    register_fleet(client, tenant, local_aws, 1)  # the tenant's token looked up once, as for any request
    cases: list[tuple[dict[str, Any], str]] = [
        ({"targets": targets[:1], "strategy": {"region_order": ["us-east-1"]}}, "REGION_ORDER_MISMATCH"),
        ({"targets": targets}, "TOO_MANY_ITEMS"),  # 2,002 items
    ]
    for change, code in cases:
        for key in ({}, {"Idempotency_Key": f"key-{code}"}):  # under a key too: no record written
            aws_calls.clear()
            response = call(client, "POST", "/rollouts", tenant, {**rollout_body([]), **change}, **key)
            assert response.status_code == 422, response.body
            assert json.loads(response.body)["error"]["code"] == code
            assert aws_calls.calls == []


def test_rollouts_the_fleet_cannot_take_are_refused_before_anything_is_written(
    client: Client, local_aws: LocalAws, tenant: Tenant, aws_calls: AwsCalls
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 2)
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"targets": [{"target_id": fleet[0]["target_id"], "regions": ["ap-south-1"]}]},
            "REGION_NOT_ENABLED",
        ),
        ({"strategy": {"region_order": ["us-east-1"]}}, "REGION_ORDER_MISMATCH"),
        ({"template_body": "not: [a template"}, "INVALID_TEMPLATE"),
        ({"parameters": {"Nope": "x"}}, "PARAMETERS_MISMATCH"),
        ({"targets": [{"target_id": "tgt-" + "0" * 24}]}, "TARGET_NOT_FOUND"),
    ]
    aws_calls.clear()
    for change, code in cases:
        response = call(client, "POST", "/rollouts", tenant, {**rollout_body(fleet), **change})
        assert response.status_code == 422, response.body
        assert json.loads(response.body)["error"]["code"] == code
    writes = [c for c in aws_calls.calls if c[1] in ("PutItem", "BatchWriteItem", "StartExecution")]
    assert writes == []
    assert call(client, "POST", "/rollouts", None, rollout_body(fleet)).status_code == 401
    assert call(client, "GET", "/rollouts/rol-" + "0" * 24, tenant).status_code == 404
    assert call(client, "GET", "/rollouts/nope", tenant).status_code == 404


def _throttle_rollout_starts(monkeypatch: pytest.MonkeyPatch, times: int) -> list[str]:
    """The next ``times`` starts of a rollout's execution fail as the Step Functions adapter fails a
    StartExecution that AWS still throttles once botocore's own retries are spent (TransientAwsError);
    the execution names they were asked for. A deployment's executions (named after their operation)
    start untouched."""
    original = StepFunctionsStarter.start
    throttled: list[str] = []

    def start_throttled(
        self: StepFunctionsStarter, execution_name: str, execution_input: dict[str, Any]
    ) -> str:
        if execution_name.startswith("rol-") and len(throttled) < times:
            throttled.append(execution_name)
            raise throttle()
        return original(self, execution_name, execution_input)

    monkeypatch.setattr(StepFunctionsStarter, "start", start_throttled)
    return throttled


def test_a_rollout_whose_start_aws_throttled_is_started_by_the_next_round(
    client: Client, local_aws: LocalAws, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollout's record is written before its execution starts: a StartExecution still throttled
    after botocore's retries is tried again (START_ROUNDS, as a deployment's operation is), not
    recorded as the rollout's failure."""
    fleet = register_fleet(client, tenant, local_aws, 2)
    throttled = _throttle_rollout_starts(monkeypatch, START_ROUNDS - 1)
    started = start(client, tenant, rollout_body(fleet))
    done = wait_rollout(client, tenant, started["rollout_id"], timeout=FLEET_TIMEOUT)
    assert done["status"] == "SUCCEEDED", done
    assert len(throttled) == START_ROUNDS - 1
    sfn = local_aws.central_session().client("stepfunctions")
    runs = sfn.list_executions(stateMachineArn=local_aws.central.rollout_state_machine_arn)["executions"]
    assert [r["name"] for r in runs] == throttled[:1]  # the one name each round asked for, started once


def test_a_rollout_whose_start_aws_throttled_every_round_is_recorded_failed_and_answered_503(
    client: Client, local_aws: LocalAws, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = register_fleet(client, tenant, local_aws, 2)
    throttled = _throttle_rollout_starts(monkeypatch, START_ROUNDS)
    response = call(client, "POST", "/rollouts", tenant, rollout_body(fleet))
    assert len(throttled) == START_ROUNDS
    assert len(set(throttled)) == 1  # one rollout's execution, asked for each round
    assert response.status_code == 503, response.body
    assert json.loads(response.body)["error"]["code"] == "AWS_THROTTLED"
    listed = json.loads(call(client, "GET", "/rollouts", tenant).body)["items"]
    assert [(r["status"], r["error"]["code"]) for r in listed] == [("FAILED", "AWS_THROTTLED")]
