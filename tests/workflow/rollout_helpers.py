"""Wiring for rollout tests that drive the rollout steps themselves.

``wired_rollouts`` is ``tests.conftest.wired`` with local webhooks allowed; given a ``WorkflowStarter``
(``NoExecution``), the ``RolloutService`` starts nothing and the test invokes the steps by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import boto3

import app as app_module
from chalicelib.adapters.rollouts import DynamoRolloutStore
from chalicelib.adapters.stepfunctions import StepFunctionsStarter
from chalicelib.composition import Services
from chalicelib.service.deployments import PollSettings
from chalicelib.service.ports import Metrics, WorkflowStarter
from chalicelib.service.rollouts import RolloutService
from localaws.environment import LocalAws
from tests.conftest import wired


class NoExecution:
    """A rollout workflow starter that starts nothing: the test runs the steps itself."""

    def start(self, execution_name: str, execution_input: dict[str, Any]) -> str:
        return f"arn:aws:states:us-east-1:123456789012:execution:none:{execution_name}"


def rollout_service(
    services: Services,
    session: boto3.Session,
    workflow: WorkflowStarter | None = None,
    metrics: Metrics | None = None,
) -> RolloutService:
    settings = services.settings
    table = session.resource("dynamodb", region_name=settings.region).Table(settings.table_name)
    starter = workflow or StepFunctionsStarter(
        session.client("stepfunctions", region_name=settings.region), settings.rollout_state_machine_arn
    )
    return RolloutService(
        DynamoRolloutStore(table),
        services.deployments,
        services.targets,
        starter,
        PollSettings(  # as the composition root's: PollItem judges a timed-out wait by its length
            settings.poll_initial_seconds,
            settings.poll_max_seconds,
            settings.completion_mode,
            settings.event_timeout_seconds,
        ),
        notifications=services.notifications,
        metrics=metrics,
    )


@contextmanager
def wired_rollouts(
    aws: LocalAws, workflow: WorkflowStarter | None = None, metrics: Metrics | None = None
) -> Iterator[Services]:
    """``tests.conftest.wired``, with webhooks to 127.0.0.1 allowed and rollouts notifying; with
    ``workflow``, the rollout service the tests drive starts it, and counts in ``metrics``."""
    with wired(aws, NEXUS_ALLOW_LOCAL_WEBHOOKS="1") as built:
        if workflow is None:
            yield built
            return
        driven = replace(
            built,
            # under the rollout steps' role: the tests drive those steps through this service
            rollouts=rollout_service(
                built, aws.role_session(aws.host.role_of("StartItem")), workflow, metrics
            ),
        )
        app_module.container.configure(driven)
        yield driven
