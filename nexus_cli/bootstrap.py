"""Deploy the bootstrap template into the target account with the operator's own credentials.

Create the stack, or update it when it exists ("No updates are to be performed." is success), then
poll its status and print each new stack event of this operation until it settles. Statuses come
from ``chalicelib.domain.stack_status`` so a failed or rolled-back stack is never taken for success.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import StackOperationError

if TYPE_CHECKING:
    import boto3

    from nexus_cli.signin import SignInOptions

CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
POLL_SECONDS = 2.0


class BootstrapFailed(StackOperationError):
    pass


def _events_since(cfn: Any, stack_name: str, seen: set[str]) -> list[dict[str, Any]]:
    fresh = []
    for event in cfn.describe_stack_events(StackName=stack_name)["StackEvents"]:
        if event["EventId"] not in seen:
            seen.add(event["EventId"])
            fresh.append(event)
    return list(reversed(fresh))


def deploy_stack(
    session: boto3.Session,
    options: SignInOptions,
    stack_name: str,
    template: dict[str, Any],
    *,
    progress: Callable[[str], None] | None,
    timeout: float = 900.0,
    poll_seconds: float = POLL_SECONDS,
    parameters: dict[str, str] | None = None,
) -> str:
    """Create or update ``stack_name`` in ``options.region``; the final status, or BootstrapFailed."""
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.domain.stack_status import StackPhase, phase_of
    from nexus_cli.signin import aws_error, client

    cfn = client(session, "cloudformation", options)
    body = json.dumps(template)
    given = [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()]
    seen: set[str] = set()
    try:
        existing = [
            s for s in cfn.describe_stacks()["Stacks"]
            if s["StackName"] == stack_name and s["StackStatus"] != "DELETE_COMPLETE"
        ]  # fmt: skip
        for old in existing:  # events of earlier operations are not this run's progress
            _events_since(cfn, old["StackId"], seen)
        if existing:
            try:
                cfn.update_stack(
                    StackName=stack_name, TemplateBody=body, Parameters=given, Capabilities=CAPABILITIES
                )
            except ClientError as error:
                if "No updates are to be performed" in str(error):
                    if progress:
                        progress(f"{stack_name}: no changes")
                    return str(existing[0]["StackStatus"])
                raise
        else:
            cfn.create_stack(
                StackName=stack_name, TemplateBody=body, Parameters=given, Capabilities=CAPABILITIES
            )
        deadline = time.monotonic() + timeout
        while True:
            for event in _events_since(cfn, stack_name, seen):
                if progress:
                    reason = f" {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
                    progress(f"  {event['LogicalResourceId']} {event['ResourceStatus']}{reason}")
            stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
            status = str(stack["StackStatus"])
            phase = phase_of(status)
            if phase is not StackPhase.IN_PROGRESS:
                if phase is StackPhase.SUCCEEDED:
                    return status
                raise BootstrapFailed(
                    f"stack {stack_name} ended {status}: {stack.get('StackStatusReason', '')}".strip(),
                    code="STACK_OPERATION_FAILED",
                )
            if time.monotonic() > deadline:
                raise BootstrapFailed(
                    f"stack {stack_name} still {status} after {timeout:.0f} s", code="TIMEOUT"
                )
            time.sleep(poll_seconds)
    except (ClientError, BotoCoreError) as error:
        translated = aws_error(error, "CreateStack")
        raise BootstrapFailed(translated.message, code=translated.code, hint=translated.hint) from None


def stack_output(session: boto3.Session, options: SignInOptions, stack_name: str, key: str) -> str | None:
    """One output of a settled stack (None when it has no such output)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from nexus_cli.signin import aws_error, client

    try:
        stack = client(session, "cloudformation", options).describe_stacks(StackName=stack_name)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        translated = aws_error(error, "DescribeStacks")
        raise BootstrapFailed(translated.message, code=translated.code, hint=translated.hint) from None
    return next((str(o["OutputValue"]) for o in stack.get("Outputs", []) if o["OutputKey"] == key), None)
