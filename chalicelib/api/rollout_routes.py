"""Fleet rollouts: start one, watch it a page of items at a time, cancel, resume or apply it.

Each route: one ``RolloutService`` call, dump. Whether the targets exist and enable the regions is
checked by the service, still before anything is written.
"""

from __future__ import annotations

from chalicelib.api.deployment_routes import TEMPLATE_ERRORS
from chalicelib.api.rollout_schemas import RolloutCreate, RolloutItemsQuery, RolloutQuery
from chalicelib.api.routing import Call, Reply, RouteTable

routes = RouteTable()

NOT_FOUND = {404: ("ROLLOUT_NOT_FOUND",)}
START_ERRORS = {502: ("AWS_REQUEST_FAILED", "ACCESS_DENIED"), 503: ("AWS_THROTTLED",)}


def check_create(call: Call[RolloutCreate, None]) -> None:
    call.services.rollouts.check_new(call.body.spec())


@routes.post(
    "/rollouts",
    body=RolloutCreate,
    responses={202: "Rollout"},
    errors={
        422: (
            "TARGET_NOT_FOUND",
            "REGION_NOT_ENABLED",
            "TOO_MANY_ITEMS",
            "REGION_ORDER_MISMATCH",
            *TEMPLATE_ERRORS,
            "NOTIFICATIONS_NOT_AVAILABLE",
            "INVALID_SNS_TOPIC",
            "INVALID_WEBHOOK_URL",
            "WEBHOOK_SECRET_REQUIRED",
            "WEBHOOK_URL_REQUIRED",
        ),
        **START_ERRORS,
    },
    idempotent=True,
    precheck=check_create,
)
def create_rollout(call: Call[RolloutCreate, None]) -> Reply:
    """Start a fleet rollout: one deployment per (target, region), canary first, then waves."""
    return Reply(202, call.services.rollouts.create(call.tenant, call.body.spec()).public())


@routes.get("/rollouts", query=RolloutQuery, responses={200: "RolloutPage"})
def list_rollouts(call: Call[None, RolloutQuery]) -> Reply:
    """List the tenant's rollouts (filters status, stack_name, target_id), a page at a time."""
    q = call.query
    page = call.services.rollouts.list_rollouts(
        call.tenant, q.filters(), limit=q.limit, next_token=q.next_token
    )
    return Reply(200, page.public())


@routes.get("/rollouts/{rollout_id}", query=RolloutItemsQuery, responses={200: "Rollout"}, errors=NOT_FOUND)
def get_rollout(call: Call[None, RolloutItemsQuery]) -> Reply:
    """Show a rollout with counts and summary over every item, and one page of its items."""
    rid, q = call.ids["rollout_id"], call.query
    view = call.services.rollouts.get(call.tenant, rid, limit=q.limit, after=q.cursor(rid), status=q.status)
    return Reply(200, view.public())


@routes.post(
    "/rollouts/{rollout_id}/cancel",
    responses={202: "Rollout"},
    errors={**NOT_FOUND, 409: ("ROLLOUT_ENDED",)},
)
def cancel_rollout(call: Call[None, None]) -> Reply:
    """Cancel a rollout: nothing new starts; running items finish."""
    return Reply(202, call.services.rollouts.cancel(call.tenant, call.ids["rollout_id"]).public())


@routes.post(
    "/rollouts/{rollout_id}/pause",
    responses={202: "Rollout"},
    errors={**NOT_FOUND, 409: ("ROLLOUT_NOT_RUNNING",)},
)
def pause_rollout(call: Call[None, None]) -> Reply:
    """Pause a running rollout: the running wave's items finish, then it waits PAUSED for resume."""
    return Reply(202, call.services.rollouts.pause(call.tenant, call.ids["rollout_id"]).public())


@routes.post(
    "/rollouts/{rollout_id}/resume",
    responses={202: "Rollout"},
    errors={**NOT_FOUND, 409: ("ROLLOUT_NOT_PAUSED",), **START_ERRORS},
)
def resume_rollout(call: Call[None, None]) -> Reply:
    """Resume a PAUSED rollout (a failed canary's failures accepted)."""
    return Reply(202, call.services.rollouts.resume(call.tenant, call.ids["rollout_id"]).public())


@routes.post(
    "/rollouts/{rollout_id}/apply",
    responses={202: "Rollout"},
    errors={**NOT_FOUND, 409: ("ROLLOUT_NOT_PLANNED", "PLAN_STALE"), **START_ERRORS},
)
def apply_rollout(call: Call[None, None]) -> Reply:
    """Execute exactly the change sets a PLANNED rollout computed; 409 PLAN_STALE if any item changed since."""
    return Reply(202, call.services.rollouts.apply(call.tenant, call.ids["rollout_id"]).public())
