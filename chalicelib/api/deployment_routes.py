"""Deployments: create, list, show, update and delete stacks, and read their events.

Each route: build the service's input from the validated models, one ``DeploymentService`` call, dump.
"""

from __future__ import annotations

from chalicelib.api.routing import Call, Reply, RouteTable
from chalicelib.api.schemas import DeleteQuery, DeploymentCreate, DeploymentQuery, DeploymentUpdate, PageQuery
from chalicelib.domain.model import Deployment, OperationMode, Outcome

routes = RouteTable()

# What starting an operation's execution (Step Functions) or reading a template_url (S3) can answer.
AWS_ERRORS = {502: ("AWS_REQUEST_FAILED", "ACCESS_DENIED"), 503: ("AWS_THROTTLED",)}
# What a call through a target's role can answer (chalicelib/domain/aws_errors.py).
TARGET_ACCESS_ERRORS = (
    "ACCESS_DENIED",
    "INVALID_ROLE_ARN",
    "SESSION_EXPIRED",
    "MFA_REQUIRED",
    "REGION_DISABLED",
    "AWS_REQUEST_FAILED",
)
# Why an operation cannot start on a deployment now.
# (EXTERNAL_ID_NOT_ENFORCED: the target's last check found its role assumable without the external ID.)
BUSY = ("OPERATION_IN_PROGRESS", "STACK_LOCKED", "EXTERNAL_ID_NOT_ENFORCED")
# What a template and its parameters can be refused for (chalicelib/domain/templates.py, noecho.py).
TEMPLATE_ERRORS = (
    "INVALID_TEMPLATE",
    "TEMPLATE_LIMIT_EXCEEDED",
    "PARAMETERS_MISMATCH",
    "NOECHO_VALUE_REQUIRED",
    "NOECHO_VALUES_TOO_LARGE",
    "NOECHO_NOT_AVAILABLE",
    "PARAMETER_CONSTRAINT",
)


def accepted(deployment: Deployment) -> Reply:
    """202 when an operation started; 200 when skip_unchanged found nothing to do (outcome SKIPPED)."""
    return Reply(200 if deployment.outcome is Outcome.SKIPPED else 202, deployment.public())


def check_create(call: Call[DeploymentCreate, None]) -> None:
    call.services.deployments.check_new(call.body.spec())


def check_update(call: Call[DeploymentUpdate, None]) -> None:
    call.services.deployments.check_change(call.body.spec())


@routes.post(
    "/deployments",
    body=DeploymentCreate,
    responses={202: "Deployment", 200: "Deployment"},
    errors={
        404: ("TARGET_NOT_FOUND", "TEMPLATE_OBJECT_NOT_FOUND"),
        409: ("STACK_ALREADY_DEPLOYED", "STACK_LOCKED", "EXTERNAL_ID_NOT_ENFORCED"),
        413: ("TEMPLATE_TOO_LARGE",),
        422: (
            "REGION_NOT_ENABLED",
            *TEMPLATE_ERRORS,
            "TEMPLATE_REQUIRED",
            "INVALID_TEMPLATE_URL",
            "TEMPLATE_OBJECT_REFUSED",
            "INVALID_SNS_TOPIC",
            "INVALID_WEBHOOK_URL",
            "WEBHOOK_SECRET_REQUIRED",
            "WEBHOOK_URL_REQUIRED",
        ),
        **AWS_ERRORS,
    },
    idempotent=True,
    precheck=check_create,
)
def create_deployment(call: Call[DeploymentCreate, None]) -> Reply:
    """Deploy a stack into a target account and region (202: the workflow runs in the background).

    409 with a hint to PUT when the stack already has a live deployment; 200 with outcome SKIPPED when
    skip_unchanged finds the stack already at this configuration. When the stack name is held by a
    deployment whose create failed before any stack existed (say, the role was missing), a new create
    runs on that same deployment.
    """
    new = call.body
    deployment = call.services.deployments.create(
        call.tenant, new.spec(), skip_unchanged=new.skip_unchanged, mode=OperationMode(new.mode)
    )
    return accepted(deployment)


@routes.get("/deployments", query=DeploymentQuery, responses={200: "DeploymentPage"})
def list_deployments(call: Call[None, DeploymentQuery]) -> Reply:
    """List the tenant's deployments: filters target_id, status, stack_name, account_id, region; paged."""
    q = call.query
    page = call.services.deployments.list(call.tenant, q.filters(), limit=q.limit, next_token=q.next_token)
    return Reply(200, page.public())


@routes.get(
    "/deployments/{deployment_id}",
    responses={200: "Deployment"},
    errors={404: ("DEPLOYMENT_NOT_FOUND",)},
)
def get_deployment(call: Call[None, None]) -> Reply:
    """Show a deployment: status, stack status, outputs, error, current operation, plan, drift."""
    return Reply(200, call.services.deployments.get(call.tenant, call.ids["deployment_id"]).public())


@routes.put(
    "/deployments/{deployment_id}",
    body=DeploymentUpdate,
    responses={202: "Deployment", 200: "Deployment"},
    errors={
        404: ("DEPLOYMENT_NOT_FOUND", "TARGET_NOT_FOUND", "TEMPLATE_OBJECT_NOT_FOUND"),
        409: (*BUSY, "DEPLOYMENT_DELETED", "STACK_NOT_UPDATABLE", "ROLLBACK_REQUIRED"),
        413: ("TEMPLATE_TOO_LARGE",),
        422: (*TEMPLATE_ERRORS, "TEMPLATE_REQUIRED", "TEMPLATE_OBJECT_REFUSED"),
        **AWS_ERRORS,
    },
    idempotent=True,
    precheck=check_update,
)
def update_deployment(call: Call[DeploymentUpdate, None]) -> Reply:
    """Update a deployment's stack through a change set; a field left out keeps its value."""
    change, did = call.body, call.ids["deployment_id"]
    deployment = call.services.deployments.update(
        call.tenant, did, change.spec(), skip_unchanged=change.skip_unchanged, mode=OperationMode(change.mode)
    )
    return accepted(deployment)


@routes.delete(
    "/deployments/{deployment_id}",
    query=DeleteQuery,
    responses={202: "Deployment"},
    errors={
        404: ("DEPLOYMENT_NOT_FOUND", "TARGET_NOT_FOUND"),
        409: (*BUSY, "DEPLOYMENT_DELETED", "RETAIN_NOT_ALLOWED"),
        **AWS_ERRORS,
    },
    idempotent=True,
)
def delete_deployment(call: Call[None, DeleteQuery]) -> Reply:
    """Delete a deployment's stack (202); ?retain=A,B keeps the resources that blocked a failed delete."""
    deployment = call.services.deployments.delete(call.tenant, call.ids["deployment_id"], call.query.retained)
    return Reply(202, deployment.public())


@routes.get(
    "/deployments/{deployment_id}/events",
    query=PageQuery,
    responses={200: "EventPage"},
    errors={404: ("DEPLOYMENT_NOT_FOUND",)},
)
def deployment_events(call: Call[None, PageQuery]) -> Reply:
    """A deployment's orchestrator and stack events, oldest first."""
    q, did = call.query, call.ids["deployment_id"]
    return Reply(200, call.services.deployments.events(call.tenant, did, q.limit, q.next_token).public())
