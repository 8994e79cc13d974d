"""Installation: the moto internals relied on (checked first, so a moto upgrade fails loudly) and the patch."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from localaws.cloudformation.changesets import (
    _backend_create_change_set,
    _backend_delete_change_set,
    _backend_describe_change_set,
    _backend_execute_change_set,
)
from localaws.cloudformation.intake import _backend_validate_template
from localaws.cloudformation.lifecycle import _patch_lifecycle
from localaws.cloudformation.operations import (
    _backend_create_stack,
    _backend_delete_stack,
    _backend_describe_stack_events,
    _backend_update_stack,
    _settling,
)
from localaws.cloudformation.outputs import _exports_get, _validate_outputs
from localaws.cloudformation.resources import _create_resource, _stack_resources_get
from localaws.cloudformation.state import (
    _ERRORS,
    _LOCAL,
    _LOCK,
    _ORIGINALS,
    _SETTINGS,
    _TOKEN_PATTERN,
    StackSimulation,
    _moto,
    _validation_error,
)
from localaws.cloudformation.template_url import fetch as fetch_template_url
from localaws.cloudformation.templates import MOTO_MODULES_USING_YAML
from localaws.cloudformation.templates import install as install_safe_yaml
from localaws.cloudformation.timeline import _outputs_get, _status_get, _status_reason_get, _status_set
from localaws.patching import MotoInternalsChanged, missing_internals

# name -> (module, dotted attribute, parameter names that must be present, or None for "not callable")
_REQUIRED_INTERNALS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    (
        "moto.cloudformation.parsing",
        "parse_and_create_resource",
        ("logical_id", "resource_json", "resources_map"),
    ),
    (
        "moto.cloudformation.parsing",
        "parse_and_update_resource",
        ("logical_id", "resource_json", "resources_map", "account_id", "region_name"),
    ),
    ("moto.cloudformation.parsing", "get_model_map", ()),
    ("moto.cloudformation.parsing", "clean_json", ("resource_json", "resources_map")),
    ("moto.cloudformation.parsing", "NULL_MODELS", None),
    ("moto.cloudformation.parsing", "Export", ("exporting_stack_id", "name", "value")),
    ("moto.cloudformation.parsing", "ResourceMap._ResourceMap__get_resources_in_dependency_order", ("self",)),
    (
        "moto.cloudformation.parsing",
        "ResourceMap._delete_resource",
        ("self", "parsed_resource", "resource_json"),
    ),
    ("moto.cloudformation.parsing", "ResourceMap.load_mapping", ("self",)),
    ("moto.cloudformation.parsing", "ResourceMap.load_parameters", ("self",)),
    ("moto.cloudformation.parsing", "ResourceMap.load_conditions", ("self",)),
    ("moto.cloudformation.parsing", "ResourceMap.validate_outputs", ("self",)),
    ("moto.cloudformation.custom_model", "CustomModel", None),
    (
        "moto.cloudformation.models",
        "Stack.__init__",
        (
            "self",
            "stack_id",
            "name",
            "template",
            "parameters",
            "account_id",
            "region_name",
            "notification_arns",
        ),
    ),
    ("moto.cloudformation.models", "Stack._parse_template", ("self",)),
    ("moto.cloudformation.models", "Stack.parse_template", ("template",)),
    ("moto.cloudformation.models", "Stack._create_resource_map", ("self",)),
    ("moto.cloudformation.models", "Stack._create_output_map", ("self",)),
    ("moto.cloudformation.models", "Stack.outputs", None),
    ("moto.cloudformation.models", "Stack.exports", None),
    ("moto.cloudformation.models", "Stack.stack_resources", None),
    (
        "moto.cloudformation.models",
        "Event.__init__",
        ("self", "stack_id", "stack_name", "logical_resource_id", "physical_resource_id", "resource_type"),
    ),
    ("moto.cloudformation.models", "Change", ("action", "logical_resource_id", "resource_type")),
    ("moto.cloudformation.models", "Event.sendToSns", ("self", "account_id", "region", "sns_topic_arns")),
    (
        "moto.cloudformation.models",
        "CloudFormationBackend.create_stack",
        ("self", "name", "template", "parameters", "notification_arns", "tags", "role_arn"),
    ),
    (
        "moto.cloudformation.models",
        "CloudFormationBackend.update_stack",
        ("self", "name", "template", "role_arn", "parameters", "tags"),
    ),
    ("moto.cloudformation.models", "CloudFormationBackend.delete_stack", ("self", "name_or_stack_id")),
    (
        "moto.cloudformation.models",
        "CloudFormationBackend.execute_change_set",
        ("self", "change_set_name", "stack_name"),
    ),
    ("moto.cloudformation.models", "CloudFormationBackend.describe_change_set", ("self", "change_set_name")),
    ("moto.cloudformation.models", "CloudFormationBackend.delete_change_set", ("self", "change_set_name")),
    (
        "moto.cloudformation.models",
        "CloudFormationBackend.create_change_set",
        ("self", "stack_name", "change_set_name", "template", "parameters", "description", "change_set_type"),
    ),
    ("moto.cloudformation.models", "CloudFormationBackend.describe_stacks", ("self", "name_or_stack_id")),
    ("moto.cloudformation.models", "CloudFormationBackend.list_stacks", ("self", "status_filter")),
    ("moto.cloudformation.models", "CloudFormationBackend.get_stack", ("self", "name_or_stack_id")),
    ("moto.cloudformation.models", "CloudFormationBackend.describe_stack_events", ("self", "stack_name")),
    ("moto.cloudformation.models", "CloudFormationBackend.validate_template", ("self", "template")),
    ("moto.cloudformation.models", "generate_stack_id", ("stack_name", "region", "account")),
    ("moto.cloudformation.responses", "CloudFormationResponse.create_stack", ("self",)),
    (
        "moto.cloudformation.responses",
        "CloudFormationResponse._get_stack_from_s3_url",
        ("self", "template_url"),
    ),
    ("moto.cloudformation.utils", "get_stack_from_s3_url", ("template_url", "account_id", "partition")),
    ("moto.s3.models", "S3Backend.get_object", ("self", "bucket_name", "key_name", "version_id")),
    ("moto.cloudformation.responses", "CloudFormationResponse.update_stack", ("self",)),
    ("moto.cloudformation.responses", "CloudFormationResponse.delete_stack", ("self",)),
    ("moto.cloudformation.responses", "CloudFormationResponse.execute_change_set", ("self",)),
    (
        "moto.cloudformation.responses",
        "CloudFormationResponse._validate_different_update",
        ("self", "incoming_params", "stack_body", "old_stack"),
    ),
    ("moto.cloudformation.exceptions", "ValidationError", ("name_or_id", "message")),
    ("moto.cloudformation.exceptions", "AlreadyExistsException", None),
    ("moto.cloudformation.exceptions", "CloudFormationError", None),
    ("moto.ec2.models.core", "TaggedEC2Resource", None),
    ("moto.ec2.models", "ec2_backends", None),
    ("moto.ec2.models", "EC2Backend.get_route_table", ("self", "route_table_id")),
    ("moto.ec2.models", "EC2Backend.disassociate_route_table", ("self", "association_id")),
    ("moto.ec2.models", "EC2Backend.delete_route", ("self", "route_table_id", "destination_cidr_block")),
    ("moto.ec2.models", "EC2Backend.delete_route_table", ("self", "route_table_id")),
    ("moto.ec2.models", "EC2Backend.detach_internet_gateway", ("self", "internet_gateway_id", "vpc_id")),
    ("moto.ec2.models", "EC2Backend.detach_vpn_gateway", ("self", "vpn_gateway_id", "vpc_id")),
    ("moto.ec2.models", "EC2Backend.delete_internet_gateway", ("self", "internet_gateway_id")),
    ("moto.ec2.models", "EC2Backend.delete_nat_gateway", ("self", "nat_gateway_id")),
    ("moto.iam.models", "iam_backends", None),
    ("moto.iam.models", "IAMBackend.detach_role_policy", ("self", "policy_arn", "role_name")),
    ("moto.iam.models", "IAMBackend.detach_user_policy", ("self", "policy_arn", "user_name")),
    ("moto.iam.models", "IAMBackend.detach_group_policy", ("self", "policy_arn", "group_name")),
    ("moto.iam.models", "IAMBackend.delete_policy", ("self", "policy_arn")),
    ("moto.core.utils", "utcnow", ()),
    # every module that parses templates with PyYAML gets the safe stand-in (localaws.cloudformation.templates)
    *((module, "yaml", None) for module in MOTO_MODULES_USING_YAML),
)


def check_moto_internals() -> None:
    """Fail loudly when a moto internal this module patches or calls has moved or changed signature."""
    problems = missing_internals(_REQUIRED_INTERNALS)
    problems.extend(_check_instance_attributes())
    if problems:
        raise MotoInternalsChanged(
            "localaws.cloudformation relies on moto internals that changed (pin moto==5.2.5 or update the "
            "patch): " + "; ".join(problems)
        )


_INSTANCE_ATTRIBUTES = {
    "CloudFormationBackend": ("stacks", "deleted_stacks", "exports", "change_sets", "region_name", "account_id"),
    "Stack": (
        "stack_id", "name", "account_id", "region_name", "template", "template_dict", "parameters", "tags",
        "events", "resource_map", "output_map", "notification_arns", "description", "role_arn",
    ),
    "ResourceMap": (
        "_parsed_resources", "_resource_json_map", "_template", "input_parameters", "resolved_parameters",
        "tags", "stack_id", "_account_id", "_region_name", "lazy_condition_map", "no_echo_parameter_keys",
    ),
}  # fmt: skip


def _check_instance_attributes() -> list[str]:
    """Build a throw-away backend and stack and check the instance attributes this module reads."""
    from moto.cloudformation import models

    backend_cls: Any = models.CloudFormationBackend
    stack_cls: Any = models.Stack
    try:
        backend = backend_cls("us-east-1", "123456789012")
        stack = stack_cls(
            stack_id="arn:aws:cloudformation:us-east-1:123456789012:stack/canary/1",
            name="canary",
            template='{"Resources": {}}',
            parameters={},
            account_id="123456789012",
            region_name="us-east-1",
        )
    except Exception as exc:  # noqa: BLE001 - the constructors themselves changed
        return [f"cannot build a CloudFormationBackend/Stack any more ({type(exc).__name__}: {exc})"]
    objects = {"CloudFormationBackend": backend, "Stack": stack, "ResourceMap": stack.resource_map}
    return [
        f"{kind} instances no longer have attribute {attribute!r}"
        for kind, attributes in _INSTANCE_ATTRIBUTES.items()
        for attribute in attributes
        if not hasattr(objects[kind], attribute)
    ]


def install(simulation: StackSimulation) -> None:
    """Patch moto's CloudFormation process-wide; calling again only replaces the simulation settings."""
    with _LOCK:
        _SETTINGS["simulation"] = simulation
        if _ORIGINALS:
            return
        check_moto_internals()
        _patch()


# A stack holds at most 50 tags, keys of 1 to 128 and values of 1 to 256 characters (botocore's model for
# ``Tags``, ``TagKey``, ``TagValue``). botocore checks the minimums in the client; AWS refuses the rest.
MAX_STACK_TAGS = 50
_CHECKED_RESPONSES = (
    "create_stack",
    "update_stack",
    "delete_stack",
    "execute_change_set",
    "create_change_set",
)
_TAG_LIMITS = (("key", "Key", 128), ("value", "Value", 256))


def _check_tags(tags: Any) -> None:
    if not isinstance(tags, list):
        return
    if len(tags) > MAX_STACK_TAGS:
        raise _validation_error(
            f"1 validation error detected: Value '{tags}' at 'tags' failed to satisfy constraint: Member must "
            f"have length less than or equal to {MAX_STACK_TAGS}"
        )
    for n, tag in enumerate(tags, start=1):
        for field, name, limit in _TAG_LIMITS:
            value = str((tag or {}).get(name) or "")
            if len(value) > limit:
                raise _validation_error(
                    f"1 validation error detected: Value '{value}' at 'tags.{n}.member.{field}' failed to "
                    f"satisfy constraint: Member must have length less than or equal to {limit}"
                )


def _with_token(name: str) -> Callable[[Any], Any]:
    """The response method ``name``, checking its ClientRequestToken and its Tags as AWS does."""
    original = _ORIGINALS[f"response.{name}"]

    def method(self: Any) -> Any:
        _check_tags(self._get_param("Tags"))
        token = self._get_param("ClientRequestToken")
        if token is not None and not _TOKEN_PATTERN.match(str(token)):
            raise _validation_error(
                f"1 validation error detected: Value '{token}' at 'clientRequestToken' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9][-a-zA-Z0-9]*"
            )
        previous = getattr(_LOCAL, "token", None)
        _LOCAL.token = token
        try:
            return original(self)
        finally:
            _LOCAL.token = previous

    method.__name__ = name
    method.__nexus_original__ = original  # type: ignore[attr-defined]
    return method


def _skip_moto_update_check(self: Any, incoming_params: Any, stack_body: Any, old_stack: Any) -> None:
    """moto's string comparison is replaced by the backend's own no-op check (see :func:`_noop`)."""


def _patch() -> None:
    m = _moto()
    parsing, models, responses, exceptions = m.parsing, m.models, m.responses, m.exceptions
    backend_cls, stack_cls, response_cls = (
        models.CloudFormationBackend,
        models.Stack,
        responses.CloudFormationResponse,
    )

    base: type[Exception] = exceptions.CloudFormationError
    _ERRORS.update(
        InvalidChangeSetStatus=type(
            "InvalidChangeSetStatusError", (base,), {"code": "InvalidChangeSetStatus"}
        ),
        ChangeSetNotFound=type("ChangeSetNotFoundError", (base,), {"code": "ChangeSetNotFound"}),
        CloudFormationError=exceptions.CloudFormationError,
    )
    _ORIGINALS.update(
        parse_and_create_resource=parsing.parse_and_create_resource,
        parse_and_update_resource=parsing.parse_and_update_resource,
        validate_outputs=parsing.ResourceMap.validate_outputs,
        create_change_set=backend_cls.create_change_set,
        get_stack=backend_cls.get_stack,
        describe_stacks=backend_cls.describe_stacks,
        list_stacks=backend_cls.list_stacks,
    )
    _ORIGINALS["Stack.outputs"] = inspect.getattr_static(stack_cls, "outputs")
    _ORIGINALS["Stack.exports"] = inspect.getattr_static(stack_cls, "exports")
    for name in _CHECKED_RESPONSES:
        _ORIGINALS[f"response.{name}"] = getattr(response_cls, name)
    replacements = {
        _backend_create_stack: backend_cls.create_stack,
        _backend_update_stack: backend_cls.update_stack,
        _backend_delete_stack: backend_cls.delete_stack,
        _backend_execute_change_set: backend_cls.execute_change_set,
        _backend_describe_change_set: backend_cls.describe_change_set,
        _backend_delete_change_set: backend_cls.delete_change_set,
        _backend_create_change_set: backend_cls.create_change_set,
        _backend_describe_stack_events: backend_cls.describe_stack_events,
        _backend_validate_template: backend_cls.validate_template,
        _validate_outputs: parsing.ResourceMap.validate_outputs,
        _skip_moto_update_check: response_cls._validate_different_update,
    }
    for replacement, replaced in replacements.items():
        replacement.__nexus_original__ = replaced  # type: ignore[attr-defined]

    safe_yaml_problems = install_safe_yaml()
    if safe_yaml_problems:
        raise MotoInternalsChanged("; ".join(safe_yaml_problems))
    _create_resource.__nexus_original__ = parsing.parse_and_create_resource  # type: ignore[attr-defined]
    parsing.parse_and_create_resource = _create_resource
    parsing.ResourceMap.validate_outputs = _validate_outputs

    stack_cls.status = property(_status_get, _status_set)
    stack_cls.stack_status_reason = property(_status_reason_get)
    stack_cls.outputs = property(_outputs_get)
    stack_cls.exports = property(_exports_get)
    stack_cls.stack_resources = property(_stack_resources_get)

    backend_cls.create_stack = _backend_create_stack
    backend_cls.update_stack = _backend_update_stack
    backend_cls.delete_stack = _backend_delete_stack
    backend_cls.execute_change_set = _backend_execute_change_set
    backend_cls.describe_change_set = _backend_describe_change_set
    backend_cls.delete_change_set = _backend_delete_change_set
    backend_cls.create_change_set = _backend_create_change_set
    backend_cls.describe_stack_events = _backend_describe_stack_events
    backend_cls.validate_template = _backend_validate_template
    for name in ("get_stack", "describe_stacks", "list_stacks"):
        setattr(backend_cls, name, _settling(name))

    for name in _CHECKED_RESPONSES:
        setattr(response_cls, name, _with_token(name))
    read_as_moto_does = importlib.import_module("moto.cloudformation.utils").get_stack_from_s3_url

    def _get_stack_from_s3_url(self: Any, template_url: str) -> str:
        """TemplateURL read as CloudFormation reads it (localaws/cloudformation/template_url.py)."""
        return fetch_template_url(template_url, self.current_account, self.partition, read_as_moto_does)

    response_cls._get_stack_from_s3_url = _get_stack_from_s3_url
    response_cls._validate_different_update = _skip_moto_update_check
    _patch_lifecycle(backend_cls, response_cls)
