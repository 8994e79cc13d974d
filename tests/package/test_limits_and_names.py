"""What the packaged template (build/sam.json) sets so that the service works within AWS's limits:
timeouts that fit what waits on them, concurrency of the API's own, and names that let two stages
share an account. Split from test_template.py (the resources and their permissions).
"""

from __future__ import annotations

import json

from infra.package import DEFINITION_PATH, ROLLOUT_DEFINITION_PATH
from tests.package.conftest import ROOT, STACK, Packaged

# -- settings that work on AWS, and names that let two stages share an account ----------------------


def test_the_api_answers_within_api_gateways_timeout_with_concurrency_of_its_own(packaged: Packaged) -> None:
    api = packaged.resources["APIHandler"]["Properties"]
    assert api["Timeout"] < 29  # API Gateway's integration timeout
    # What the API waits for synchronously must end first.
    assert packaged.resources["InspectTarget"]["Properties"]["Timeout"] < api["Timeout"]
    assert api["ReservedConcurrentExecutions"] == {"Ref": "ApiReservedConcurrency"}
    parameter = packaged.template["Parameters"]["ApiReservedConcurrency"]
    assert parameter["MinValue"] >= 1  # 0 would throttle every request
    assert parameter["MaxValue"] <= 900  # Lambda keeps 100 of an account's 1,000 unreserved


def test_start_items_wait_covers_its_own_lambda_timeout(packaged: Packaged) -> None:
    """StartItem's task waits ``event_timeout + START_SECONDS``; START_SECONDS is its Lambda timeout, so
    that when the wait times out no StartItem of it still runs (PollItem then reads a settled item)."""
    from chalicelib.service.rollouts import START_SECONDS

    assert packaged.resources["StartItem"]["Properties"]["Timeout"] == START_SECONDS


# The functions whose events start redeploys, each behind a claim of (deployment, revision):
# chalicelib/events/handlers.py (redeploy requested by EventBridge or SNS, a template object changed).
REDEPLOY_CLAIMERS = ("RedeployRequested", "RedeployMessage", "TemplateObjectCreated")


def test_a_redeploy_claim_outlives_the_function_that_made_it(packaged: Packaged) -> None:
    """A claim older than its lease is taken over as its claimer's (chalicelib/service/redeploys.py):
    the claimer must have ended by then, so each claiming function's Lambda timeout is shorter than the
    lease. Raising one of these timeouts past it would let a live claim be taken over (two redeploys
    of one revision): this fails first."""
    from chalicelib.service.redeploys import RedeploySettings

    lease = RedeploySettings().claim_lease_seconds
    timeouts = {name: packaged.resources[name]["Properties"]["Timeout"] for name in REDEPLOY_CLAIMERS}
    assert all(seconds < lease for seconds in timeouts.values()), (timeouts, lease)
    for name in REDEPLOY_CLAIMERS:  # each one of the app's event handlers, asynchronously invoked
        assert packaged.resources[name]["Properties"]["Events"], name


def _task_states(states: dict[str, object]) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for name, state in states.items():
        assert isinstance(state, dict)
        if state["Type"] == "Task":
            found[name] = state
        if state["Type"] == "Map":
            found.update(_task_states(state["ItemProcessor"]["States"]))
    return found


def test_a_throttled_step_is_retried_for_minutes_and_within_its_locks_lease() -> None:
    """A step that AWS still throttled after botocore's retries raises TransientAwsError, which its
    Retry takes again: at least 7 attempts (5 gave up within about a minute of 30% throttling in the
    chaos run of 2026-12-07: one operation of 100 FAILED), their waits (full jitter) at most 255 s in
    all. The stack lock's lease (NEXUS_LOCK_LEASE_SECONDS, 900 s) is renewed by the steps, not by the
    waits between a step's attempts: a PollStack retried to its last attempt after the longest event
    wait (NEXUS_EVENT_TIMEOUT_SECONDS, 600 s by default) still renews it in time."""
    from chalicelib.settings import Settings

    lease = Settings.model_fields["lock_lease_seconds"].default
    event_wait = Settings.model_fields["event_timeout_seconds"].default
    for path in (DEFINITION_PATH, ROLLOUT_DEFINITION_PATH):
        tasks = _task_states(json.loads((ROOT / path).read_text())["States"])
        assert tasks, path
        for name, state in tasks.items():
            retriers = state["Retry"]
            assert isinstance(retriers, list)
            (retry,) = [r for r in retriers if r["ErrorEquals"] == ["TransientAwsError"]]
            waits = [
                min(retry["IntervalSeconds"] * retry["BackoffRate"] ** n, retry["MaxDelaySeconds"])
                for n in range(retry["MaxAttempts"])
            ]
            assert retry["MaxAttempts"] >= 7, (path, name)
            assert event_wait + sum(waits) < lease, (path, name, waits)


def test_names_are_the_stacks_own(packaged: Packaged) -> None:
    """Two stages (two stacks) in one account share no name: no collision, no reach into each other."""
    named = {
        "DeploymentStateMachine": f"{STACK}-deployment",
        "RolloutStateMachine": f"{STACK}-rollout",
        "RedeployRequestTopic": f"{STACK}-redeploy-requests",
    }
    for logical_id, name in named.items():
        assert packaged.physical_name(logical_id) == name
    for logical_id, group in packaged.of_type("AWS::Logs::LogGroup").items():
        assert STACK in packaged.resolve(group["Properties"]["LogGroupName"]), logical_id
    for name, function in packaged.of_type("AWS::Serverless::Function").items():
        variables = packaged.resolve(function["Properties"]["Environment"]["Variables"])
        for prefix in ("NEXUS_WEBHOOK_SECRET_PREFIX", "NEXUS_PARAMETER_SECRET_PREFIX"):
            assert f"/{STACK}/" in variables[prefix], (name, prefix)
    # Every name of a resource the stack creates is its own: given with the stack's name, or generated
    # by CloudFormation (which starts it with the stack's name). Other "...Name" properties refer to
    # something else (the default bus, the API's own stage, a metric) or name nothing (DisplayName).
    naming = {
        "AWS::SNS::Topic": "TopicName",
        "AWS::StepFunctions::StateMachine": "StateMachineName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::IAM::Role": "RoleName",
        "AWS::S3::Bucket": "BucketName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::CloudWatch::Alarm": "AlarmName",
        "AWS::CloudWatch::Dashboard": "DashboardName",
        "AWS::Events::Rule": "Name",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::Serverless::Api": "Name",
        "AWS::Serverless::Function": "FunctionName",
    }
    checked = 0
    for logical_id, resource in packaged.resources.items():
        key = naming.get(resource["Type"])
        if key is None or key not in resource.get("Properties", {}):
            continue
        checked += 1
        assert STACK in str(packaged.resolve(resource["Properties"][key])), (logical_id, key)
    assert checked >= 20  # the log groups, the state machines, the topic, the API


def test_no_arn_names_the_aws_partition(packaged: Packaged) -> None:
    """GovCloud and China deploy the same template: every ARN takes ${AWS::Partition}."""
    text = json.dumps(packaged.template)
    assert "arn:aws:" not in text
    for path in (DEFINITION_PATH, ROLLOUT_DEFINITION_PATH):
        assert "arn:aws" not in path.read_text()


def test_each_grant_a_customer_makes_names_a_role_the_stack_outputs(packaged: Packaged) -> None:
    """Trust policies, bucket policies and topic policies name one principal each, and the stack says
    which: the hints and the README name the same outputs."""
    outputs = packaged.template["Outputs"]
    assert outputs["ServiceRoleArn"]["Value"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}
    assert outputs["TemplateReaderRoleArn"]["Value"] == {"Fn::GetAtt": ["ApiRole", "Arn"]}
    assert outputs["NotifierRoleArn"]["Value"] == {"Fn::GetAtt": ["NotifierRole", "Arn"]}
    assert "StackEventsBusArn" in outputs
    assert "RedeployTopicArn" in outputs
    # The functions that read template objects name their reader in their hints.
    for name in ("APIHandler", "TemplateObjectCreated", "RedeployRequested", "RedeployMessage"):
        variables = packaged.resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["NEXUS_TEMPLATE_READER_ROLE_ARN"] == {"Fn::GetAtt": ["ApiRole", "Arn"]}, name
    readme = (ROOT / "README.md").read_text()
    for output in ("ServiceRoleArn", "TemplateReaderRoleArn", "NotifierRoleArn"):
        assert output in readme, output
