"""What the packaged template (build/sam.json) must hold for the service to work on real AWS.

The state machine runs statemachine/deployment.asl.json with each placeholder bound to the chalice
function of that name; every function gets the settings chalicelib/settings.py requires; and IAM
is least privilege: checked on the statements themselves and by evaluating the policies (moto's
IAM policy evaluator) against the ARNs CloudFormation would give the resources.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import app as app_module
from chalicelib.settings import Settings
from infra.package import (
    DEFINITION_PATH,
    MERGE_TEMPLATE_PATH,
    ROLLOUT_DEFINITION_PATH,
    PackageError,
    check_packaged,
    function_runtime,
    placeholders,
    render_merge_template,
)
from localaws.policy import PolicySource, evaluate
from tests.package.conftest import ACCOUNT, REGION, ROOT, STACK, Packaged

STEPS = {f.name: f for f in app_module.app.pure_lambda_functions}
# Event handlers (chalicelib/events/handlers.py): EventBridge rules, the SNS subscription, the schedule.
EVENT_HANDLERS = {source.name: source for source in app_module.app.event_sources}
MACHINES = {"DeploymentStateMachine": DEFINITION_PATH, "RolloutStateMachine": ROLLOUT_DEFINITION_PATH}
TARGET = "111122223333"
# The steps that call sts:AssumeRole (chalicelib/service/workflow/starting.py and polling.py, via
# WorkflowService._stacks).
ASSUMING_STEPS = ("StartStackOperation", "PollStack")


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def permission_policies(packaged: Packaged) -> dict[str, list[dict[str, Any]]]:
    """Each role's policy documents, inline and attached (AWS::IAM::Policy), intrinsics unresolved."""
    found = {
        name: [policy["PolicyDocument"] for policy in role["Properties"].get("Policies", [])]
        for name, role in packaged.of_type("AWS::IAM::Role").items()
    }
    for policy in packaged.of_type("AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            found[role["Ref"]].append(policy["Properties"]["PolicyDocument"])
    return found


def permitted(
    packaged: Packaged, role: str, action: str, resource: str, context: dict[str, str] | None = None
) -> bool:
    """IAM's decision on the role's policies: the local AWS's evaluator (conditions included), on the
    ARN as given (a policy's ``*`` matches it; a scoped policy must name it)."""
    sources = [
        PolicySource(f"{role}-{n}", "role", packaged.resolve(d))
        for n, d in enumerate(permission_policies(packaged)[role])
    ]
    return evaluate(sources, action, resource, context or {}, any_resource=False).allowed


# -- the workflow -------------------------------------------------------------------------------


def test_state_machine_runs_the_asl_file_with_one_substitution_per_placeholder(packaged: Packaged) -> None:
    machine = packaged.of_type("AWS::StepFunctions::StateMachine")
    assert sorted(machine) == ["DeploymentStateMachine", "RolloutStateMachine"]
    named: set[str] = set()
    for logical_id, path in MACHINES.items():
        properties = machine[logical_id]["Properties"]
        text = path.read_text()

        assert properties["Definition"] == json.loads(text)
        assert "DefinitionString" not in properties
        assert "DefinitionS3Location" not in properties
        assert set(properties["DefinitionSubstitutions"]) == placeholders(text)
        named |= placeholders(text)
        for name, value in properties["DefinitionSubstitutions"].items():
            if name == "LambdaInvokeWaitForTaskToken":  # the service integration, in the stack's partition
                assert value == {"Fn::Sub": "arn:${AWS::Partition}:states:::lambda:invoke.waitForTaskToken"}
                continue
            assert value == {"Fn::GetAtt": [name, "Arn"]}
            function = packaged.resources[name]
            assert function["Type"] == "AWS::Serverless::Function"
            assert function["Properties"]["Handler"] == STEPS[name].handler_string
    assert named == set(STEPS) - {"InspectTarget"} | {"LambdaInvokeWaitForTaskToken"}


def test_state_machine_logs_to_a_log_group_with_retention(packaged: Packaged) -> None:
    properties = packaged.resources["DeploymentStateMachine"]["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    logging = properties["LoggingConfiguration"]
    assert logging["Level"] in {"ERROR", "ALL", "FATAL"}
    (destination,) = logging["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert packaged.resources[group]["Type"] == "AWS::Logs::LogGroup"
    assert packaged.resolve(packaged.resources[group]["Properties"]["RetentionInDays"]) == "30"


def test_rendering_refuses_substitutions_that_do_not_match_the_placeholders() -> None:
    merge = json.loads(MERGE_TEMPLATE_PATH.read_text())
    text = DEFINITION_PATH.read_text()
    substitutions = merge["Resources"]["DeploymentStateMachine"]["Properties"]["DefinitionSubstitutions"]

    rendered = render_merge_template(merge, text)
    assert rendered["Resources"]["DeploymentStateMachine"]["Properties"]["Definition"] == json.loads(text)
    assert "Definition" not in merge["Resources"]["DeploymentStateMachine"]["Properties"]  # not mutated

    missing = json.loads(json.dumps(merge))
    del missing["Resources"]["DeploymentStateMachine"]["Properties"]["DefinitionSubstitutions"]["PollStack"]
    with pytest.raises(PackageError, match="PollStack"):
        render_merge_template(missing, text)

    extra = json.loads(json.dumps(merge))
    extra["Resources"]["DeploymentStateMachine"]["Properties"]["DefinitionSubstitutions"]["Ghost"] = "x"
    with pytest.raises(PackageError, match="Ghost"):
        render_merge_template(extra, text)

    pasted = json.loads(json.dumps(merge))
    pasted["Resources"]["DeploymentStateMachine"]["Properties"]["DefinitionString"] = text
    with pytest.raises(PackageError, match="must not carry a definition"):
        render_merge_template(pasted, text)
    assert len(substitutions) == len(placeholders(text))


# -- the functions ------------------------------------------------------------------------------


def test_every_function_gets_the_settings_the_code_requires(packaged: Packaged) -> None:
    functions = packaged.of_type("AWS::Serverless::Function")
    assert set(functions) == {"APIHandler", *STEPS, *EVENT_HANDLERS}
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["NEXUS_TABLE_NAME"] == {"Ref": "DeploymentsTable"}
        assert variables["NEXUS_SERVICE_ROLE_ARN"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}
        # What chalicelib/settings.py makes of them, with the AWS_REGION Lambda sets.
        settings = Settings.from_env({**packaged.resolve(variables), "AWS_REGION": REGION})
        assert settings.table_name == packaged.physical_name("DeploymentsTable"), name
        assert settings.service_principal_arn == f"arn:aws:iam::{ACCOUNT}:role/nexus-ServiceRole"
    api = functions["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api["NEXUS_STATE_MACHINE_ARN"] == {"Ref": "DeploymentStateMachine"}


def test_the_principal_targets_trust_is_the_role_of_the_steps_that_assume(packaged: Packaged) -> None:
    for name in ASSUMING_STEPS:
        properties = packaged.resources[name]["Properties"]
        assert properties["Role"] == properties["Environment"]["Variables"]["NEXUS_SERVICE_ROLE_ARN"]
    outputs = packaged.template["Outputs"]
    assert outputs["ServiceRoleArn"]["Value"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}


def test_functions_run_the_python_of_their_native_dependencies(packaged: Packaged) -> None:
    runtime = function_runtime(json.loads(MERGE_TEMPLATE_PATH.read_text()))
    check_packaged(packaged.template, runtime)
    version = runtime.removeprefix("python").replace(".", "")
    names = packaged.zip_names()
    assert {"app.py", "chalicelib/settings.py", "chalicelib/steps/handlers.py"} <= set(names)
    native = [n for n in names if n.endswith(".so")]
    assert any(n.startswith("pydantic_core/") for n in native)
    wrong = [n for n in native if f"cpython-{version}-x86_64-linux-gnu" not in n and ".abi3." not in n]
    assert wrong == []


def test_check_packaged_refuses_a_function_left_on_chalice_placeholder_role(packaged: Packaged) -> None:
    template = json.loads(json.dumps(packaged.template))
    template["Resources"]["PollStack"]["Properties"]["Role"] = "arn:aws:iam::000000000000:role/placeholder"
    with pytest.raises(PackageError, match="PollStack kept the role"):
        check_packaged(template, "python3.12")


def test_every_function_logs_to_its_own_log_group_with_retention(packaged: Packaged) -> None:
    groups = []
    for function in packaged.of_type("AWS::Serverless::Function").values():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert packaged.resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert "RetentionInDays" in packaged.resources[group]["Properties"]
        groups.append(group)
    assert len(set(groups)) == len(groups)


def test_chalice_config_autogenerates_no_policy_and_sets_no_environment() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["app_name"] == app_module.app.app_name == "nexus-deployer"
    assert config["autogen_policy"] is False
    assert "dev" in config["stages"]
    # chalice.test.Client overwrites os.environ with these: tests must stay free to set their own.
    assert "environment_variables" not in json.dumps(config)


# -- the table and the events rule --------------------------------------------------------------


def test_table_keeps_its_data_with_recovery_and_ttl(packaged: Packaged) -> None:
    table = packaged.resources["DeploymentsTable"]
    assert table["DeletionPolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_stack_status_changes_reach_their_handler_and_release_only_the_deployment_workflow(
    packaged: Packaged,
) -> None:
    """Completion without polling: the central rule (from @app.on_cw_event) and what it may do."""
    from chalicelib.domain.bootstrap import STACK_STATUS_PATTERN

    function = packaged.resources["StackStatusChanged"]["Properties"]
    assert function["Events"]["StackStatusChangedEvent"]["Properties"]["Pattern"] == STACK_STATUS_PATTERN
    assert function["Role"] == {"Fn::GetAtt": ["ApiRole", "Arn"]}
    machine = packaged.arn("DeploymentStateMachine")
    elsewhere = f"arn:aws:states:{REGION}:{TARGET}:stateMachine:theirs"
    own_elsewhere = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:another-service"
    for role in ("ApiRole", "ServiceRole"):  # the event handler / the cancel, and AwaitStackEvent
        assert permitted(packaged, role, "states:SendTaskSuccess", machine)
        assert not permitted(packaged, role, "states:SendTaskSuccess", elsewhere)
        assert not permitted(packaged, role, "states:SendTaskSuccess", own_elsewhere)  # only the stack's own
        assert not permitted(packaged, role, "states:SendTaskFailure", machine)
    assert not permitted(packaged, "ApiRole", "states:SendTaskSuccess", packaged.arn("RolloutStateMachine"))
    assert not permitted(packaged, "RolloutRole", "states:SendTaskSuccess", machine)
    # Target accounts may forward to the default bus when the operator names their organization, and
    # only CloudFormation's stack status events (S3's "Object Created" only when asked for as well).
    admitted = {
        "StackEventsBusPolicy": ("StackEventsFromOrganization", "aws.cloudformation", STACK_STATUS_PATTERN),
        "TemplateObjectEventsBusPolicy": ("TemplateObjectEventsFromOrganization", "aws.s3", None),
    }
    for name, (condition, source, pattern) in admitted.items():
        policy = packaged.resources[name]
        assert policy["Condition"] == condition
        statement = policy["Properties"]["Statement"]
        assert statement["Action"] == "events:PutEvents"
        assert statement["Principal"] == "*"
        keys = statement["Condition"]["StringEquals"]
        assert keys["aws:PrincipalOrgID"] == {"Ref": "StackEventsOrganizationId"}
        assert keys["events:source"] == source
        if pattern is not None:
            assert [keys["events:detail-type"]] == pattern["detail-type"]
        # One statement per stack: two stages in one account do not replace each other's.
        assert "nexus-" in packaged.resolve(policy["Properties"]["StatementId"])
        assert packaged.resolve(policy["Properties"]["StatementId"]) == packaged.resolve(statement["Sid"])
    conditions = packaged.template["Conditions"]
    assert conditions["TemplateObjectEventsFromOrganization"]["Fn::And"][0] == {
        "Condition": "StackEventsFromOrganization"
    }


def test_rollout_items_are_released_by_the_end_of_their_operation(packaged: Packaged) -> None:
    """WaitForItemEnd: AwaitItem parks the token; the deployment workflow's last step releases it."""
    function = packaged.resources["AwaitItem"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["RolloutRole", "Arn"]}
    rollout_machine = packaged.arn("RolloutStateMachine")
    map_child = f"{rollout_machine}/RunWave"  # a Distributed Map's child executions run under it
    for machine in (rollout_machine, map_child):
        assert permitted(packaged, "RolloutRole", "states:SendTaskSuccess", machine)  # ended already
        assert permitted(packaged, "ServiceRole", "states:SendTaskSuccess", machine)  # ReleaseLock
    substitutions = packaged.resources["RolloutStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["AwaitItem"] == {"Fn::GetAtt": ["AwaitItem", "Arn"]}
    assert permitted(packaged, "RolloutStateMachineRole", "lambda:InvokeFunction", packaged.arn("AwaitItem"))


# -- IAM ----------------------------------------------------------------------------------------


def test_all_permissions_are_policies_of_the_templates_roles(packaged: Packaged) -> None:
    kinds = {r["Type"] for r in packaged.resources.values() if r["Type"].startswith("AWS::IAM::")}
    assert kinds == {"AWS::IAM::Role", "AWS::IAM::Policy"}
    assert set(permission_policies(packaged)) == {
        "ServiceRole",
        "ApiRole",
        "StateMachineRole",
        "RolloutRole",
        "RolloutStateMachineRole",
        "NotifierRole",
        "ExecutionEndedRole",
    }
    # The one attached policy: the three function roles may assume the notifier, and nothing else. (It
    # cannot be inline: the functions refer to the notifier, and the machines to the functions.)
    (attached,) = packaged.of_type("AWS::IAM::Policy").values()
    assert attached["Properties"]["Roles"] == [{"Ref": r} for r in ("ApiRole", "ServiceRole", "RolloutRole")]
    (statement,) = statements(attached["Properties"]["PolicyDocument"])
    assert (statement["Action"], statement["Resource"]) == (
        "sts:AssumeRole",
        {"Fn::GetAtt": ["NotifierRole", "Arn"]},
    )
    for function in packaged.of_type("AWS::Serverless::Function").values():
        assert "Policies" not in function["Properties"]  # no SAM policy templates on the side


def test_no_iam_or_sts_action_is_allowed_on_every_resource(packaged: Packaged) -> None:
    checked = 0
    for role, documents in permission_policies(packaged).items():
        for document in documents:
            for statement in statements(document):
                actions = [a.lower() for a in as_list(statement.get("Action", []))]
                assert "NotAction" not in statement, role
                assert "NotResource" not in statement, role
                assert "*" not in actions, role
                if not any(a.startswith(("iam:", "sts:")) for a in actions):
                    continue
                checked += 1
                assert not any(a in {"iam:*", "sts:*"} for a in actions), role
                for resource in as_list(packaged.resolve(statement["Resource"])):
                    assert resource != "*", (role, statement)
                    assert not re.fullmatch(r"arn:aws:iam::\*:role/\**", resource), (role, statement)
    assert checked == 4  # the service role's target roles; the notifier, for each of the three function roles


def test_only_the_service_role_assumes_roles_and_only_target_roles(packaged: Packaged) -> None:
    assumers = [
        (role, statement)
        for role, documents in permission_policies(packaged).items()
        for document in documents
        for statement in statements(document)
        if "sts:assumerole" in [a.lower() for a in as_list(statement["Action"])]
    ]
    targets = [
        (role, s) for role, s in assumers if packaged.resolve(s["Resource"]) != packaged.arn("NotifierRole")
    ]
    assert [role for role, _ in targets] == ["ServiceRole"]
    assert packaged.resolve(targets[0][1]["Resource"]) == "arn:aws:iam::*:role/NexusDeploymentRole*"

    pattern = packaged.template["Parameters"]["TargetRoleNamePattern"]["AllowedPattern"]
    assert re.fullmatch(pattern, "NexusDeploymentRole*")
    assert re.fullmatch(pattern, "deployers/Nexus*")
    for refused in ("*", "", "/*", "**"):
        assert not re.fullmatch(pattern, refused), refused

    assert permitted(
        packaged, "ServiceRole", "sts:AssumeRole", f"arn:aws:iam::{TARGET}:role/NexusDeploymentRole"
    )
    assert permitted(
        packaged, "ServiceRole", "sts:AssumeRole", f"arn:aws:iam::{TARGET}:role/NexusDeploymentRole-b"
    )
    assert not permitted(
        packaged, "ServiceRole", "sts:AssumeRole", f"arn:aws:iam::{TARGET}:role/OrganizationAccountAccessRole"
    )
    for role in ("ApiRole", "RolloutRole", "StateMachineRole", "NotifierRole", "ExecutionEndedRole"):
        assert not permitted(
            packaged, role, "sts:AssumeRole", f"arn:aws:iam::{TARGET}:role/NexusDeploymentRole"
        )
        assert not permitted(packaged, role, "sts:AssumeRole", packaged.arn("ServiceRole"))


@pytest.mark.parametrize("role", ["ServiceRole", "ApiRole", "RolloutRole", "ExecutionEndedRole"])
def test_lambda_roles_reach_the_table_and_nothing_else(packaged: Packaged, role: str) -> None:
    table = packaged.arn("DeploymentsTable")
    other_table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/someone-elses"
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert permitted(packaged, role, action, table)
        assert not permitted(packaged, role, action, other_table)
    assert permitted(packaged, role, "dynamodb:Query", table)
    assert not permitted(packaged, role, "dynamodb:DeleteTable", table)
    assert not permitted(packaged, role, "iam:PassRole", packaged.arn(role))
    assert not permitted(packaged, role, "iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/anything")


def test_only_the_api_starts_the_workflow_and_only_this_one(packaged: Packaged) -> None:
    machine = packaged.arn("DeploymentStateMachine")
    other = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:other"
    assert permitted(packaged, "ApiRole", "states:StartExecution", machine)
    assert not permitted(packaged, "ApiRole", "states:StartExecution", other)
    assert not permitted(packaged, "ApiRole", "states:StopExecution", machine)
    assert not permitted(packaged, "ServiceRole", "states:StartExecution", machine)


@pytest.mark.parametrize(
    ("role", "machine"),
    [("StateMachineRole", "DeploymentStateMachine"), ("RolloutStateMachineRole", "RolloutStateMachine")],
)
def test_each_workflow_invokes_its_own_steps_and_not_the_api(
    packaged: Packaged, role: str, machine: str
) -> None:
    own = placeholders(MACHINES[machine].read_text())
    for step in STEPS:
        assert permitted(packaged, role, "lambda:InvokeFunction", packaged.arn(step)) == (step in own), step
    assert not permitted(packaged, role, "lambda:InvokeFunction", packaged.arn("APIHandler"))
    assert not permitted(
        packaged, role, "lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x"
    )
    trust = packaged.resources[role]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in statements(trust)] == [{"Service": "states.amazonaws.com"}]


def test_the_rollout_workflow_runs_its_distributed_map_and_starts_nothing_else(packaged: Packaged) -> None:
    properties = packaged.resources["RolloutStateMachine"]["Properties"]
    # Named, so its role can name it without a circular reference (the Map starts its own children).
    assert packaged.resolve(properties["StateMachineName"]) == "nexus-rollout"
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:nexus-rollout"
    (run_wave,) = [s for s in properties["Definition"]["States"].values() if s["Type"] == "Map"]
    assert run_wave["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    execution = machine.replace(":stateMachine:", ":execution:") + "/a1b2"
    assert permitted(packaged, "RolloutStateMachineRole", "states:StartExecution", machine)
    assert permitted(packaged, "RolloutStateMachineRole", "states:DescribeExecution", execution)
    assert not permitted(
        packaged, "RolloutStateMachineRole", "states:StartExecution", packaged.arn("DeploymentStateMachine")
    )
    # The rollout steps start one deployment per item; the API starts rollouts; nothing else starts them.
    assert permitted(packaged, "RolloutRole", "states:StartExecution", packaged.arn("DeploymentStateMachine"))
    referenced = packaged.arn("RolloutStateMachine")  # what Ref gives in this fake account
    assert not permitted(packaged, "RolloutRole", "states:StartExecution", referenced)
    assert permitted(packaged, "ApiRole", "states:StartExecution", referenced)
    assert not permitted(packaged, "ServiceRole", "states:StartExecution", referenced)


# -- event-driven automation ---------------------------------------------------------------------


def test_event_handlers_are_wired_to_their_rules_topic_and_schedule(packaged: Packaged) -> None:
    from chalicelib.events.handlers import EXECUTION_STATUS_PATTERN, OBJECT_CREATED_PATTERN, REDEPLOY_PATTERN

    assert set(EVENT_HANDLERS) == {
        "RedeployRequested",
        "RedeployMessage",
        "StackStatusChanged",
        "TemplateObjectCreated",
        "DriftCheck",
        "DeploymentExecutionEnded",
        "RolloutExecutionEnded",
    }
    events = {name: packaged.resources[name]["Properties"]["Events"] for name in EVENT_HANDLERS}
    assert events["RedeployRequested"]["RedeployRequestedEvent"]["Properties"]["Pattern"] == REDEPLOY_PATTERN
    assert (
        events["TemplateObjectCreated"]["TemplateObjectCreatedEvent"]["Properties"]["Pattern"]
        == OBJECT_CREATED_PATTERN
    )
    for name in ("DeploymentExecutionEnded", "RolloutExecutionEnded"):
        pattern = events[name][f"{name}Event"]["Properties"]["Pattern"]
        assert pattern == EXECUTION_STATUS_PATTERN
        assert pattern["detail"] == {"status": ["FAILED", "TIMED_OUT", "ABORTED"]}  # not SUCCEEDED
    # Each told its own machine (the handler keeps only that machine's events). The deployment one under a
    # role of its own that only records: an event handler needs no way into target accounts.
    ended = {
        name: packaged.resources[name]["Properties"]
        for name in ("DeploymentExecutionEnded", "RolloutExecutionEnded")
    }
    assert ended["DeploymentExecutionEnded"]["Role"] == {"Fn::GetAtt": ["ExecutionEndedRole", "Arn"]}
    assert ended["DeploymentExecutionEnded"]["Environment"]["Variables"]["NEXUS_SERVICE_ROLE_ARN"] == {
        "Fn::GetAtt": ["ServiceRole", "Arn"]
    }
    parameters = (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:nexus-deployer/nexus/parameters/op-1-AbCdEf"
    )
    assert permitted(packaged, "ExecutionEndedRole", "secretsmanager:DeleteSecret", parameters)
    for action in ("secretsmanager:GetSecretValue", "secretsmanager:CreateSecret"):
        assert not permitted(packaged, "ExecutionEndedRole", action, parameters)
    assert not permitted(packaged, "ExecutionEndedRole", "dynamodb:Scan", packaged.arn("DeploymentsTable"))
    assert not permitted(
        packaged, "ExecutionEndedRole", "states:StartExecution", packaged.arn("DeploymentStateMachine")
    )
    assert not permitted(packaged, "ExecutionEndedRole", "sts:AssumeRole", packaged.arn("NotifierRole"))
    assert ended["DeploymentExecutionEnded"]["Environment"]["Variables"]["NEXUS_STATE_MACHINE_ARN"] == {
        "Ref": "DeploymentStateMachine"
    }
    assert ended["RolloutExecutionEnded"]["Role"] == {"Fn::GetAtt": ["RolloutRole", "Arn"]}
    assert ended["RolloutExecutionEnded"]["Environment"]["Variables"]["NEXUS_ROLLOUT_STATE_MACHINE_ARN"] == {
        "Ref": "RolloutStateMachine"
    }
    assert events["DriftCheck"]["DriftCheckEvent"] == {
        "Type": "Schedule",
        "Properties": {"Schedule": "rate(6 hours)"},
    }
    subscription = events["RedeployMessage"]["RedeployMessageSnsSubscription"]
    assert subscription["Type"] == "SNS"
    # The stack's own topic (infra/package.py points chalice's subscription at it), named per stack.
    assert subscription["Properties"]["Topic"] == {"Ref": "RedeployRequestTopic"}
    topic = packaged.resources["RedeployRequestTopic"]
    assert packaged.physical_name("RedeployRequestTopic") == f"{STACK}-redeploy-requests"
    assert topic["Type"] == "AWS::SNS::Topic"
    assert "TopicPolicy" not in json.dumps(packaged.template)  # default policy: only this account publishes


def test_event_handlers_roles_redeploy_without_assuming_and_drift_check_assumes(packaged: Packaged) -> None:
    machine = packaged.arn("DeploymentStateMachine")
    for name in ("RedeployRequested", "RedeployMessage", "TemplateObjectCreated"):
        assert packaged.resources[name]["Properties"]["Role"] == {"Fn::GetAtt": ["ApiRole", "Arn"]}
        variables = packaged.resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["NEXUS_STATE_MACHINE_ARN"] == {"Ref": "DeploymentStateMachine"}
    assert permitted(packaged, "ApiRole", "states:StartExecution", machine)
    template_object = "arn:aws:s3:::team-templates/app.json"
    for action in ("s3:GetObject", "s3:GetObjectVersion"):
        assert permitted(packaged, "ApiRole", action, template_object, {"aws:ResourceAccount": TARGET})
        # Never an object of the service's own account on a tenant's behalf (no bucket policy needed there).
        assert not permitted(packaged, "ApiRole", action, template_object, {"aws:ResourceAccount": ACCOUNT})
    drift = packaged.resources["DriftCheck"]["Properties"]
    assert drift["Role"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}
    assert drift["Timeout"] > Settings.model_fields["drift_budget_seconds"].default
    assert permitted(packaged, "ServiceRole", "dynamodb:Scan", packaged.arn("DeploymentsTable"))
    assert not permitted(packaged, "ApiRole", "dynamodb:Scan", packaged.arn("DeploymentsTable"))


def test_webhook_secrets_are_reachable_only_under_the_stacks_prefix(packaged: Packaged) -> None:
    variables = packaged.resolve(packaged.resources["APIHandler"]["Properties"]["Environment"]["Variables"])
    prefix = variables["NEXUS_WEBHOOK_SECRET_PREFIX"]
    assert prefix == f"nexus-deployer/{STACK}/webhooks/"  # another stage's secrets are out of reach
    mine = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{prefix}tenant-a/0123-AbCdEf"
    other = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:database/password-AbCdEf"
    other_stage = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:nexus-deployer/prod/webhooks/t/1-AbCdEf"
    assert permitted(packaged, "ApiRole", "secretsmanager:CreateSecret", mine)
    assert not permitted(packaged, "ApiRole", "secretsmanager:CreateSecret", other)
    # A secret whose deployment record was not written is deleted again, only under the prefix.
    assert permitted(packaged, "ApiRole", "secretsmanager:DeleteSecret", mine)
    assert not permitted(packaged, "ApiRole", "secretsmanager:DeleteSecret", other)
    assert not permitted(packaged, "ApiRole", "secretsmanager:DeleteSecret", other_stage)
    for role in ("ApiRole", "ServiceRole", "RolloutRole"):  # RolloutRole: rollout notifications
        assert permitted(packaged, role, "secretsmanager:GetSecretValue", mine)
        assert not permitted(packaged, role, "secretsmanager:GetSecretValue", other)
        assert not permitted(packaged, role, "secretsmanager:GetSecretValue", other_stage)
    assert not permitted(packaged, "ServiceRole", "secretsmanager:CreateSecret", mine)
    assert not permitted(packaged, "RolloutRole", "secretsmanager:CreateSecret", mine)


def test_one_role_publishes_to_customers_topics_and_never_to_the_services_own(packaged: Packaged) -> None:
    theirs = "arn:aws:sns:us-east-1:111122223333:deployments"
    ours = f"arn:aws:sns:us-east-1:{ACCOUNT}:deployments"
    assert permitted(packaged, "NotifierRole", "sns:Publish", theirs, {"aws:ResourceAccount": "111122223333"})
    assert not permitted(packaged, "NotifierRole", "sns:Publish", ours, {"aws:ResourceAccount": ACCOUNT})
    for role in ("ApiRole", "ServiceRole", "RolloutRole"):  # they publish as the notifier
        assert not permitted(packaged, role, "sns:Publish", theirs, {"aws:ResourceAccount": "111122223333"})
        assert permitted(packaged, role, "sts:AssumeRole", packaged.arn("NotifierRole"))
    for name, function in packaged.of_type("AWS::Serverless::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["NEXUS_NOTIFIER_ROLE_ARN"] == {"Fn::GetAtt": ["NotifierRole", "Arn"]}, name


def test_quick_create_templates_are_written_by_the_api_and_read_only_under_their_prefix(
    packaged: Packaged,
) -> None:
    api = packaged.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    settings = Settings.from_env({**packaged.resolve(api), "AWS_REGION": REGION})
    assert settings.bootstrap_bucket == packaged.physical_name("BootstrapTemplatesBucket")
    bucket = packaged.arn("BootstrapTemplatesBucket")
    assert permitted(packaged, "ApiRole", "s3:PutObject", f"{bucket}/bootstrap/{'0' * 64}.json")
    assert not permitted(packaged, "ApiRole", "s3:PutObject", f"{bucket}/elsewhere.json")
    assert not permitted(packaged, "ApiRole", "s3:DeleteObject", f"{bucket}/bootstrap/x.json")
    for role in (
        "ServiceRole",
        "StateMachineRole",
        "RolloutRole",
        "RolloutStateMachineRole",
        "ExecutionEndedRole",
    ):
        assert not permitted(packaged, role, "s3:PutObject", f"{bucket}/bootstrap/x.json"), role
    # CloudFormation reads a quick-create template as whoever opens the link in the target account:
    # anyone may GetObject under bootstrap/ (only the organization's accounts, when it is given), and
    # nothing else; keys are content hashes, never listed.
    policy = packaged.resources["BootstrapTemplatesBucketPolicy"]["Properties"]["PolicyDocument"]
    (read,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert (read["Principal"], read["Action"]) == ("*", "s3:GetObject")
    assert packaged.resolve(read["Resource"]) == f"{bucket}/bootstrap/*"
    assert read["Condition"]["Fn::If"][:2] == [
        "StackEventsFromOrganization",
        {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "StackEventsOrganizationId"}}},
    ]
    (deny,) = [s for s in statements(policy) if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    blocked = packaged.resources["BootstrapTemplatesBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert blocked["BlockPublicAcls"] is blocked["IgnorePublicAcls"] is True


def test_api_gateway_answers_its_own_refusals_in_the_services_error_shape(packaged: Packaged) -> None:
    """Unknown routes (API Gateway's MISSING_AUTHENTICATION_TOKEN) and its other 4xx/5xx never reach
    the app: their bodies come from these gateway responses, rendered here with sample context values.
    They are the API's own (SAM's GatewayResponses, written into its definition), not separate
    resources that the API's definition would not know of (cfn-lint W3660 after the transform)."""
    responses = packaged.resources["RestAPI"]["Properties"]["GatewayResponses"]
    assert packaged.of_type("AWS::ApiGateway::GatewayResponse") == {}
    assert set(responses) == {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"}
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    sample = {
        "$context.httpMethod": "GET",
        "$context.path": "/no/such/route",
        "$context.requestId": "c0ffee",
        "$context.error.responseType": "THROTTLED",
        "$context.error.messageString": '"Too Many Requests"',
    }
    for response_type, properties in responses.items():
        body = properties["ResponseTemplates"]["application/json"]
        for variable, value in sample.items():
            body = body.replace(variable, value)
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message", "hint", "details"}, response_type
        assert error["message"], response_type
        assert error["hint"], response_type
        assert error["details"] == {"request_id": "c0ffee"}
    missing = json.loads(
        responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"]
        .replace("$context.httpMethod", "GET")
        .replace("$context.path", "/nope")
        .replace("$context.requestId", "r")
    )
    assert missing["error"]["code"] == "NOT_FOUND"
    assert missing["error"]["message"] == "No route GET /nope."


def test_test_credentials_and_forget_run_as_the_one_principal_targets_trust(packaged: Packaged) -> None:
    inspect = packaged.resources["InspectTarget"]["Properties"]
    assert inspect["Role"] == {"Fn::GetAtt": ["ServiceRole", "Arn"]}
    api = packaged.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api["NEXUS_INSPECT_FUNCTION"] == {"Ref": "InspectTarget"}
    assert permitted(packaged, "ApiRole", "lambda:InvokeFunction", packaged.arn("InspectTarget"))
    assert not permitted(packaged, "ApiRole", "lambda:InvokeFunction", packaged.arn("StartStackOperation"))
