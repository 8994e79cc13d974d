"""Credential routes: the required permissions, a target's access check and its bootstrap template.

* ``GET /permissions[?profile=NAME]``: the profile's IAM policy document, ready to paste into IAM's
  "Create policy" JSON tab (the guide's "Creating the IAM Policy").
* ``POST /targets/{target_id}/validate``: the guide's "Test Credentials", in depth (see
  ``chalicelib/service/access.py``); answers 200 with the report whether the checks pass or not,
  because a failing check is a finding about the target account, not a failed request.
* ``GET /targets/{target_id}/bootstrap-template``: a CloudFormation template that creates the
  target's deployment role exactly as registered (``chalicelib/domain/bootstrap.py``), and the rule
  that forwards the stack events of the region it is deployed in. ``?part=region``: that rule alone,
  for each further region of the target (``nexus targets bootstrap`` deploys both).

None of them writes anything, so none takes an Idempotency-Key.
"""

from __future__ import annotations

from chalicelib.api import answers
from chalicelib.api.routing import Call, Reply, RouteTable
from chalicelib.api.schemas import BootstrapQuery, PermissionsQuery

routes = RouteTable()


@routes.get("/permissions", query=PermissionsQuery, responses={200: answers.PolicyDocument})
def permissions(call: Call[None, PermissionsQuery]) -> Reply:
    """The permission profile's IAM policy document (default: the guide's policy)."""
    return Reply(200, call.services.access.permissions(call.query.profile))


@routes.post(
    "/targets/{target_id}/validate",
    responses={200: answers.AccessReport},
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
    responses={200: answers.CloudFormationTemplate},
    errors={404: ("TARGET_NOT_FOUND",), 409: ("EVENTS_NOT_TAKEN",)},
)
def bootstrap_template(call: Call[None, BootstrapQuery]) -> Reply:
    """A CloudFormation template for the target account: its deployment role, or (?part=region) the
    stack-event forwarding rule of a further region."""
    access, tid = call.services.access, call.ids["target_id"]
    if call.query.part == "region":
        return Reply(200, access.region_forwarding_template(call.tenant, tid))
    return Reply(200, access.bootstrap_template(call.tenant, tid))
