"""Deploy the bootstrap template into the target account with the operator's own credentials.

The create-or-update and the watch are the service layer's (``chalicelib/service/bootstrap.py``, which
``POST /targets/{id}/bootstrap`` runs too); this module gives it CloudFormation through the operator's
signed-in session and keeps the CLI's shape: the final status, or ``BootstrapFailed``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import DeployerError
from chalicelib.service.bootstrap import POLL_SECONDS, BootstrapFailed

if TYPE_CHECKING:
    import boto3

    from nexus_cli.signin import SignInOptions

__all__ = ["BootstrapFailed", "deploy_stack", "stack_output"]


def _stacks(session: boto3.Session, options: SignInOptions) -> Any:
    from chalicelib.adapters.signin import BotoBootstrapStacks
    from nexus_cli.signin import client

    return BotoBootstrapStacks(client(session, "cloudformation", options))


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
    from chalicelib.service.bootstrap import deploy_stack as deploy

    try:
        outcome = deploy(
            _stacks(session, options),
            stack_name,
            json.dumps(template),
            region=options.region,
            parameters=parameters,
            progress=progress,
            timeout=timeout,
            poll_seconds=poll_seconds,
        )
    except BootstrapFailed:
        raise
    except DeployerError as error:
        raise BootstrapFailed(error.message, code=error.code, hint=error.hint) from None
    return outcome.status


def stack_output(session: boto3.Session, options: SignInOptions, stack_name: str, key: str) -> str | None:
    """One output of a settled stack (None when it has no such output)."""
    try:
        stack = _stacks(session, options).describe(stack_name)
    except DeployerError as error:
        raise BootstrapFailed(error.message, code=error.code, hint=error.hint) from None
    value: str | None = stack.outputs.get(key)
    return value
