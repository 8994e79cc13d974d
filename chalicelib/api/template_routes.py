"""Template routes for forms: describe a template before deploying it (like CloudFormation's
GetTemplateSummary, without calling it), or the template a deployment runs now.

* ``POST /templates/describe`` ``{template_body}`` or ``{template_url, target_id}``: parameters with
  every constraint, Interface groups and labels, resources by type, capabilities, outputs.
* ``GET /deployments/{id}/template-summary``: the same for the deployment's current template, so an
  update form can be filled in with its parameters.

Both only read, so neither takes an Idempotency-Key.
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.errors import json_response
from chalicelib.api.http import ALL_CONTENT_TYPES, Http
from chalicelib.api.schemas import TemplateDescribe
from chalicelib.composition import Container


def template_blueprint(container: Container) -> Blueprint:
    bp = Blueprint(__name__)
    http = Http(bp, container)
    bearer, body, path_id, run, tenant_and_services = (
        http.bearer,
        http.body,
        http.path_id,
        http.run,
        http.tenant_and_services,
    )

    @bp.route("/templates/describe", methods=["POST"], content_types=ALL_CONTENT_TYPES)
    def describe_template() -> Response:
        def handle() -> Response:
            auth = bearer()
            request = body(TemplateDescribe)
            tenant, services = tenant_and_services(auth)
            described = services.templates.describe(
                tenant, request.template_body, request.template_url, request.target_id
            )
            return json_response(200, described.public())

        return run(handle)

    @bp.route("/deployments/{deployment_id}/template-summary", methods=["GET"])
    def deployment_template(deployment_id: str) -> Response:
        def handle() -> Response:
            auth = bearer()
            did = path_id("dep", deployment_id)
            tenant, services = tenant_and_services(auth)
            return json_response(200, services.templates.describe_deployment(tenant, did).public())

        return run(handle)

    return bp
