"""Target accounts: register, list, show and forget them. Each route: one service call, dump."""

from __future__ import annotations

from chalicelib.api.routing import Call, Reply, RouteTable
from chalicelib.api.schemas import PageQuery, TargetCreate, TargetPatch

routes = RouteTable()


@routes.post(
    "/targets",
    body=TargetCreate,
    responses={201: "Target"},
    errors={422: ("ROLE_NAME_NOT_ALLOWED", "CENTRAL_ACCOUNT_NOT_ALLOWED", "SERVICE_ROLE_NOT_ALLOWED")},
    idempotent=True,
)
def create_target(call: Call[TargetCreate, None]) -> Reply:
    """Register a target account.

    The answer carries the external ID the service generated and the exact trust policy to put on the
    role. A body with external_id is refused (400): the caller never chooses it.
    """
    return Reply(201, call.services.targets.register(call.tenant, call.body.spec()).public())


@routes.get("/targets", query=PageQuery, responses={200: "TargetPage"})
def list_targets(call: Call[None, PageQuery]) -> Reply:
    """List the tenant's targets, a page at a time."""
    page = call.services.targets.list(call.tenant, call.query.limit, call.query.next_token)
    return Reply(200, page.public())


@routes.get("/targets/{target_id}", responses={200: "Target"}, errors={404: ("TARGET_NOT_FOUND",)})
def get_target(call: Call[None, None]) -> Reply:
    """Show a target."""
    return Reply(200, call.services.targets.get(call.tenant, call.ids["target_id"]).public())


@routes.patch(
    "/targets/{target_id}",
    body=TargetPatch,
    responses={200: "Target"},
    errors={404: ("TARGET_NOT_FOUND",), 409: ("REGION_IN_USE",), 422: ("REGION_NOT_IN_PARTITION",)},
    idempotent=True,
)
def update_target(call: Call[TargetPatch, None]) -> Reply:
    """Change a target's name, regions or permission profile.

    The account, role and external ID never change (a body with external_id is 400). Removing a region
    that still has live deployments is 409 REGION_IN_USE. After a profile change, deploy the target's
    bootstrap template again so that the role gets the profile's permissions.
    """
    target = call.services.targets.update(call.tenant, call.ids["target_id"], call.body.spec())
    return Reply(200, target.public())


@routes.delete(
    "/targets/{target_id}",
    responses={204: None},
    errors={404: ("TARGET_NOT_FOUND",), 409: ("TARGET_IN_USE",)},
    idempotent=True,
)
def delete_target(call: Call[None, None]) -> Reply:
    """Forget a target; refused (409) while it has live deployments."""
    call.services.targets.delete(call.tenant, call.ids["target_id"])
    return Reply(204)
