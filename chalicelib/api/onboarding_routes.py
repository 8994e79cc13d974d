"""Connecting an account with credentials typed into the console: test them, Fetch Roles, bootstrap.

* ``POST /credentials/test`` ``{access_keys | adfs, target_id?}``: the guide's Test Credentials on the
  entered credentials, before anything is created (account access, identity, account ID, permission
  to create the bootstrap stack); 200 with the checklist whether it passes or not.
* ``POST /saml/roles`` ``{adfs_url, username, password}``: the guide's Fetch Roles (SSRF-guarded).
* ``POST /targets/{id}/bootstrap`` ``{access_keys | adfs}``: deploy the target's bootstrap stacks with
  those credentials; 200 once they settled, 202 while some are still in progress.
* ``GET /targets/{id}/bootstrap``: follow them (through the target's deployment role).

Credentials are used within the request and forgotten; none of these routes takes an Idempotency-Key,
so no fingerprint of a secret is ever stored. See ``chalicelib/service/onboarding.py``.
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_response
from chalicelib.api.http import ALL_CONTENT_TYPES, Http
from chalicelib.api.onboarding_schemas import AdfsSignIn, CredentialsTest, SignInBody
from chalicelib.composition import Container


def onboarding_blueprint(container: Container) -> Blueprint:
    bp = Blueprint(__name__)
    http = Http(bp, container)
    bearer, body, path_id, run, tenant_and_services = (
        http.bearer,
        http.body,
        http.path_id,
        http.run,
        http.tenant_and_services,
    )

    @bp.route("/credentials/test", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def test_credentials() -> Response:
        def handle() -> Response:
            auth = bearer()
            request = body(CredentialsTest)
            tenant, services = tenant_and_services(auth)
            report = services.onboarding.test_credentials(tenant, request.target_id, request.credentials())
            return json_response(200, report.public())

        return run(handle)

    @bp.route("/saml/roles", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def saml_roles() -> Response:
        def handle() -> Response:
            auth = bearer()
            request = body(AdfsSignIn)
            _, services = tenant_and_services(auth)
            roles = services.onboarding.saml_roles(request.login())
            return json_response(200, {"roles": [r.public() for r in roles]})

        return run(handle)

    @bp.route("/targets/{target_id}/bootstrap", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def bootstrap(target_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            tid = path_id("tgt", target_id)
            request = body(SignInBody)
            tenant, services = tenant_and_services(auth)
            report = services.onboarding.bootstrap(tenant, tid, request.credentials())
            return json_response(200 if report.settled else 202, report.public())

        return run(handle)

    @bp.route("/targets/{target_id}/bootstrap", methods=["GET"])
    def bootstrap_status(target_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            tid = path_id("tgt", target_id)
            tenant, services = tenant_and_services(auth)
            return json_response(200, services.onboarding.bootstrap_status(tenant, tid).public())

        return run(handle)

    return bp
