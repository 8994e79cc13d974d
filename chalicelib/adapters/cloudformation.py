"""CloudFormation in one target account and region, as the workflow needs it.

Stack events are read newest first and only until the last event already recorded, or the first
event of another operation (another ClientRequestToken): old history is never paged through. One
operation may send several requests (a recreate deletes then creates, a cancel rolls back): their tokens
are the operation's token plus a suffix (``nexus-op-...-cancel``), and all of them count as this
operation's.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call, error_code, error_message
from chalicelib.domain.plans import PlannedChange, replacement_of
from chalicelib.service.ports import ChangeSetInfo, StackEventInfo, StackInfo, StackSpec

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

CAPABILITIES: list[Any] = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
MAX_EVENT_PAGES = 10
MAX_CHANGE_SET_PAGES = 50  # 500 resources per template: a change set never needs more


def belongs_to(token: str | None, operation_token: str) -> bool:
    """True for the operation's own token and the tokens derived from it (``<token>-<suffix>``)."""
    return token is not None and (token == operation_token or token.startswith(operation_token + "-"))


def _iso(value: datetime | str) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _is_missing_stack(error: ClientError) -> bool:
    return error_code(error) == "ValidationError" and "does not exist" in error_message(error)


class CloudFormationGateway:
    def __init__(self, client: CloudFormationClient) -> None:
        self._cfn = client

    def describe_stack(self, stack: str) -> StackInfo | None:
        with aws_call("DescribeStacks"):
            try:
                stacks = self._cfn.describe_stacks(StackName=stack)["Stacks"]
            except ClientError as error:
                if _is_missing_stack(error):
                    return None
                raise
        if not stacks:
            return None
        found = stacks[0]
        return StackInfo(
            stack_id=found["StackId"],
            stack_name=found["StackName"],
            status=found["StackStatus"],
            status_reason=found.get("StackStatusReason"),
            outputs={o["OutputKey"]: str(o.get("OutputValue", "")) for o in found.get("Outputs", [])},
            tags={t["Key"]: t["Value"] for t in found.get("Tags", [])},
        )

    def create_stack(self, spec: StackSpec, client_request_token: str) -> str:
        with aws_call("CreateStack"):
            response = self._cfn.create_stack(
                StackName=spec.stack_name,
                **spec.template_argument(),  # type: ignore[arg-type]
                Parameters=_parameters(spec.parameters, spec.use_previous),
                Tags=_tags(spec.tags),
                Capabilities=CAPABILITIES,
                ClientRequestToken=client_request_token,
            )
        return response["StackId"]

    def create_change_set(
        self, spec: StackSpec, change_set_name: str, change_set_type: str = "UPDATE"
    ) -> None:
        with aws_call("CreateChangeSet"):
            try:
                self._cfn.create_change_set(
                    StackName=spec.stack_name,
                    ChangeSetName=change_set_name,
                    ChangeSetType=change_set_type,  # type: ignore[arg-type]
                    **spec.template_argument(),  # type: ignore[arg-type]
                    Parameters=_parameters(spec.parameters, spec.use_previous),
                    Tags=_tags(spec.tags),
                    Capabilities=CAPABILITIES,
                )
            except ClientError as error:
                if error_code(error) != "AlreadyExistsException":  # a repeated step: it is ours
                    raise

    def describe_change_set(self, stack: str, change_set_name: str) -> ChangeSetInfo:
        changes: list[PlannedChange] = []
        kwargs: dict[str, Any] = {"StackName": stack, "ChangeSetName": change_set_name}
        with aws_call("DescribeChangeSet"):
            for _ in range(MAX_CHANGE_SET_PAGES):
                found = self._cfn.describe_change_set(**kwargs)
                for change in found.get("Changes", []):
                    resource = change.get("ResourceChange") or {}
                    if change.get("Type", "Resource") != "Resource" or not resource:
                        continue
                    action = str(resource.get("Action", ""))
                    changes.append(
                        PlannedChange(
                            action=action,
                            logical_id=str(resource.get("LogicalResourceId", "")),
                            resource_type=str(resource.get("ResourceType", "")),
                            replacement=replacement_of(resource.get("Replacement"))
                            if action == "Modify"
                            else False,
                        )
                    )
                if not found.get("NextToken") or found["Status"] != "CREATE_COMPLETE":
                    break
                kwargs["NextToken"] = found["NextToken"]
        return ChangeSetInfo(
            status=found["Status"],
            status_reason=found.get("StatusReason"),
            execution_status=found.get("ExecutionStatus"),
            has_changes=bool(changes),
            changes=tuple(changes),
        )

    def execute_change_set(self, stack: str, change_set_name: str, client_request_token: str) -> None:
        with aws_call("ExecuteChangeSet"):
            try:
                self._cfn.execute_change_set(
                    StackName=stack, ChangeSetName=change_set_name, ClientRequestToken=client_request_token
                )
            except ClientError as error:
                # Executed already by an earlier attempt of this same step: the stack is moving.
                if error_code(error) not in ("InvalidChangeSetStatus", "InvalidChangeSetStatusException"):
                    raise

    def delete_change_set(self, stack: str, change_set_name: str) -> None:
        """Delete it; one already gone (a retried step deleted it before) is no error, whether
        CloudFormation answers 200 (as it is reported to) or ChangeSetNotFound."""
        with aws_call("DeleteChangeSet"):
            try:
                self._cfn.delete_change_set(StackName=stack, ChangeSetName=change_set_name)
            except ClientError as error:
                if error_code(error) != "ChangeSetNotFound":
                    raise

    def delete_stack(
        self, stack_id: str, client_request_token: str, retain_resources: tuple[str, ...] = ()
    ) -> None:
        kwargs: dict[str, Any] = {"StackName": stack_id, "ClientRequestToken": client_request_token}
        if retain_resources:  # AWS accepts it only for a stack in DELETE_FAILED
            kwargs["RetainResources"] = list(retain_resources)
        with aws_call("DeleteStack"):
            self._cfn.delete_stack(**kwargs)

    def cancel_update_stack(self, stack_id: str, client_request_token: str) -> None:
        with aws_call("CancelUpdateStack"):
            self._cfn.cancel_update_stack(StackName=stack_id, ClientRequestToken=client_request_token)

    def continue_update_rollback(
        self, stack_id: str, client_request_token: str, resources_to_skip: tuple[str, ...] = ()
    ) -> None:
        kwargs: dict[str, Any] = {"StackName": stack_id, "ClientRequestToken": client_request_token}
        if resources_to_skip:
            kwargs["ResourcesToSkip"] = list(resources_to_skip)
        with aws_call("ContinueUpdateRollback"):
            self._cfn.continue_update_rollback(**kwargs)

    def new_events(
        self, stack_id: str, client_request_token: str, since_event_id: str | None, not_before: str
    ) -> list[StackEventInfo]:
        collected: list[StackEventInfo] = []
        kwargs: dict[str, Any] = {"StackName": stack_id}
        with aws_call("DescribeStackEvents"):
            for _ in range(MAX_EVENT_PAGES):
                page = self._cfn.describe_stack_events(**kwargs)
                for raw in page.get("StackEvents", []):
                    token = raw.get("ClientRequestToken")
                    timestamp = _iso(raw["Timestamp"])
                    if raw["EventId"] == since_event_id:
                        return collected[::-1]
                    if token and not belongs_to(token, client_request_token):
                        return collected[::-1]  # an earlier operation's history
                    if not token and timestamp < not_before:
                        return collected[::-1]
                    collected.append(
                        StackEventInfo(
                            event_id=raw["EventId"],
                            timestamp=timestamp,
                            logical_id=raw.get("LogicalResourceId") or "",
                            resource_type=raw.get("ResourceType") or "",
                            status=raw.get("ResourceStatus") or "",
                            reason=raw.get("ResourceStatusReason"),
                            client_request_token=token,
                        )
                    )
                next_token = page.get("NextToken")
                if not next_token:
                    break
                kwargs["NextToken"] = next_token
        return collected[::-1]


def _parameters(parameters: dict[str, str], use_previous: tuple[str, ...] = ()) -> list[Any]:
    given: list[Any] = [
        {"ParameterKey": key, "ParameterValue": value}
        for key, value in sorted(parameters.items())
        if key not in use_previous
    ]
    return given + [{"ParameterKey": key, "UsePreviousValue": True} for key in sorted(use_previous)]


def _tags(tags: dict[str, str]) -> list[Any]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
