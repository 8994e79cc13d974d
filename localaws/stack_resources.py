"""One creator per resource type of the service's template, for ``localaws/stack.py``.

Each creator takes the resource's resolved properties, refuses any property it does not handle (so a
template change that this local deployment would silently drop fails instead), makes the boto3 calls that
CloudFormation's resource handler makes, and answers what ``Ref`` and ``Fn::GetAtt`` give.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3

from infra.intrinsics import Resolver
from localaws.stack import DeployedResource, StackDeployError, physical_name

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class Context:
    session: boto3.Session
    resolver: Resolver
    stack_name: str
    account_id: str
    region: str
    partition: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.session.client(service)  # type: ignore[call-overload]
        return self.clients[service]

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )


Creator = Callable[[Context, str, dict[str, Any]], DeployedResource]
_CREATORS: dict[str, tuple[frozenset[str], Creator]] = {}


def creator(resource_type: str, *known: str) -> Callable[[Creator], Creator]:
    def register(function: Creator) -> Creator:
        _CREATORS[resource_type] = (frozenset(known), function)
        return function

    return register


def create(
    context: Context, logical_id: str, resource_type: str, properties: dict[str, Any]
) -> DeployedResource:
    if resource_type not in _CREATORS:
        raise StackDeployError(
            f"{logical_id}: the local deployment does not know {resource_type}; teach localaws/stack_resources.py"
        )
    known, function = _CREATORS[resource_type]
    unknown = set(properties) - known
    if unknown:
        raise StackDeployError(f"{logical_id} ({resource_type}): unsupported properties {sorted(unknown)}")
    return function(context, logical_id, properties)


def _name(context: Context, logical_id: str, resource_type: str, given: Any) -> str:
    return str(given) if given else physical_name(context.stack_name, logical_id, resource_type)


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    tags = properties.get("Tags", [])
    if isinstance(tags, Mapping):
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags]


# -- IAM ------------------------------------------------------------------------------------------------


@creator(
    "AWS::IAM::Role",
    "RoleName", "AssumeRolePolicyDocument", "Description", "Policies", "ManagedPolicyArns", "Path",
    "MaxSessionDuration", "PermissionsBoundary", "Tags",
)  # fmt: skip
def _role(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    iam = context.client("iam")
    name = _name(context, logical_id, "AWS::IAM::Role", p.get("RoleName"))
    arguments: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": json.dumps(p["AssumeRolePolicyDocument"]),
        "Path": p.get("Path", "/"),
    }
    for source, target in (("Description", "Description"), ("PermissionsBoundary", "PermissionsBoundary")):
        if source in p:
            arguments[target] = p[source]
    if "MaxSessionDuration" in p:
        arguments["MaxSessionDuration"] = int(p["MaxSessionDuration"])
    if "Tags" in p:
        arguments["Tags"] = _tags(p)
    role = iam.create_role(**arguments)["Role"]
    for policy in p.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    for policy_arn in p.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return DeployedResource(
        logical_id, "AWS::IAM::Role", name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}, p
    )


@creator("AWS::IAM::Policy", "PolicyName", "PolicyDocument", "Roles")
def _policy(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    iam = context.client("iam")
    for role in p.get("Roles", []):
        iam.put_role_policy(
            RoleName=role, PolicyName=p["PolicyName"], PolicyDocument=json.dumps(p["PolicyDocument"])
        )
    return DeployedResource(logical_id, "AWS::IAM::Policy", str(p["PolicyName"]), {}, p)


# -- DynamoDB, logs -------------------------------------------------------------------------------------


@creator(
    "AWS::DynamoDB::Table",
    "TableName", "AttributeDefinitions", "KeySchema", "BillingMode", "TimeToLiveSpecification",
    "PointInTimeRecoverySpecification", "SSESpecification", "Tags",
)  # fmt: skip
def _table(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    dynamodb = context.client("dynamodb")
    name = _name(context, logical_id, "AWS::DynamoDB::Table", p.get("TableName"))
    arguments: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": p["AttributeDefinitions"],
        "KeySchema": p["KeySchema"],
        "BillingMode": p.get("BillingMode", "PROVISIONED"),
    }
    if "SSESpecification" in p:
        arguments["SSESpecification"] = {"Enabled": bool(p["SSESpecification"].get("SSEEnabled"))}
    if "Tags" in p:
        arguments["Tags"] = _tags(p)
    table = dynamodb.create_table(**arguments)["TableDescription"]
    ttl = p.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    recovery = p.get("PointInTimeRecoverySpecification")
    if recovery and recovery.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return DeployedResource(logical_id, "AWS::DynamoDB::Table", name, {"Arn": table["TableArn"]}, p)


@creator("AWS::Logs::LogGroup", "LogGroupName", "RetentionInDays")
def _log_group(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    logs = context.client("logs")
    name = _name(context, logical_id, "AWS::Logs::LogGroup", p.get("LogGroupName"))
    logs.create_log_group(logGroupName=name)
    if "RetentionInDays" in p:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
    arn = context.arn("logs", f"log-group:{name}:*")
    return DeployedResource(logical_id, "AWS::Logs::LogGroup", name, {"Arn": arn}, p)


# -- Lambda ---------------------------------------------------------------------------------------------


@cache
def stub_code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "README.txt", "The local AWS runs this function's handler from the checkout, in-process.\n"
        )
    return buffer.getvalue()


@creator(
    "AWS::Lambda::Function",
    "FunctionName", "Code", "Handler", "Runtime", "Role", "Timeout", "MemorySize", "Environment", "Tags",
    "TracingConfig", "Architectures", "LoggingConfig", "ReservedConcurrentExecutions", "Description",
    "DeadLetterConfig",
)  # fmt: skip
def _function(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    lambda_client = context.client("lambda")
    name = _name(context, logical_id, "AWS::Lambda::Function", p.get("FunctionName"))
    if set(p["Code"]) != {"S3Bucket", "S3Key"}:
        raise StackDeployError(
            f"{logical_id}: Code must be the packaged S3 location, not {sorted(p['Code'])}"
        )
    arguments: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": p["Runtime"],
        "Role": p["Role"],
        "Handler": p["Handler"],
        "Code": {"ZipFile": stub_code()},  # the S3 object is the zip `make package` writes; not read here
        "Timeout": int(p.get("Timeout", 3)),
        "MemorySize": int(p.get("MemorySize", 128)),
        "Environment": {
            "Variables": {str(k): str(v) for k, v in p.get("Environment", {}).get("Variables", {}).items()}
        },
        "Architectures": p.get("Architectures", ["x86_64"]),
    }
    if "TracingConfig" in p:
        arguments["TracingConfig"] = p["TracingConfig"]
    if "LoggingConfig" in p:
        arguments["LoggingConfig"] = p["LoggingConfig"]
    if "Description" in p:
        arguments["Description"] = p["Description"]
    if "DeadLetterConfig" in p:
        arguments["DeadLetterConfig"] = {"TargetArn": p["DeadLetterConfig"]["TargetArn"]}
    if "Tags" in p:
        arguments["Tags"] = {t["Key"]: t["Value"] for t in _tags(p)}
    arn = lambda_client.create_function(**arguments)["FunctionArn"]
    if "ReservedConcurrentExecutions" in p:
        lambda_client.put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=int(p["ReservedConcurrentExecutions"])
        )
    return DeployedResource(logical_id, "AWS::Lambda::Function", name, {"Arn": arn}, p)


@creator("AWS::Lambda::Permission", "Action", "FunctionName", "Principal", "SourceArn", "SourceAccount")
def _permission(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    arguments = {
        "FunctionName": p["FunctionName"],
        "StatementId": logical_id,
        "Action": p["Action"],
        "Principal": p["Principal"],
    }
    arguments.update({k: p[k] for k in ("SourceArn", "SourceAccount") if k in p})
    context.client("lambda").add_permission(**arguments)
    return DeployedResource(logical_id, "AWS::Lambda::Permission", logical_id, {}, p)


# -- SNS ------------------------------------------------------------------------------------------------


@creator("AWS::SNS::Topic", "TopicName", "DisplayName", "KmsMasterKeyId", "Tags")
def _topic(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    name = _name(context, logical_id, "AWS::SNS::Topic", p.get("TopicName"))
    attributes = {k: str(p[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in p}
    arguments: dict[str, Any] = {"Name": name, "Attributes": attributes}
    if "Tags" in p:
        arguments["Tags"] = _tags(p)
    arn = context.client("sns").create_topic(**arguments)["TopicArn"]
    return DeployedResource(logical_id, "AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name}, p)


@creator("AWS::SNS::Subscription", "TopicArn", "Protocol", "Endpoint")
def _subscription(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    arn = context.client("sns").subscribe(
        TopicArn=p["TopicArn"], Protocol=p["Protocol"], Endpoint=p["Endpoint"], ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    return DeployedResource(logical_id, "AWS::SNS::Subscription", arn, {}, p)


# -- Step Functions -------------------------------------------------------------------------------------


def render_definition(definition: Any, substitutions: Mapping[str, Any]) -> str:
    """The definition with its ``${Name}`` placeholders replaced, as ``DefinitionSubstitutions`` does."""
    text = definition if isinstance(definition, str) else json.dumps(definition)
    missing = set(PLACEHOLDER.findall(text)) - set(substitutions)
    if missing:
        raise StackDeployError(f"no DefinitionSubstitutions for placeholders {sorted(missing)}")
    return PLACEHOLDER.sub(lambda m: str(substitutions[m.group(1)]), text)


def _logging(configuration: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "level": configuration.get("Level", "OFF"),
        "includeExecutionData": bool(configuration.get("IncludeExecutionData", False)),
        "destinations": [
            {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
            for d in configuration.get("Destinations", [])
        ],
    }


@creator(
    "AWS::StepFunctions::StateMachine",
    "StateMachineName", "Definition", "DefinitionString", "DefinitionSubstitutions", "RoleArn",
    "StateMachineType", "LoggingConfiguration", "TracingConfiguration", "Tags",
)  # fmt: skip
def _state_machine(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    name = _name(context, logical_id, "AWS::StepFunctions::StateMachine", p.get("StateMachineName"))
    definition = render_definition(
        p.get("Definition", p.get("DefinitionString")), p.get("DefinitionSubstitutions", {})
    )
    arguments: dict[str, Any] = {
        "name": name,
        "definition": definition,
        "roleArn": p["RoleArn"],
        "type": p.get("StateMachineType", "STANDARD"),
    }
    if "LoggingConfiguration" in p:
        arguments["loggingConfiguration"] = _logging(p["LoggingConfiguration"])
    if "TracingConfiguration" in p:
        arguments["tracingConfiguration"] = {"enabled": bool(p["TracingConfiguration"].get("Enabled"))}
    if "Tags" in p:
        arguments["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in _tags(p)]
    arn = context.client("stepfunctions").create_state_machine(**arguments)["stateMachineArn"]
    return DeployedResource(
        logical_id, "AWS::StepFunctions::StateMachine", arn, {"Arn": arn, "Name": name}, p
    )


# -- EventBridge ----------------------------------------------------------------------------------------


@creator(
    "AWS::Events::Rule",
    "Name", "EventPattern", "ScheduleExpression", "State", "Description", "EventBusName", "Targets", "RoleArn",
)  # fmt: skip
def _rule(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    events = context.client("events")
    name = _name(context, logical_id, "AWS::Events::Rule", p.get("Name"))
    arguments: dict[str, Any] = {"Name": name, "State": p.get("State", "ENABLED")}
    if "EventPattern" in p:
        arguments["EventPattern"] = json.dumps(p["EventPattern"])
    for key in ("ScheduleExpression", "Description", "EventBusName", "RoleArn"):
        if key in p:
            arguments[key] = p[key]
    arn = events.put_rule(**arguments)["RuleArn"]
    targets = []
    for target in p.get("Targets", []):
        unknown = set(target) - {"Id", "Arn", "RoleArn", "Input", "InputPath"}
        if unknown:
            raise StackDeployError(f"{logical_id}: unsupported target properties {sorted(unknown)}")
        targets.append(dict(target))
    if targets:
        extra = {"EventBusName": p["EventBusName"]} if "EventBusName" in p else {}
        events.put_targets(Rule=name, Targets=targets, **extra)
    return DeployedResource(logical_id, "AWS::Events::Rule", name, {"Arn": arn}, p)


@creator("AWS::Events::EventBusPolicy", "EventBusName", "StatementId", "Statement")
def _bus_policy(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    events = context.client("events")
    bus = str(p.get("EventBusName", "default"))
    existing = events.describe_event_bus(Name=bus).get("Policy")
    policy: dict[str, Any] = json.loads(existing) if existing else {"Version": "2012-10-17", "Statement": []}
    statement = {**p["Statement"], "Sid": p["StatementId"]}
    kept: list[dict[str, Any]] = [s for s in policy["Statement"] if s.get("Sid") != statement["Sid"]]
    policy["Statement"] = [*kept, statement]
    events.put_permission(EventBusName=bus, Policy=json.dumps(policy))
    return DeployedResource(logical_id, "AWS::Events::EventBusPolicy", str(p["StatementId"]), {}, p)


# -- S3, SQS --------------------------------------------------------------------------------------------


@creator(
    "AWS::S3::Bucket",
    "BucketName", "OwnershipControls", "PublicAccessBlockConfiguration", "BucketEncryption",
    "LifecycleConfiguration", "Tags",
)  # fmt: skip
def _bucket(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    s3 = context.client("s3")
    name = str(
        p.get("BucketName") or physical_name(context.stack_name, logical_id, "AWS::S3::Bucket").lower()
    )
    arguments: dict[str, Any] = {"Bucket": name}
    if context.region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": context.region}
    s3.create_bucket(**arguments)
    if "OwnershipControls" in p:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=p["OwnershipControls"])
    if "PublicAccessBlockConfiguration" in p:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"]
        )
    if "BucketEncryption" in p:
        rules = [  # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
            }
            for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "LifecycleConfiguration" in p:
        rules = [
            {
                "ID": rule["Id"],
                "Status": rule["Status"],
                "Filter": {"Prefix": rule.get("Prefix", "")},
                "Expiration": {"Days": int(rule["ExpirationInDays"])},
            }
            for rule in p["LifecycleConfiguration"]["Rules"]
        ]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if "Tags" in p:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(p)})
    arn = f"arn:{context.partition}:s3:::{name}"
    domain = f"{name}.s3.{context.region}.amazonaws.com"
    return DeployedResource(
        logical_id, "AWS::S3::Bucket", name, {"Arn": arn, "RegionalDomainName": domain}, p
    )


@creator("AWS::S3::BucketPolicy", "Bucket", "PolicyDocument")
def _bucket_policy(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    context.client("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(p["PolicyDocument"]))
    return DeployedResource(logical_id, "AWS::S3::BucketPolicy", str(p["Bucket"]), {}, p)


@creator(
    "AWS::SQS::Queue",
    "QueueName", "MessageRetentionPeriod", "SqsManagedSseEnabled", "VisibilityTimeout", "Tags",
)  # fmt: skip
def _queue(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    sqs = context.client("sqs")
    name = _name(context, logical_id, "AWS::SQS::Queue", p.get("QueueName"))
    attributes = {
        key: str(p[key]).lower() if isinstance(p[key], bool) else str(p[key])
        for key in ("MessageRetentionPeriod", "SqsManagedSseEnabled", "VisibilityTimeout")
        if key in p
    }
    arguments: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if "Tags" in p:
        arguments["tags"] = {t["Key"]: t["Value"] for t in _tags(p)}
    url = sqs.create_queue(**arguments)["QueueUrl"]
    arn = context.arn("sqs", name)
    return DeployedResource(logical_id, "AWS::SQS::Queue", url, {"Arn": arn, "QueueName": name}, p)


# -- CloudWatch -----------------------------------------------------------------------------------------

# CloudFormation's alarm properties and PutMetricAlarm's parameters share their names.
_ALARM_PROPERTIES = (
    "AlarmName", "AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions",
    "InsufficientDataActions", "ComparisonOperator", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
    "ThresholdMetricId", "TreatMissingData", "MetricName", "Namespace", "Dimensions", "Period", "Statistic",
    "ExtendedStatistic", "Unit", "Metrics",
)  # fmt: skip


@creator("AWS::CloudWatch::Alarm", *_ALARM_PROPERTIES)
def _alarm(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    name = _name(context, logical_id, "AWS::CloudWatch::Alarm", p.get("AlarmName"))
    arguments: dict[str, Any] = {k: v for k, v in p.items() if k != "AlarmName"}
    for key in ("EvaluationPeriods", "DatapointsToAlarm", "Period"):
        if key in arguments:
            arguments[key] = int(arguments[key])
    if "Threshold" in arguments:
        arguments["Threshold"] = float(arguments["Threshold"])
    context.client("cloudwatch").put_metric_alarm(AlarmName=name, **arguments)
    arn = context.arn("cloudwatch", f"alarm:{name}")
    return DeployedResource(logical_id, "AWS::CloudWatch::Alarm", name, {"Arn": arn}, p)


@creator("AWS::CloudWatch::Dashboard", "DashboardName", "DashboardBody")
def _dashboard(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    name = _name(context, logical_id, "AWS::CloudWatch::Dashboard", p.get("DashboardName"))
    context.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=str(p["DashboardBody"]))
    return DeployedResource(logical_id, "AWS::CloudWatch::Dashboard", name, {}, p)


# -- API Gateway ----------------------------------------------------------------------------------------

_INVOCATION = re.compile(r"^arn:[\w-]+:apigateway:[\w-]+:lambda:path/2015-03-31/functions/(.+)/invocations$")


def api_functions(body: Mapping[str, Any]) -> set[str]:
    """The function ARNs the Swagger body's integrations invoke (every one must be an aws_proxy)."""
    found: set[str] = set()
    for path, methods in body.get("paths", {}).items():
        for method, operation in methods.items():
            integration = operation.get("x-amazon-apigateway-integration")
            if integration is None or integration.get("type") != "aws_proxy":
                raise StackDeployError(
                    f"{method.upper()} {path}: only Lambda proxy integrations are served locally"
                )
            match = _INVOCATION.match(str(integration["uri"]))
            if match is None:
                raise StackDeployError(f"{method.upper()} {path}: not a Lambda invocation URI")
            found.add(match.group(1))
    return found


@creator("AWS::ApiGateway::RestApi", "Body", "EndpointConfiguration", "Parameters", "Name")
def _rest_api(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    body = p.get("Body", {})
    if len(api_functions(body)) != 1:
        raise StackDeployError(
            f"{logical_id}: every route must reach one function, not {sorted(api_functions(body))}"
        )
    endpoint = p.get("EndpointConfiguration", {}).get("Types", ["EDGE"])
    api = context.client("apigateway").create_rest_api(
        name=str(p.get("Name") or body.get("info", {}).get("title") or logical_id),
        endpointConfiguration={"types": endpoint},
    )
    return DeployedResource(
        logical_id,
        "AWS::ApiGateway::RestApi",
        api["id"],
        {"RootResourceId": api.get("rootResourceId", "")},
        p,
    )


# The API's routes are not created in moto's API Gateway (it cannot import Swagger 2.0, and creating some
# ninety methods one call at a time would slow every local start): local mode serves them with Chalice's
# server in-process, as the one function the body names (checked above). The deployment and its stage
# are checked to belong to this API and recorded.
@creator("AWS::ApiGateway::Deployment", "RestApiId", "Description", "StageName")
def _api_deployment(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    deployment_id = f"local-{logical_id}"
    return DeployedResource(logical_id, "AWS::ApiGateway::Deployment", deployment_id, {}, p)


@creator("AWS::ApiGateway::Stage", "RestApiId", "DeploymentId", "StageName", "TracingEnabled")
def _api_stage(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    if not str(p["DeploymentId"]).startswith("local-"):
        raise StackDeployError(f"{logical_id}: the stage must deploy one of this template's deployments")
    return DeployedResource(logical_id, "AWS::ApiGateway::Stage", str(p["StageName"]), {}, p)


@creator("AWS::ApiGateway::GatewayResponse", "RestApiId", "ResponseType", "StatusCode", "ResponseTemplates",
         "ResponseParameters")  # fmt: skip
def _gateway_response(context: Context, logical_id: str, p: dict[str, Any]) -> DeployedResource:
    arguments: dict[str, Any] = {"restApiId": p["RestApiId"], "responseType": p["ResponseType"]}
    for source, target in (
        ("StatusCode", "statusCode"),
        ("ResponseTemplates", "responseTemplates"),
        ("ResponseParameters", "responseParameters"),
    ):
        if source in p:
            arguments[target] = p[source]
    context.client("apigateway").put_gateway_response(**arguments)
    return DeployedResource(logical_id, "AWS::ApiGateway::GatewayResponse", logical_id, {}, p)
