"""Create the central resources in the local AWS from the same files the cloud template uses.

The table comes from ``infra/merge-template.json`` (the resource `chalice package` merges in), the
workflows from ``statemachine/deployment.asl.json`` and ``statemachine/rollout.asl.json`` with their
``${Name}`` placeholders filled with the step functions' ARNs, as ``DefinitionSubstitutions`` does on
AWS. So local mode and the tests run exactly the definitions and table that deploy.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
DEFINITION_PATH = ROOT / "statemachine" / "deployment.asl.json"
ROLLOUT_DEFINITION_PATH = ROOT / "statemachine" / "rollout.asl.json"
MERGE_TEMPLATE_PATH = ROOT / "infra" / "merge-template.json"
SERVICE_ROLE_NAME = "NexusDeployerService"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


@dataclass(frozen=True)
class CentralResources:
    account_id: str
    region: str
    table_name: str
    state_machine_arn: str
    service_role_arn: str
    function_arns: dict[str, str]
    rollout_state_machine_arn: str = ""


def definition_placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render_definition(text: str, substitutions: Mapping[str, str]) -> str:
    missing = definition_placeholders(text) - set(substitutions)
    if missing:
        raise ValueError(f"no substitution for placeholders {sorted(missing)}")
    return PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)


def table_properties() -> dict[str, Any]:
    template = json.loads(MERGE_TEMPLATE_PATH.read_text())
    properties: dict[str, Any] = template["Resources"]["DeploymentsTable"]["Properties"]
    return properties


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# handlers run in-process in the local AWS\n")
    return buffer.getvalue()


def provision_central(
    session: boto3.Session,
    *,
    account_id: str,
    function_names: Iterable[str],
    prefix: str = "nexus-deployer-local",
    event_rules: Mapping[str, Mapping[str, Any]] | None = None,
) -> CentralResources:
    region = session.region_name or "us-east-1"
    iam = session.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "sts:AssumeRole",
            },
        ],
    }
    role_arn = iam.create_role(RoleName=SERVICE_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]

    properties = table_properties()
    table_name = f"{prefix}-deployments"
    dynamodb = session.client("dynamodb")
    dynamodb.create_table(
        TableName=table_name,
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        BillingMode=properties["BillingMode"],
    )
    ttl = properties["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
    )

    lambda_client = session.client("lambda")
    code = _dummy_zip()
    function_arns: dict[str, str] = {}
    for name in function_names:
        function_arns[name] = lambda_client.create_function(
            FunctionName=f"{prefix}-{name}",
            Runtime="python3.12",
            Role=role_arn,
            Handler=f"app.{name}",
            Code={"ZipFile": code},
            Timeout=300,
        )["FunctionArn"]

    # The rules `chalice package` makes for @app.on_cw_event handlers, on the default bus.
    events = session.client("events")
    for name, pattern in (event_rules or {}).items():
        events.put_rule(Name=f"{prefix}-{name}", EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=f"{prefix}-{name}", Targets=[{"Id": name, "Arn": function_arns[name]}])

    definition = render_definition(DEFINITION_PATH.read_text(), function_arns)
    state_machine_arn = session.client("stepfunctions").create_state_machine(
        name=f"{prefix}-deployment", definition=definition, roleArn=role_arn
    )["stateMachineArn"]
    # The fleet rollout workflow: its Map iterations start deployments of the machine above.
    rollout_definition = render_definition(ROLLOUT_DEFINITION_PATH.read_text(), function_arns)
    rollout_state_machine_arn = session.client("stepfunctions").create_state_machine(
        name=f"{prefix}-rollout", definition=rollout_definition, roleArn=role_arn
    )["stateMachineArn"]
    return CentralResources(
        account_id, region, table_name, state_machine_arn, role_arn, function_arns, rollout_state_machine_arn
    )
