"""Credential routes: the required permissions, a target's access check and its bootstrap template.

* ``GET /permissions[?profile=NAME]``: the profile's IAM policy document, ready to paste into IAM's
  "Create policy" JSON tab (the guide's "Creating the IAM Policy").
* ``POST /targets/{target_id}/validate``: the guide's "Test Credentials", in depth (see
  ``chalicelib/service/access.py``); answers 200 with the report whether the checks pass or not,
  because a failing check is a finding about the target account, not a failed request.
* ``POST /targets/{target_id}/quick-create-link``: the same template with the trust policy's principal
  and external ID as Parameters, written to the service's S3 bucket, and the CloudFormation console
  link that deploys it with those values filled in (409 QUICK_CREATE_NOT_AVAILABLE in local mode).
* ``GET /targets/{target_id}/bootstrap-template``: a CloudFormation template that creates the
  target's deployment role exactly as registered (``chalicelib/domain/bootstrap.py``), and the rule
  that forwards the stack events of the region it is deployed in. ``?part=region``: that rule alone,
  for each further region of the target (``nexus targets bootstrap`` deploys both).

None but the quick-create link writes anything, so only it takes an Idempotency-Key.
"""

from __future__ import annotations

from chalicelib.api.routing import Call, Reply, RouteTable
from chalicelib.api.schemas import BootstrapQuery, PermissionsQuery

routes = RouteTable()


@routes.get("/permissions", query=PermissionsQuery, responses={200: "PolicyDocument"})
def permissions(call: Call[None, PermissionsQuery]) -> Reply:
    """The permission profile's IAM policy document (default: the guide's policy)."""
    return Reply(200, call.services.access.permissions(call.query.profile))


@routes.post(
    "/targets/{target_id}/validate",
    responses={200: "AccessReport"},
    errors={404: ("TARGET_NOT_FOUND",)},
)
def validate_target(call: Call[None, None]) -> Reply:
    """Test the target's credentials: assume role, external ID enforced, identity, account, permissions.

    Answers 200 whether the checks pass or not (see ok and each check); writes nothing.
    """
    return Reply(200, call.services.access.validate(call.tenant, call.ids["target_id"]).public())


@routes.get(
    "/targets/{target_id}/bootstrap-template",
    query=BootstrapQuery,
    responses={200: "CloudFormationTemplate"},
    errors={404: ("TARGET_NOT_FOUND",), 409: ("EVENTS_NOT_TAKEN",)},
)
def bootstrap_template(call: Call[None, BootstrapQuery]) -> Reply:
    """A CloudFormation template for the target account: its deployment role, or (?part=region) the
    stack-event forwarding rule of a further region."""
    access, tid = call.services.access, call.ids["target_id"]
    if call.query.part == "region":
        return Reply(200, access.region_forwarding_template(call.tenant, tid))
    return Reply(200, access.bootstrap_template(call.tenant, tid))


@routes.post(
    "/targets/{target_id}/quick-create-link",
    responses={200: "QuickCreateLink"},
    errors={
        404: ("TARGET_NOT_FOUND",),
        409: ("QUICK_CREATE_NOT_AVAILABLE", "QUICK_CREATE_URL_TOO_LONG"),
        502: ("AWS_REQUEST_FAILED", "ACCESS_DENIED"),
        503: ("AWS_THROTTLED",),
    },
    idempotent=True,
)
def quick_create_link(call: Call[None, None]) -> Reply:
    """CloudFormation's quick-create link for the target's bootstrap stack, its template put in S3.

    The template takes the service's role and the external ID as Parameters, which the link passes as
    param_ values. Calling again writes the same object (named by its content) and answers the same
    link. 409 QUICK_CREATE_NOT_AVAILABLE when the service has no bucket (local mode).
    """
    return Reply(200, call.services.access.quick_create_link(call.tenant, call.ids["target_id"]).public())
