"""Deploy the service's transformed template into the local AWS's central account, as CloudFormation would.

``deploy_stack`` reads the template that ``localaws/template.py`` builds (plain CloudFormation after the
SAM transform) and creates each resource with boto3, in dependency order, with the values CloudFormation
would resolve (``infra/intrinsics.py``): the roles with their policies, the table, the log groups, the
functions with their roles, environment and reserved concurrency, the state machines with
``DefinitionSubstitutions`` applied, the rules with their targets, the topic and its subscription, the
Lambda permissions, the bus policy, and the API with its deployment, stage and gateway responses.

Why not moto's CloudFormation: it drops resource types it does not know, never fails a stack properly and
resolves few intrinsics (``/work/shared/notes/local-aws-facts.md``), so a deployment through it would not
prove the template deploys. This module refuses instead: a resource type, a property or an intrinsic
function it does not know stops the deployment with its name (``StackDeployError``), and the template
must change or this module must learn it. Everything it creates comes from the template; it adds nothing
(no extra trust, no extra permission), so what runs locally is what the template grants.

What it leaves to others: the functions' code is this checkout's (``localaws/functions.py`` runs each
function's handler in-process under its role); the API's Swagger body is checked to send every route to
one function, whose handler local mode serves over HTTP; schedules are not fired by moto, so
``localaws/eventbridge.py`` fires a schedule rule's targets on request.
"""

from __future__ import annotations

import base64
import graphlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from infra.intrinsics import IntrinsicError, Pseudo, Resolver, references

__all__ = [
    "DeployedFunction",
    "DeployedResource",
    "DeployedStack",
    "StackDeployError",
    "deploy_stack",
    "physical_name",
]


class StackDeployError(RuntimeError):
    """The template holds something the local deployment does not understand, or a resource failed."""


@dataclass(frozen=True)
class DeployedResource:
    logical_id: str
    type: str
    ref: str  # what Ref answers
    attributes: Mapping[str, str]
    properties: Mapping[str, Any]  # resolved


@dataclass(frozen=True)
class DeployedFunction:
    """A Lambda function as deployed: what the local runtime needs to run it as AWS would."""

    logical_id: str
    name: str
    arn: str
    handler: str  # module.attribute, e.g. "app.acquire_lock"
    role_arn: str
    environment: Mapping[str, str]
    timeout: int
    reserved_concurrency: int | None


@dataclass(frozen=True)
class DeployedStack:
    name: str
    account_id: str
    region: str
    partition: str
    resources: Mapping[str, DeployedResource]
    outputs: Mapping[str, str]
    parameters: Mapping[str, str] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> dict[str, DeployedResource]:
        return {k: r for k, r in self.resources.items() if r.type == resource_type}

    def functions(self) -> dict[str, DeployedFunction]:
        """The stack's functions by logical id."""
        found: dict[str, DeployedFunction] = {}
        for logical_id, resource in self.of_type("AWS::Lambda::Function").items():
            properties = resource.properties
            found[logical_id] = DeployedFunction(
                logical_id=logical_id,
                name=resource.ref,
                arn=resource.attributes["Arn"],
                handler=str(properties["Handler"]),
                role_arn=str(properties["Role"]),
                environment={
                    str(k): str(v) for k, v in properties.get("Environment", {}).get("Variables", {}).items()
                },
                timeout=int(properties.get("Timeout", 3)),
                reserved_concurrency=(
                    int(properties["ReservedConcurrentExecutions"])
                    if "ReservedConcurrentExecutions" in properties
                    else None
                ),
            )
        return found

    def function_by_name(self, name: str) -> DeployedFunction | None:
        return next((f for f in self.functions().values() if name in (f.name, f.arn)), None)

    def api_function(self) -> str:
        """The logical id of the function every route of the stack's one REST API reaches."""
        from localaws.stack_resources import api_functions

        (api,) = self.of_type("AWS::ApiGateway::RestApi").values()
        (arn,) = api_functions(api.properties.get("Body", {}))
        function = self.function_by_name(arn)
        if function is None:
            raise StackDeployError(f"the API reaches {arn}, which is not a function of this stack")
        return function.logical_id

    def ref(self, logical_id: str) -> str:
        return self.resources[logical_id].ref

    def attribute(self, logical_id: str, name: str) -> str:
        return self.resources[logical_id].attributes[name]


# Name limits of the types whose names CloudFormation generates ("<stack>-<logical id>-<suffix>").
_NAME_LIMITS = {
    "AWS::IAM::Role": 64,
    "AWS::Lambda::Function": 64,
    "AWS::Events::Rule": 64,
    "AWS::StepFunctions::StateMachine": 80,
    "AWS::SNS::Topic": 256,
    "AWS::DynamoDB::Table": 255,
    "AWS::Logs::LogGroup": 512,
}


# The types given CloudFormation's random suffix here too: the service must not read its functions'
# template names from their deployed names (it is told them: NEXUS_FUNCTION_NAME).
_SUFFIXED = frozenset({"AWS::Lambda::Function"})
_SUFFIX_LENGTH = 12


def physical_name(stack_name: str, logical_id: str, resource_type: str) -> str:
    """The name CloudFormation would generate for an unnamed resource: ``<stack>-<logical id>``, and
    for a function ``-<suffix>`` as well (12 characters, fixed per stack and logical id here rather than
    random, so that a run can be repeated)."""
    name = f"{stack_name}-{logical_id}"
    limit = _NAME_LIMITS.get(resource_type, 255)
    if resource_type not in _SUFFIXED:
        return name[:limit]
    digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).digest()
    suffix = base64.b32encode(digest).decode()[:_SUFFIX_LENGTH]
    return f"{name[: limit - _SUFFIX_LENGTH - 1]}-{suffix}"


def deploy_stack(
    session: boto3.Session,
    template: Mapping[str, Any],
    *,
    stack_name: str,
    account_id: str,
    parameters: Mapping[str, str] | None = None,
) -> DeployedStack:
    """Create every resource of ``template`` in the session's account and region; see the module docstring."""
    from localaws import stack_resources

    region = session.region_name or "us-east-1"
    partition = session.get_partition_for_region(region)
    pseudo = Pseudo(account_id=account_id, region=region, stack_name=stack_name, partition=partition)
    created: dict[str, DeployedResource] = {}

    def ref(name: str) -> str:
        if name not in created:
            raise StackDeployError(f"Ref {name} before it exists (a missing dependency)")
        return created[name].ref

    def get_att(name: str, attribute: str) -> str:
        resource = created.get(name)
        if resource is None:
            raise StackDeployError(f"Fn::GetAtt {name}.{attribute} before it exists (a missing dependency)")
        if attribute not in resource.attributes:
            raise StackDeployError(f"{resource.type} {name} has no attribute {attribute} here")
        return resource.attributes[attribute]

    resolver = Resolver(template, pseudo, ref, get_att, dict(parameters or {}))
    context = stack_resources.Context(session, resolver, stack_name, account_id, region, partition)
    resources: Mapping[str, Any] = template.get("Resources", {})
    for logical_id in _creation_order(resources):
        resource = resources[logical_id]
        unknown = set(resource) - {"Type", "Properties", "DependsOn", "Condition", "DeletionPolicy",
                                   "UpdateReplacePolicy", "Metadata"}  # fmt: skip
        if unknown:
            raise StackDeployError(f"{logical_id}: unsupported resource attributes {sorted(unknown)}")
        if not resolver.included(resource):
            continue
        try:
            properties = resolver.resolve(resource.get("Properties", {})) or {}
            created[logical_id] = stack_resources.create(
                context, logical_id, str(resource["Type"]), properties
            )
        except IntrinsicError as error:
            raise StackDeployError(f"{logical_id}: {error}") from None
    outputs = {
        name: str(resolver.resolve(output["Value"]))
        for name, output in template.get("Outputs", {}).items()
        if resolver.included(output)
    }
    return DeployedStack(stack_name, account_id, region, partition, created, outputs, dict(parameters or {}))


def _creation_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids in an order where every resource comes after the ones it refers to or depends on."""
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn", [])
        needed = references(resource.get("Properties", {})) | set(
            [depends] if isinstance(depends, str) else depends
        )
        graph[logical_id] = {name for name in needed if name in resources}
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        raise StackDeployError(f"circular dependency between resources: {error.args[1]}") from None
