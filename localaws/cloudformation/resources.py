"""Resources: create, update and delete one resource at a time, with AWS-like events and reasons."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from localaws.authorization import AccessDenied
from localaws.cloudformation import simulated
from localaws.cloudformation.handlers import handler_message, handling
from localaws.cloudformation.properties import property_failure, resolved_parameters
from localaws.cloudformation.state import _ORIGINALS, _moto
from localaws.cloudformation.timeline import _find_op, _Op, _Step

_LOG = logging.getLogger(__name__)


class _ResourceFailure(Exception):
    """A logical resource failed; its *_FAILED event has already been recorded."""

    def __init__(self, logical_id: str, resource_type: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


class _NestedStackFailed(Exception):
    """A nested stack created by a parent template ended in rollback."""


def _is_emulated(resource_type: str) -> bool:
    """True when moto really creates this type (its model map knows it and it can finish locally)."""
    m = _moto()
    if resource_type.startswith("Custom::") or resource_type in m.parsing.NULL_MODELS:
        return False
    model = m.parsing.get_model_map().get(resource_type)
    return model is not None and not issubclass(model, m.custom_model.CustomModel)


def _unsupported_reason(resource_type: str) -> str:
    return f"resource type {resource_type} is not emulated by the local AWS"


def _describe(exc: BaseException) -> str:
    """A readable, AWS-like reason for an exception raised by moto while handling a resource."""
    if isinstance(exc, _ResourceFailure):
        return exc.reason
    if isinstance(exc, AccessDenied):
        return handler_message(exc)
    if isinstance(exc, _NestedStackFailed | _OutputFailure):
        return str(exc)
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):  # botocore ClientError
        error = response["Error"]
        return f'Resource handler returned message: "{error.get("Message")}" (HandlerErrorCode: {error.get("Code")})'
    code = getattr(exc, "error_type", None) or getattr(exc, "code", None)
    message = getattr(exc, "message", None)
    if isinstance(code, str) and message:  # moto ServiceException / RESTError
        return f'Resource handler returned message: "{message}" (HandlerErrorCode: {code})'
    # moto itself failed (a KeyError, an AttributeError...): that is no answer AWS gives, so say plainly
    # what the local AWS does not emulate; the exception goes to the log only.
    _LOG.info("moto failed on a resource", exc_info=exc)
    return (
        "The local AWS does not emulate this resource as the template configures it: moto cannot handle "
        "one of its properties or references"
    )


def _is_service_error(exc: BaseException) -> bool:
    return isinstance(getattr(exc, "error_type", None) or getattr(exc, "code", None), str) or hasattr(
        exc, "response"
    )


def _physical_id(resource: Any) -> str:
    try:
        value = resource.physical_resource_id
    except Exception:  # noqa: BLE001 - moto models compute this lazily; never let it break an event
        return ""
    return "" if value is None else str(value)


def _properties(resource_json: Mapping[str, Any]) -> str | None:
    try:
        return json.dumps(resource_json.get("Properties") or {}, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return None


def _in_progress(logical_id: str, resource_type: str, verb: str, resource_json: Mapping[str, Any]) -> _Step:
    return _Step(logical_id, "", resource_type, f"{verb}_IN_PROGRESS", properties=_properties(resource_json))


def _create_resource(
    logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str, region_name: str
) -> Any:
    """Replacement for ``parsing.parse_and_create_resource`` (called lazily by ``ResourceMap[...]``)."""
    original = _ORIGINALS["parse_and_create_resource"]
    op = _find_op(resources_map)
    if op is None:
        return original(logical_id, resource_json, resources_map, account_id, region_name)
    condition = resource_json.get("Condition")
    if condition and not resources_map.lazy_condition_map[condition]:
        return None
    resource_type = str(resource_json.get("Type"))
    emulated = _is_emulated(resource_type)
    if not emulated and op.simulation.unsupported != "simulate":
        reason = _unsupported_reason(resource_type)
        if op.simulation.unsupported == "skip":
            if logical_id not in op.skipped:
                op.skipped.add(logical_id)
                op.steps.append(
                    _Step(logical_id, "", resource_type, "CREATE_COMPLETE", f"WARNING: skipped: {reason}")
                )
            return None
        op.steps.append(_in_progress(logical_id, resource_type, "CREATE", resource_json))
        op.steps.append(_Step(logical_id, "", resource_type, "CREATE_FAILED", reason))
        raise _ResourceFailure(logical_id, resource_type, reason)
    if not emulated:
        simulated.simulated_ids(resources_map).add((logical_id, resource_type))
    invalid = property_failure(logical_id, resource_json, resolved_parameters(resources_map), region_name)
    if invalid is not None:
        op.steps.append(_in_progress(logical_id, resource_type, "CREATE", resource_json))
        op.steps.append(_Step(logical_id, "", resource_type, "CREATE_FAILED", invalid))
        raise _ResourceFailure(logical_id, resource_type, invalid)
    if not emulated:
        return _create_simulated(op, logical_id, resource_type, resource_json, resources_map)
    properties_json = copy.deepcopy(resource_json)
    try:
        with handling(resource_type, "create", account_id, region_name):
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        if resource is None:
            raise RuntimeError("moto returned no resource")
    except _ResourceFailure:
        raise  # a resource this one refers to failed: this one never started
    except Exception as exc:
        reason = _describe(exc)
        op.steps.append(_in_progress(logical_id, resource_type, "CREATE", properties_json))
        op.steps.append(_Step(logical_id, "", resource_type, "CREATE_FAILED", reason))
        raise _ResourceFailure(logical_id, resource_type, reason) from exc
    op.steps.append(_in_progress(logical_id, resource_type, "CREATE", properties_json))
    op.created.append(logical_id)
    if not resource.is_created():
        reason = f"{_unsupported_reason(resource_type)} (it never finishes creating)"
        op.steps.append(_Step(logical_id, _physical_id(resource), resource_type, "CREATE_FAILED", reason))
        raise _ResourceFailure(logical_id, resource_type, reason)
    op.steps.append(_Step(logical_id, _physical_id(resource), resource_type, "CREATE_COMPLETE"))
    return resource


def _create_simulated(
    op: _Op, logical_id: str, resource_type: str, resource_json: dict[str, Any], resources_map: Any
) -> Any:
    op.steps.append(_in_progress(logical_id, resource_type, "CREATE", resource_json))
    try:
        resource = simulated.create(logical_id, resource_json, resources_map)
    except _ResourceFailure:
        raise
    except Exception as exc:
        reason = _describe(exc)
        op.steps.append(_Step(logical_id, "", resource_type, "CREATE_FAILED", reason))
        raise _ResourceFailure(logical_id, resource_type, reason) from exc
    op.created.append(logical_id)
    op.steps.append(_Step(logical_id, resource.physical_resource_id, resource_type, "CREATE_COMPLETE"))
    return resource


class _OutputFailure(Exception):
    """An output or export could not be resolved after the resources were created."""


def _dependency_order(rm: Any) -> list[str]:
    order: list[str] = rm._ResourceMap__get_resources_in_dependency_order()
    return order


def _disassociate_subnet(ec2: Any, association: Any) -> None:
    route_table = ec2.get_route_table(association.route_table_id)
    for association_id, subnet_id in list(route_table._associations.items()):
        if subnet_id == association.subnet_id:
            ec2.disassociate_route_table(association_id)


def _delete_route(ec2: Any, route: Any) -> None:
    ec2.delete_route(
        route_table_id=route.route_table.id,
        destination_cidr_block=route.destination_cidr_block,
        destination_ipv6_cidr_block=getattr(route, "destination_ipv6_cidr_block", None),
    )


def _detach_gateway(ec2: Any, attachment: Any) -> None:
    if str(attachment.gateway_id).startswith("igw-"):
        ec2.detach_internet_gateway(internet_gateway_id=attachment.gateway_id, vpc_id=attachment.vpc_id)
    else:
        ec2.detach_vpn_gateway(vpn_gateway_id=attachment.gateway_id, vpc_id=attachment.vpc_id)


# moto cannot delete these networking types from CloudFormation, and the VPC then refuses to go away
# (DependencyViolation): delete them through the EC2 backend's API-level methods instead.
_EC2_DELETERS: dict[str, Callable[[Any, Any], None]] = {
    "AWS::EC2::SubnetRouteTableAssociation": _disassociate_subnet,
    "AWS::EC2::Route": _delete_route,
    "AWS::EC2::RouteTable": lambda ec2, table: ec2.delete_route_table(table.id),
    "AWS::EC2::VPCGatewayAttachment": _detach_gateway,
    "AWS::EC2::InternetGateway": lambda ec2, gateway: ec2.delete_internet_gateway(gateway.id),
    "AWS::EC2::NatGateway": lambda ec2, gateway: ec2.delete_nat_gateway(gateway.id),
}


def _delete_managed_policy(iam: Any, policy: Any) -> None:
    """Detach the policy from every role, user and group, then delete it, as its delete handler does."""
    for role in list(iam.roles.values()):
        if policy.arn in role.managed_policies:
            iam.detach_role_policy(policy.arn, role.name)
    for user in list(iam.users.values()):
        if policy.arn in user.managed_policies:
            iam.detach_user_policy(policy.arn, user.name)
    for group in list(iam.groups.values()):
        if policy.arn in group.managed_policies:
            iam.detach_group_policy(policy.arn, group.name)
    iam.delete_policy(policy.arn)


# moto leaves a customer managed policy in place (and attached, so its roles cannot be deleted either):
# delete it through the IAM backend's API-level methods, like the networking types above.
_IAM_DELETERS: dict[str, Callable[[Any, Any], None]] = {"AWS::IAM::ManagedPolicy": _delete_managed_policy}


def _moto_can_delete(resource_type: str) -> bool:
    model = _moto().parsing.get_model_map().get(resource_type)
    if model is None:
        return False
    concrete = not hasattr(model.delete_from_cloudformation_json, "__isabstractmethod__")
    return concrete or callable(getattr(model, "delete", None))


def _delete_one(rm: Any, resource: Any, resource_json: dict[str, Any]) -> str | None:
    """Delete one resource; returns a WARNING reason when the local AWS had to leave it in place."""
    resource_type = str(resource_json.get("Type"))
    if simulated.is_simulated(resource):
        return None
    with handling(resource_type, "delete", rm._account_id, rm._region_name):
        if resource_type in _EC2_DELETERS:
            _EC2_DELETERS[resource_type](
                _moto().ec2_models.ec2_backends[rm._account_id][rm._region_name], resource
            )
            return None
        if resource_type in _IAM_DELETERS:
            _IAM_DELETERS[resource_type](
                _moto().iam_models.iam_backends[rm._account_id][resource.partition], resource
            )
            return None
        rm._delete_resource(resource, resource_json)
    if _moto_can_delete(resource_type):
        return None
    return f"WARNING: the local AWS cannot delete resource type {resource_type}; it was left in place"


def _delete_resources(
    rm: Any, items: list[tuple[str, Any, dict[str, Any]]]
) -> tuple[list[_Step], list[str], list[str]]:
    """Delete (logical id, moto object, resource json) in order, retrying dependency failures.

    Returns the events, the logical ids that failed with an AWS-like error (DELETE_FAILED), and the ids
    that are gone from the stack (deleted, or skipped because moto crashed on them).
    """
    pending = list(items)
    errors: dict[str, Exception] = {}
    steps: list[_Step] = []
    gone: list[str] = []
    progress = True
    while pending and progress:
        progress = False
        for item in list(pending):
            name, resource, resource_json = item
            try:
                warning = _delete_one(rm, resource, resource_json)
            except Exception as exc:  # noqa: BLE001 - retried: another resource may still depend on it
                errors[name] = exc
                continue
            pending.remove(item)
            gone.append(name)
            progress = True
            resource_type = str(resource_json.get("Type"))
            steps.append(_Step(name, _physical_id(resource), resource_type, "DELETE_IN_PROGRESS"))
            steps.append(_Step(name, _physical_id(resource), resource_type, "DELETE_COMPLETE", warning))
    failed: list[str] = []
    for name, resource, resource_json in pending:
        resource_type = str(resource_json.get("Type"))
        error = errors[name]
        steps.append(_Step(name, _physical_id(resource), resource_type, "DELETE_IN_PROGRESS"))
        if _is_service_error(error):
            steps.append(
                _Step(name, _physical_id(resource), resource_type, "DELETE_FAILED", _describe(error))
            )
            failed.append(name)
        else:  # a moto crash, not something AWS would do: report it, do not strand the stack
            reason = (
                f"WARNING: the local AWS could not delete this resource and dropped it: {_describe(error)}"
            )
            steps.append(_Step(name, _physical_id(resource), resource_type, "DELETE_SKIPPED", reason))
            gone.append(name)
    return steps, failed, gone


def _live_resources(rm: Any, names: list[str]) -> list[tuple[str, Any, dict[str, Any]]]:
    items = []
    for name in names:
        resource = rm._parsed_resources.get(name)
        resource_json = rm._resource_json_map.get(name)
        if resource is None or isinstance(resource, str | int | float | list | dict) or resource_json is None:
            continue
        if getattr(resource, "logical_resource_id", name) != name:
            continue
        items.append((name, resource, resource_json))
    return items


def _update_modified(op: _Op, rm: Any, names: list[str]) -> list[str]:
    """Apply moto's update to ``names`` (multi-pass, as moto does). Returns the names updated."""
    original = _ORIGINALS["parse_and_update_resource"]
    pending = list(names)
    errors: dict[str, Exception] = {}
    updated: list[str] = []
    for _attempt in range(5):
        if not pending:
            break
        for name in list(pending):
            resource_json = rm._resource_json_map[name]
            resource_type = str(resource_json.get("Type"))
            previous = rm._parsed_resources.get(name)
            invalid = property_failure(name, resource_json, resolved_parameters(rm), rm._region_name)
            if invalid is not None:
                errors[name] = _ResourceFailure(name, resource_type, invalid)
                continue
            if not _is_emulated(resource_type) and not simulated.is_simulated(previous):
                errors[name] = _ResourceFailure(name, resource_type, _unsupported_reason(resource_type))
                continue
            properties = _properties(resource_json)
            try:
                if simulated.is_simulated(previous):
                    new = previous.updated(simulated.resolve_properties(resource_json, rm))
                else:
                    with handling(resource_type, "update", rm._account_id, rm._region_name):
                        new = original(
                            name, copy.deepcopy(resource_json), rm, rm._account_id, rm._region_name
                        )
            except Exception as exc:  # noqa: BLE001 - retried in the next pass, as moto does for dependency order
                errors[name] = exc
                continue
            pending.remove(name)
            updated.append(name)
            reason = None
            if new is None:  # moto has no update for this type: keep the resource rather than drop it
                new = previous
                reason = f"WARNING: the local AWS cannot update resource type {resource_type}; left unchanged"
            rm._parsed_resources[name] = new
            op.steps.append(
                _Step(name, _physical_id(new), resource_type, "UPDATE_IN_PROGRESS", properties=properties)
            )
            op.steps.append(_Step(name, _physical_id(new), resource_type, "UPDATE_COMPLETE", reason))
    if pending:
        name = pending[0]
        resource_type = str(rm._resource_json_map[name].get("Type"))
        reason = _describe(errors[name])
        op.steps.append(_Step(name, "", resource_type, "UPDATE_IN_PROGRESS"))
        op.steps.append(_Step(name, "", resource_type, "UPDATE_FAILED", reason))
        raise _ResourceFailure(name, resource_type, reason)
    return updated


def _stack_resources_get(self: Any) -> list[Any]:
    """Only resources that exist: never lazily create one, never return the None of a dropped one."""
    rm = self.resource_map
    return [resource for _name, resource, _json in _live_resources(rm, list(rm._resource_json_map))]
