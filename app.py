"""NexusAI Deployer's Chalice app: HTTP routes, the workflows' Lambda steps and event handlers, nothing else.

Everything here is registration; the code lives in ``chalicelib`` (see its package docstring for
the layers). Services are built on first use by the ``Container``, so importing this module creates
no AWS client and reads no environment. One middleware runs around every handler: log keys, the
correlation id, the trace and the cold-start metric (chalicelib/observability.py).
"""

from __future__ import annotations

from typing import Any

from chalice.app import CloudWatchEvent, Rate, SNSEvent

from chalicelib import observability
from chalicelib.api.app_object import ThreadSafeChalice
from chalicelib.api.blueprints import all_blueprints
from chalicelib.api.table import ROUTES
from chalicelib.composition import Container
from chalicelib.events import handlers as event_handlers
from chalicelib.steps import handlers, inspection_handlers, rollout_handlers

app = ThreadSafeChalice(app_name="nexus-deployer")  # the request per thread: chalicelib/api/app_object.py
container = Container()
app.register_middleware(observability.middleware(container.telemetry), "all")
ROUTES.register(app, container)  # every HTTP route: chalicelib/api/table.py
for blueprint in all_blueprints():  # the console's files (not JSON API routes): chalicelib/api/blueprints.py
    app.register_blueprint(blueprint)


# Workflow steps: each function's name is the name of its Task state in statemachine/deployment.asl.json.
@app.lambda_function(name="AcquireLock")
def acquire_lock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handlers.acquire_lock(container.get(), event)


@app.lambda_function(name="StartStackOperation")
def start_stack_operation(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handlers.start_stack_operation(container.get(), event)


@app.lambda_function(name="PollStack")
def poll_stack(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handlers.poll_stack(container.get(), event)


@app.lambda_function(name="AwaitStackEvent")
def await_stack_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handlers.await_stack_event(container.get(), event)


@app.lambda_function(name="ReleaseLock")
def release_lock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handlers.release_lock(container.get(), event)


@app.lambda_function(name="RecordFailure")
def record_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handlers.record_failure(container.get(), event)


# Fleet rollout steps: each name is the name of its Task state in statemachine/rollout.asl.json.
@app.lambda_function(name="NextWave")
def next_wave(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rollout_handlers.next_wave(container.get(), event)


@app.lambda_function(name="StartItem")
def start_item(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rollout_handlers.start_item(container.get(), event)


@app.lambda_function(name="PollItem")
def poll_item(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rollout_handlers.poll_item(container.get(), event)


@app.lambda_function(name="AwaitItem")
def await_item(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rollout_handlers.await_item(container.get(), event)


@app.lambda_function(name="RecordItemFailure")
def record_item_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rollout_handlers.record_item_failure(container.get(), event)


@app.lambda_function(name="RecordRolloutFailure")
def record_rollout_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rollout_handlers.record_rollout_failure(container.get(), event)


# Looking into a target account for the API (Test Credentials, forget): target roles trust only the
# service role, which this function runs under and the API's does not (chalicelib/service/inspection.py).
@app.lambda_function(name="InspectTarget")
def inspect_target(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return inspection_handlers.inspect_target(container.get(), event)


# Event-driven automation (chalicelib/events/handlers.py): each handler returns normally whatever the
# event holds, so a bad event is logged and dropped, never retried; only a throttled AWS (RETRIED) fails
# the function, for Lambda to deliver the event again (the redeploys it started are claimed).
@app.on_cw_event(event_handlers.REDEPLOY_PATTERN, name="RedeployRequested")
def redeploy_requested(event: CloudWatchEvent) -> dict[str, Any]:
    return event_handlers.guarded(
        event_handlers.redeploy_requested, container.get(), event.to_dict(), retried=event_handlers.RETRIED
    )


@app.on_sns_message(topic=event_handlers.REDEPLOY_TOPIC, name="RedeployMessage")
def redeploy_message(event: SNSEvent) -> dict[str, Any]:
    return event_handlers.guarded(
        event_handlers.redeploy_message,
        container.get(),
        event.to_dict()["Records"][0],
        retried=event_handlers.RETRIED,
    )


# CloudFormation's events, forwarded from the target accounts: they release WaitForStackEvent. A
# throttled AWS is retried by Lambda (the token of a release that failed was given back).
@app.on_cw_event(event_handlers.STACK_STATUS_PATTERN, name="StackStatusChanged")
def stack_status_changed(event: CloudWatchEvent) -> dict[str, Any]:
    return event_handlers.guarded(
        event_handlers.stack_status_changed, container.get(), event.to_dict(), retried=event_handlers.RETRIED
    )


# Step Functions' events for executions that ended without succeeding: a stopped or broken workflow
# still ends its deployment or rollout in a recorded state (each under its workflow's role; every
# machine's events reach both, and each keeps its own). A throttled AWS is retried by Lambda.
@app.on_cw_event(event_handlers.EXECUTION_STATUS_PATTERN, name="DeploymentExecutionEnded")
def deployment_execution_ended(event: CloudWatchEvent) -> dict[str, Any]:
    return event_handlers.guarded(
        event_handlers.deployment_execution_ended,
        container.get(),
        event.to_dict(),
        retried=event_handlers.RETRIED,
    )


@app.on_cw_event(event_handlers.EXECUTION_STATUS_PATTERN, name="RolloutExecutionEnded")
def rollout_execution_ended(event: CloudWatchEvent) -> dict[str, Any]:
    return event_handlers.guarded(
        event_handlers.rollout_execution_ended,
        container.get(),
        event.to_dict(),
        retried=event_handlers.RETRIED,
    )


@app.on_cw_event(event_handlers.OBJECT_CREATED_PATTERN, name="TemplateObjectCreated")
def template_object_created(event: CloudWatchEvent) -> dict[str, Any]:
    return event_handlers.guarded(
        event_handlers.object_created, container.get(), event.to_dict(), retried=event_handlers.RETRIED
    )


@app.schedule(Rate(6, unit=Rate.HOURS), name="DriftCheck", description="Record each ACTIVE stack's drift")
def drift_check(event: CloudWatchEvent) -> dict[str, Any]:
    return event_handlers.guarded(event_handlers.drift_check, container.get())
