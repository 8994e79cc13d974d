"""What a create or an update decides before it writes anything: whether the template and parameters
sent are refused, the target takes the region, the stack's status lets it be updated, and the stack is
already at the configuration asked for. Deciding apart from doing: ``check_new`` and ``check_change``
need no AWS call, so the routes run them as their precheck, before an Idempotency-Key's record."""

from __future__ import annotations

from collections.abc import Collection

from chalicelib.domain.errors import Conflict, UnprocessableRequest
from chalicelib.domain.model import Action, Deployment, DeploymentStatus, Target
from chalicelib.domain.noecho import ParameterSplit, split_parameters
from chalicelib.domain.parameters import check_values
from chalicelib.domain.stack_status import Remedy, remedy_of
from chalicelib.domain.templates import NO_ECHO_MASK, TemplateSummary, parse_template
from chalicelib.service.deployments.core import DeploymentCore
from chalicelib.service.deployments.values import DeploymentChange, NewDeployment


def checked_split(
    summary: TemplateSummary, body: str, parameters: dict[str, str], previous: Collection[str]
) -> ParameterSplit:
    """``parameters``, split into public and NoEcho, once they are checked against the template
    (``summary`` of ``body``): matched to its declarations (``previous``: the names the stack already
    has, whose NoEcho values it keeps) and held to their constraints. No AWS call."""
    split = split_parameters(summary, parameters, previous)
    summary.check_parameters(split.public)
    check_values(body, parameters)
    return split


def checked_for_create(new: NewDeployment) -> ParameterSplit:
    """``new``'s parameters, checked as a new stack takes them: the template parsed, no previous values."""
    return checked_split(parse_template(new.template_body), new.template_body, new.parameters, ())


def never_made_a_stack(deployment: Deployment) -> bool:
    """A create that failed before CloudFormation had a stack for it: nothing exists to update."""
    return (
        deployment.live
        and deployment.status is DeploymentStatus.FAILED
        and deployment.operation.action is Action.CREATE
        and not deployment.operation.running
        and deployment.stack_id is None
        and not deployment.ever_active
    )


class DeploymentChecks(DeploymentCore):
    def check_new(self, new: NewDeployment) -> ParameterSplit | None:
        """What ``create`` refuses with no AWS call: a template sent inline and the parameters given for
        it (their split, when there is one: a template at template_url is checked once it is read),
        template_url's shape and the notification request."""
        split = checked_for_create(new) if new.template_body else None
        if self._sources is not None:
            self._sources.check(new)
        return split

    def check_change(self, change: DeploymentChange) -> TemplateSummary | None:
        """What ``update`` refuses with no AWS call: a template sent inline, and the parameters sent for
        it, which replace the stack's, but for NoEcho ones, whose values the stack may keep (a name the
        template lacks, a required one left out, a value it does not allow)."""
        if not change.template_body:
            return None
        inline = parse_template(change.template_body)
        if change.parameters is not None:
            inline.check_parameters({**dict.fromkeys(inline.no_echo, NO_ECHO_MASK), **change.parameters})
            check_values(change.template_body, change.parameters)
        return inline

    @staticmethod
    def _unchanged(deployment: Deployment, fingerprint: str) -> bool:
        """True when the stack is known to be at exactly this configuration, so a deploy would be a no-op.

        No AWS call is made: drift made outside the service is not seen here (that is drift detection's
        job). A failed update whose stack rolled back is at its last successful configuration again.
        """
        if not deployment.live or deployment.operation.running or deployment.last_success_hash != fingerprint:
            return False
        if deployment.status is DeploymentStatus.ACTIVE:
            return True
        return deployment.status is DeploymentStatus.FAILED and deployment.stack_status in (
            "UPDATE_ROLLBACK_COMPLETE",
            "UPDATE_COMPLETE",
            "CREATE_COMPLETE",
        )

    @staticmethod
    def _check_updatable(deployment: Deployment) -> None:
        """Refuse, with the one action that helps, an update of a stack recorded in a stuck status."""
        remedy = remedy_of(deployment.stack_status)
        status, name = deployment.stack_status, deployment.stack_name
        if remedy is Remedy.RECREATE and deployment.ever_active:
            raise Conflict(
                f"Stack {name} is in ROLLBACK_COMPLETE but this deployment once succeeded: it is never "
                "deleted and recreated automatically.",
                code="STACK_NOT_UPDATABLE",
                hint="Look at the stack in the target account; delete the deployment yourself "
                "(DELETE /deployments/{id}) when you are sure, then create it again.",
            )
        hints = {
            Remedy.CONTINUE_ROLLBACK: (
                "ROLLBACK_REQUIRED",
                "Continue the rollback first: POST /deployments/{id}/continue-rollback, optionally with "
                '{"resources_to_skip": [...]} naming the resources that block it.',
            ),
            Remedy.DELETE_RETAINING: (
                "STACK_NOT_UPDATABLE",
                "The stack can only be deleted: DELETE /deployments/{id}?retain=LogicalId,... naming the "
                "resources that blocked the delete.",
            ),
            Remedy.DELETE: (
                "STACK_NOT_UPDATABLE",
                "The stack can only be deleted: DELETE /deployments/{id}.",
            ),
            Remedy.OPERATOR: (
                "STACK_NOT_UPDATABLE",
                "Fix the stack in the target account (see its events), then retry.",
            ),
        }
        if remedy in hints:
            code, hint = hints[remedy]
            raise Conflict(f"Stack {name} is in {status} and cannot be updated.", code=code, hint=hint)

    def _check_region(self, target: Target, region: str) -> None:
        if region not in target.regions:
            raise UnprocessableRequest(
                f"Region {region} is not enabled for target {target.target_id}.",
                code="REGION_NOT_ENABLED",
                hint="Deploy to one of the target's regions, or register the target with this region.",
                details={"field": "region", "allowed": list(target.regions)},
            )
