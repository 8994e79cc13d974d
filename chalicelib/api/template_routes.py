"""Template routes for forms: describe a template before deploying it (like CloudFormation's
GetTemplateSummary, without calling it), or the template a deployment runs now.

Both only read, so neither takes an Idempotency-Key. Each route: one ``TemplateService`` call, dump.
"""

from __future__ import annotations

from chalicelib.api.routing import Call, Reply, RouteTable
from chalicelib.api.schemas import TemplateDescribe

routes = RouteTable()

# What parsing a template can answer (chalicelib/domain/templates.py), as on POST /deployments.
TEMPLATE_ERRORS = ("INVALID_TEMPLATE", "TEMPLATE_LIMIT_EXCEEDED")


@routes.post(
    "/templates/describe",
    body=TemplateDescribe,
    responses={200: "TemplateSummary"},
    errors={
        404: ("TARGET_NOT_FOUND", "TEMPLATE_OBJECT_NOT_FOUND"),
        413: ("TEMPLATE_TOO_LARGE",),
        422: (*TEMPLATE_ERRORS, "TEMPLATE_REQUIRED", "INVALID_TEMPLATE_URL", "TEMPLATE_OBJECT_REFUSED"),
        502: ("AWS_REQUEST_FAILED", "ACCESS_DENIED"),
        503: ("AWS_THROTTLED",),
    },
)
def describe_template(call: Call[TemplateDescribe, None]) -> Reply:
    """Describe a template: parameters with every constraint, Interface groups and labels, resources
    by type, capabilities and outputs.

    Send template_body, or template_url (s3://) with target_id: the object is read from a bucket of the
    target's account, as POST /deployments reads it. No CloudFormation call.
    """
    b = call.body
    described = call.services.templates.describe(call.tenant, b.template_body, b.template_url, b.target_id)
    return Reply(200, described.public())


@routes.get(
    "/deployments/{deployment_id}/template-summary",
    responses={200: "TemplateSummary"},
    errors={
        404: ("DEPLOYMENT_NOT_FOUND", "TEMPLATE_OBJECT_NOT_FOUND"),
        422: TEMPLATE_ERRORS,
    },
)
def deployment_template_summary(call: Call[None, None]) -> Reply:
    """Describe the template of a deployment's current operation, so an update form can be filled in."""
    summary = call.services.templates.describe_deployment(call.tenant, call.ids["deployment_id"])
    return Reply(200, summary.public())
