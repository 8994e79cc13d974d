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

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_response
from chalicelib.api.http import ALL_CONTENT_TYPES, Http
from chalicelib.api.schemas import BootstrapQuery, PermissionsQuery
from chalicelib.composition import Container


def access_blueprint(container: Container) -> Blueprint:
    bp = Blueprint(__name__)
    http = Http(bp, container)
    bearer, query, path_id, run, tenant_and_services = (
        http.bearer,
        http.query,
        http.path_id,
        http.run,
        http.tenant_and_services,
    )

    @bp.route("/permissions", methods=["GET"])
    def permissions() -> Response:
        def handle() -> Response:
            auth = bearer()
            q = query(PermissionsQuery)
            _, services = tenant_and_services(auth)
            return json_response(200, services.access.permissions(q.profile))

        return run(handle)

    @bp.route("/targets/{target_id}/validate", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def validate(target_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            tid = path_id("tgt", target_id)
            tenant, services = tenant_and_services(auth)
            return json_response(200, services.access.validate(tenant, tid).public())

        return run(handle)

    @bp.route("/targets/{target_id}/bootstrap-template", methods=["GET"])
    def bootstrap_template(target_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            tid = path_id("tgt", target_id)
            q = query(BootstrapQuery)
            tenant, services = tenant_and_services(auth)
            if q.part == "region":
                return json_response(200, services.access.region_forwarding_template(tenant, tid))
            return json_response(200, services.access.bootstrap_template(tenant, tid))

        return run(handle)

    return bp
