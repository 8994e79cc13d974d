"""NexusAI Deployer's Chalice app: HTTP routes and the workflow's Lambda steps, nothing else.

Everything here is registration; the code lives in ``chalicelib`` (see its package docstring for
the layers). Services are built on first use by the ``Container``, so importing this module creates
no AWS client and reads no environment.
"""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice

from chalicelib.api.blueprints import all_blueprints
from chalicelib.composition import Container
from chalicelib.steps import handlers

app = Chalice(app_name="nexus-deployer")
container = Container()
for blueprint in all_blueprints(container):
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


@app.lambda_function(name="ReleaseLock")
def release_lock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handlers.release_lock(container.get(), event)


@app.lambda_function(name="RecordFailure")
def record_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handlers.record_failure(container.get(), event)
