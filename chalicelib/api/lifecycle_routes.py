"""Stack lifecycle routes beyond create/update/delete: apply a plan, continue a rollback, cancel.

Why separate endpoints rather than flags on PUT: each one acts on a specific stack state (a computed
plan, UPDATE_ROLLBACK_FAILED, an update in progress) and is refused with 409 and the reason when the
deployment is not in it.
"""

from __future__ import annotations

from chalicelib.api import answers
from chalicelib.api.deployment_routes import AWS_ERRORS, BUSY, accepted
from chalicelib.api.routing import Call, Reply, RouteTable
from chalicelib.api.schemas import ApplyPlan, ContinueRollback

routes = RouteTable()


@routes.post(
    "/deployments/{deployment_id}/apply",
    body=ApplyPlan,
    body_optional=True,
    responses={202: answers.Deployment},
    errors={
        404: ("DEPLOYMENT_NOT_FOUND",),
        409: (*BUSY, "NO_PLAN", "PLAN_STALE", "PLAN_EMPTY"),
        **AWS_ERRORS,
    },
    idempotent=True,
)
def apply_plan(call: Call[ApplyPlan, None]) -> Reply:
    """Execute exactly the deployment's planned change set (optionally only if its config_hash matches)."""
    return accepted(
        call.services.deployments.apply(call.tenant, call.ids["deployment_id"], call.body.config_hash)
    )


@routes.post(
    "/deployments/{deployment_id}/continue-rollback",
    body=ContinueRollback,
    body_optional=True,
    responses={202: answers.Deployment},
    errors={404: ("DEPLOYMENT_NOT_FOUND",), 409: (*BUSY, "NOT_IN_UPDATE_ROLLBACK_FAILED"), **AWS_ERRORS},
    idempotent=True,
)
def continue_rollback(call: Call[ContinueRollback, None]) -> Reply:
    """ContinueUpdateRollback for a stack left in UPDATE_ROLLBACK_FAILED, skipping the named resources."""
    skip = tuple(dict.fromkeys(call.body.resources_to_skip))
    return accepted(call.services.deployments.continue_rollback(call.tenant, call.ids["deployment_id"], skip))


@routes.post(
    "/deployments/{deployment_id}/cancel",
    responses={202: answers.Deployment},
    errors={404: ("DEPLOYMENT_NOT_FOUND",), 409: ("NOT_CANCELLABLE",)},
    idempotent=True,
)
def cancel_update(call: Call[None, None]) -> Reply:
    """Cancel a running stack update (CancelUpdateStack); the operation ends CANCELLED."""
    return Reply(202, call.services.deployments.cancel(call.tenant, call.ids["deployment_id"]).public())
