"""A role granted exactly the guide's policy, through the real workflow on a local AWS that enforces it.

The guide's "Minimum Required Permissions", pasted verbatim (``chalicelib/data/required-permissions.json``),
lacks the change-set actions and any SQS action. On AWS that role creates a bucket but cannot update it,
and cannot create a queue; the local AWS now refuses the same, in AWS's words, and the service reports it.
The ``default`` profile (the guide plus ``GUIDE_CORRECTIONS``) does both.
"""

from __future__ import annotations

from tests.conftest import guide_profile, register_target
from tests.workflow.lifecycle_helpers import accepted, create, put, settle

BUCKET = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}
QUEUE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}


def test_an_update_by_the_guides_role_fails_access_denied_naming_create_change_set(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, profile=guide_profile())
    did = accepted(create(client, tenant, target, BUCKET))["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"

    accepted(put(client, tenant, did, tags={"team": "a"}))
    failed = settle(client, tenant, did)

    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "ACCESS_DENIED"
    session = f"assumed-role/NexusDeploymentRole/nexus-{failed['operation']['operation_id']}"
    assert (
        f"{session} is not authorized to perform: cloudformation:CreateChangeSet on resource: "
        "arn:aws:cloudformation:us-east-1:111111111111:stack/s/"
    ) in failed["error"]["message"]
    assert failed["stack_status"] == "CREATE_COMPLETE"  # the stack itself is untouched


def test_a_queue_by_the_guides_role_ends_create_failed_naming_sqs_create_queue(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws, profile=guide_profile())

    did = accepted(create(client, tenant, target, QUEUE))["deployment_id"]
    failed = settle(client, tenant, did)

    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "STACK_CREATE_FAILED"
    assert "resource Queue (AWS::SQS::Queue) failed" in failed["error"]["message"]
    assert "is not authorized to perform: sqs:CreateQueue" in failed["error"]["message"]
    assert failed["stack_status"] == "ROLLBACK_COMPLETE"


def test_the_default_profile_does_both(client, tenant, local_aws):
    target = register_target(client, tenant, local_aws)  # bootstrapped with the default profile
    did = accepted(
        create(client, tenant, target, {"Resources": {**BUCKET["Resources"], **QUEUE["Resources"]}})
    )["deployment_id"]
    assert settle(client, tenant, did)["status"] == "ACTIVE"

    accepted(put(client, tenant, did, tags={"team": "a"}))

    assert settle(client, tenant, did)["status"] == "ACTIVE"
