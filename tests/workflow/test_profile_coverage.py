"""Both permission profiles cover every action the deployer calls in a target account.

The set of actions is not written down here: it is recorded from the service's own calls. Every botocore
client created while the test runs gets a ``before-call`` handler (botocore's event system) when its
credentials are a role session in a target account; the test then drives each operation the service
performs there (validate, create, update, no-op update, plan and apply, cancel, continue-rollback, drift,
delete) through the API and the real state machine, and compares what was called with each profile.

The local AWS enforces the role's policies meanwhile (``localaws.authorization``), so the operations
themselves also fail when the bootstrapped ``default`` profile lacks an action they need.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import botocore.session
import pytest

from chalicelib.domain.permissions import PROFILE_NAMES, load_profile
from localaws import authorization
from localaws.cloudformation import StackSimulation, install
from localaws.environment import CENTRAL_ACCOUNT
from localaws.policy import PolicySource, evaluate
from tests.conftest import call, register_target
from tests.support.polling import until
from tests.workflow.lifecycle_helpers import (
    FAILING_SUBNET,
    PROTECTED_TABLE,
    QUEUE,
    accepted,
    create,
    put,
    settle,
    with_resources,
)

# What the bootstrap template grants the deployment role beside its profile (NexusSelfCheck): the
# validate check simulates the role's own permissions with it.
BESIDE_THE_PROFILE = {"iam:SimulatePrincipalPolicy"}


def _target_role_session(access_key: str) -> bool:
    """True when ``access_key`` is a role session in a target account (not the central account)."""
    from moto.iam.models import get_account_id_from

    account = get_account_id_from(access_key)
    return (
        account != CENTRAL_ACCOUNT and authorization.principal_for_key(account, "aws", access_key) is not None
    )


def _record(calls: set[str], model: Any, **_: Any) -> None:
    calls.add(f"{model.service_model.signing_name}:{model.name}")


@pytest.fixture
def target_calls(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The actions called with target-account role credentials while the test runs."""
    calls: set[str] = set()
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        credentials = self.get_credentials()
        if credentials is not None and _target_role_session(credentials.access_key):
            client.meta.events.register("before-call", functools.partial(_record, calls))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    return calls


def granted(profile: str, action: str) -> bool:
    document = load_profile(profile).document
    return evaluate([PolicySource(profile, "none", document)], action).allowed


def stack_status(client: Any, tenant: Any, did: str) -> str:
    return str(json.loads(call(client, "GET", f"/deployments/{did}", tenant).body)["stack_status"])


def drive_every_operation(client: Any, tenant: Any, local_aws: Any) -> None:
    target = register_target(client, tenant, local_aws)
    assert json.loads(call(client, "POST", f"/targets/{target['target_id']}/validate", tenant).body)["ok"]

    did = accepted(create(client, tenant, target, QUEUE))["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    accepted(put(client, tenant, did, template=QUEUE))  # no changes: a change set that finds none
    assert settle(client, tenant, did)["status"] == "ACTIVE"
    two_queues = with_resources(QUEUE, Q2={"Type": "AWS::SQS::Queue"})
    accepted(put(client, tenant, did, template=two_queues, mode="plan"))
    assert settle(client, tenant, did)["operation"]["status"] == "PLANNED"
    accepted(call(client, "POST", f"/deployments/{did}/apply", tenant))
    assert settle(client, tenant, did)["status"] == "ACTIVE"

    # (an update that keeps Q2: the local AWS deletes what an update removes at once, so a cancel could
    # not bring it back as AWS's, which cancels before the cleanup, does)
    slower = with_resources(
        two_queues, Q={"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 99}}
    )
    install(StackSimulation(stack_seconds=4))  # the update stays UPDATE_IN_PROGRESS long enough to cancel
    try:
        accepted(put(client, tenant, did, template=slower))
        until(
            lambda: stack_status(client, tenant, did) == "UPDATE_IN_PROGRESS",
            timeout=10,
            interval=0.02,
            what="UPDATE_IN_PROGRESS",
        )
        accepted(call(client, "POST", f"/deployments/{did}/cancel", tenant))
        assert settle(client, tenant, did)["operation"]["status"] == "CANCELLED"
    finally:
        install(StackSimulation(stack_seconds=0))

    # An update whose rollback cannot delete a protected table, then continue-rollback skipping it.
    accepted(
        put(
            client,
            tenant,
            did,
            template=with_resources(
                two_queues, Tab=PROTECTED_TABLE, Net={**FAILING_SUBNET, "DependsOn": "Tab"}
            ),
        )
    )
    assert settle(client, tenant, did)["stack_status"] == "UPDATE_ROLLBACK_FAILED"
    accepted(
        call(client, "POST", f"/deployments/{did}/continue-rollback", tenant, {"resources_to_skip": ["Tab"]})
    )
    assert settle(client, tenant, did)["stack_status"] == "UPDATE_ROLLBACK_COMPLETE"

    (drift,) = local_aws.fire_schedule("DriftCheckDriftCheckEvent")  # the template's schedule comes due
    checked = drift["drift"]
    assert checked == {"IN_SYNC": 1}, checked

    accepted(call(client, "DELETE", f"/deployments/{did}", tenant))
    deleted = settle(client, tenant, did)
    assert deleted["status"] == "DELETED", deleted["error"]["message"]


def test_both_profiles_cover_every_action_the_deployer_calls_in_a_target_account(
    client, tenant, local_aws, target_calls
):
    drive_every_operation(client, tenant, local_aws)

    called = set(target_calls)
    # Each operation driven above was seen: the recording is complete, not just non-empty.
    assert {
        "sts:GetCallerIdentity",
        "iam:SimulatePrincipalPolicy",
        "cloudformation:CreateStack",
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:CancelUpdateStack",
        "cloudformation:ContinueUpdateRollback",
        "cloudformation:DetectStackDrift",
        "cloudformation:DescribeStackDriftDetectionStatus",
        "cloudformation:DeleteStack",
    } <= called, sorted(called)
    missing = {
        profile: sorted(a for a in called - BESIDE_THE_PROFILE if not granted(profile, a))
        for profile in PROFILE_NAMES
    }
    assert missing == {profile: [] for profile in PROFILE_NAMES}, sorted(called)
