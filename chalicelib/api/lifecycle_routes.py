"""Stack lifecycle routes beyond create/update/delete: apply a plan, continue a rollback, cancel, forget.

Why separate endpoints rather than flags on PUT: each one acts on a specific stack state (a computed
plan, UPDATE_ROLLBACK_FAILED, an update in progress) and is refused with 409 and the reason when the
deployment is not in it.
"""

from __future__ import annotations

from chalicelib.api.deployment_routes import AWS_ERRORS, BUSY, TARGET_ACCESS_ERRORS, accepted
from chalicelib.api.routing import Call, Reply, RouteTable
from chalicelib.api.schemas import ApplyPlan, ContinueRollback

routes = RouteTable()


@routes.post(
    "/deployments/{deployment_id}/apply",
    body=ApplyPlan,
    body_optional=True,
    responses={202: "Deployment"},
    errors={
        404: ("DEPLOYMENT_NOT_FOUND", "TARGET_NOT_FOUND"),
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
    responses={202: "Deployment"},
    errors={
        404: ("DEPLOYMENT_NOT_FOUND", "TARGET_NOT_FOUND"),
        409: (*BUSY, "NOT_IN_UPDATE_ROLLBACK_FAILED"),
        **AWS_ERRORS,
    },
    idempotent=True,
)
def continue_rollback(call: Call[ContinueRollback, None]) -> Reply:
    """ContinueUpdateRollback for a stack left in UPDATE_ROLLBACK_FAILED, skipping the named resources."""
    skip = tuple(dict.fromkeys(call.body.resources_to_skip))
    return accepted(call.services.deployments.continue_rollback(call.tenant, call.ids["deployment_id"], skip))


@routes.post(
    "/deployments/{deployment_id}/cancel",
    responses={202: "Deployment"},
    errors={404: ("DEPLOYMENT_NOT_FOUND",), 409: ("NOT_CANCELLABLE",)},
    idempotent=True,
)
def cancel_update(call: Call[None, None]) -> Reply:
    """Cancel a running stack update (CancelUpdateStack); the operation ends CANCELLED."""
    return Reply(202, call.services.deployments.cancel(call.tenant, call.ids["deployment_id"]).public())


@routes.post(
    "/deployments/{deployment_id}/forget",
    responses={200: "Deployment"},
    errors={
        404: ("DEPLOYMENT_NOT_FOUND", "TARGET_NOT_FOUND"),
        409: (*BUSY, "DEPLOYMENT_DELETED", "STACK_STILL_EXISTS"),
        502: TARGET_ACCESS_ERRORS,
        503: ("AWS_THROTTLED",),
    },
    idempotent=True,
)
def forget_deployment(call: Call[None, None]) -> Reply:
    """Forget a deployment whose stack never existed or is gone: it ends DELETED, with no stack call.

    The stack is looked up in the target account through the target's role; while it exists (in any
    status but DELETE_COMPLETE) the answer is 409 STACK_STILL_EXISTS: delete it instead. A deployment
    that never recorded a stack is forgotten even when the role cannot look (say, it was never created).
    Frees the stack name and, once none is left, lets the target be deleted.
    """
    return Reply(200, call.services.deployments.forget(call.tenant, call.ids["deployment_id"]).public())
