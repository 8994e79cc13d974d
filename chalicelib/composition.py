"""The composition root: the only place that reads settings and creates AWS clients.

``build_services`` wires adapters into services. ``Container`` builds them on first use (so nothing
happens at import, and a cold start pays only for what its first request needs) and lets tests and
local mode hand in their own settings or session. boto3 is imported here, lazily, to keep it off
the import path of the HTTP handler module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for annotations: the services (and pydantic's settings model) are imported when
    # build_services runs, so importing the HTTP handler module does not pay for all of them.
    import boto3
    from botocore.config import Config
    from mypy_boto3_dynamodb.service_resource import Table

    from chalicelib.adapters.automation_store import AutomationDynamoStore
    from chalicelib.service.access import AccessService
    from chalicelib.service.auth import AuthService
    from chalicelib.service.completion import CompletionService
    from chalicelib.service.deployments import DeploymentService
    from chalicelib.service.drift import DriftService
    from chalicelib.service.inspection import TargetInspection
    from chalicelib.service.notifications import NotificationService
    from chalicelib.service.ports import IdempotencyGuard
    from chalicelib.service.redeploys import RedeployService
    from chalicelib.service.rollouts import RolloutService
    from chalicelib.service.sources import DeploymentSources
    from chalicelib.service.targets import TargetService
    from chalicelib.service.workflow import WorkflowService
    from chalicelib.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    auth: AuthService
    targets: TargetService
    deployments: DeploymentService
    workflow: WorkflowService
    idempotency: IdempotencyGuard
    access: AccessService
    rollouts: RolloutService
    # Event-driven automation (chalicelib/events, service/redeploys.py, drift.py, notifications.py).
    redeploys: RedeployService
    drift: DriftService
    notifications: NotificationService
    # Completion without polling: stack events release waiting workflows (service/completion.py).
    completion: CompletionService
    # Looking into target accounts under the service role: what the InspectTarget function runs.
    inspection: TargetInspection


def build_services(settings: Settings, session: boto3.Session | None = None) -> Services:
    import boto3
    from botocore.config import Config

    from chalicelib.adapters.automation_store import NotifyingDynamoStore
    from chalicelib.adapters.drift import StsDriftAccess
    from chalicelib.adapters.iam import IamRoleProbe
    from chalicelib.adapters.idempotency import PowertoolsIdempotency
    from chalicelib.adapters.rollouts import DynamoRolloutStore
    from chalicelib.adapters.secrets import SecretsManagerParameters
    from chalicelib.adapters.stepfunctions import StepFunctionsCallbacks, StepFunctionsStarter
    from chalicelib.adapters.sts import StsTargetAccess
    from chalicelib.adapters.waiters import DynamoCompletionWaiters
    from chalicelib.observability import configure_logging
    from chalicelib.service.access import AccessService, TargetChecks
    from chalicelib.service.auth import AuthService
    from chalicelib.service.completion import CompletionService
    from chalicelib.service.deployments import DeploymentService, PollSettings
    from chalicelib.service.drift import DriftService, DriftSettings
    from chalicelib.service.inspection import TargetInspection
    from chalicelib.service.ports import CredentialChecks, StackLookup
    from chalicelib.service.redeploys import RedeployService, RedeploySettings
    from chalicelib.service.rollouts import RolloutService
    from chalicelib.service.targets import TargetGuards, TargetService
    from chalicelib.service.workflow import WorkflowService, WorkflowSettings

    configure_logging(settings.log_level)
    session = session or boto3.Session(region_name=settings.region)
    config = Config(retries={"mode": "standard", "total_max_attempts": settings.aws_max_attempts})
    table = session.resource("dynamodb", region_name=settings.region, config=config).Table(
        settings.table_name
    )
    automation = build_automation(settings, session, config, table)
    # Every save of an ended operation notifies its owner (chalicelib/service/notifications.py).
    store = NotifyingDynamoStore(table, automation.notifications.on_saved)
    sfn = session.client("stepfunctions", region_name=settings.region, config=config)
    secrets = SecretsManagerParameters(
        session.client("secretsmanager", region_name=settings.region, config=config),
        settings.parameter_secret_prefix,
    )
    waiters = DynamoCompletionWaiters(table)
    callbacks = StepFunctionsCallbacks(sfn)
    completion = CompletionService(waiters, callbacks)
    targets = TargetService(
        store,
        store,
        settings.service_principal_arn,
        settings.target_role_pattern,
        TargetGuards(
            central_account=settings.central_account,
            central_account_allowed=bool(settings.central_account_target),
            allow_unenforced_external_id=settings.allow_unenforced_external_id,
            external_id_recheck_seconds=settings.external_id_recheck_seconds,
        ),
    )
    target_access = StsTargetAccess(
        session.client("sts", region_name=settings.region, config=config),
        config,
        settings.assume_role_seconds,
    )
    inspection = TargetInspection(
        targets, TargetChecks(targets, IamRoleProbe(target_access, config, settings.region)), target_access
    )
    checks: CredentialChecks = inspection
    lookup: StackLookup = inspection
    if settings.inspect_function:  # the API: its role cannot assume target roles, the function's can
        from chalicelib.adapters.inspection import InvokedInspection

        checks = lookup = InvokedInspection(
            session.client("lambda", region_name=settings.region, config=config), settings.inspect_function
        )
    deployments = DeploymentService(
        store,
        store,
        StepFunctionsStarter(sfn, settings.state_machine_arn),
        targets,
        PollSettings(
            settings.poll_initial_seconds,
            settings.poll_max_seconds,
            settings.completion_mode,
            settings.event_timeout_seconds,
        ),
        sources=automation.sources,
        on_cancel=completion.wake,
        stacks=lookup,
        secrets=secrets,
    )
    workflow = WorkflowService(
        store,
        store,
        targets,
        target_access,
        WorkflowSettings(settings.lock_lease_seconds, settings.operation_timeout_seconds),
        completion,
        secrets,
    )
    return Services(
        settings=settings,
        auth=AuthService(store),
        targets=targets,
        deployments=deployments,
        workflow=workflow,
        idempotency=PowertoolsIdempotency(settings.table_name, session, settings.idempotency_ttl_seconds),
        access=AccessService(targets, checks, settings.event_bus_arn),
        rollouts=RolloutService(
            DynamoRolloutStore(table),
            deployments,
            targets,
            StepFunctionsStarter(sfn, settings.rollout_state_machine_arn),
            PollSettings(
                settings.poll_initial_seconds,
                settings.poll_max_seconds,
                settings.completion_mode,
                settings.event_timeout_seconds,
            ),
            notifications=automation.notifications,
            completion=completion,
            secrets=secrets,
        ),
        redeploys=RedeployService(
            deployments,
            automation.store,
            store,
            automation.sources,
            RedeploySettings(settings.redeploy_claim_ttl_seconds),
        ),
        drift=DriftService(
            automation.store,
            targets,
            StsDriftAccess(target_access, config),
            DriftSettings(settings.drift_poll_seconds, settings.drift_budget_seconds),
        ),
        notifications=automation.notifications,
        completion=completion,
        inspection=inspection,
    )


@dataclass(frozen=True)
class Automation:
    store: AutomationDynamoStore
    sources: DeploymentSources
    notifications: NotificationService


def build_automation(settings: Settings, session: boto3.Session, config: Config, table: Table) -> Automation:
    """The adapters of event-driven automation: the redeploy ledger, S3 templates, notifications."""
    from chalicelib.adapters.automation_store import AutomationDynamoStore
    from chalicelib.adapters.notify import SecretsManagerStore, SnsTopicPublisher, UrllibWebhookPoster
    from chalicelib.adapters.s3 import S3TemplateObjects
    from chalicelib.service.notifications import NotificationService, NotificationSettings
    from chalicelib.service.sources import DeploymentSources

    store = AutomationDynamoStore(table)
    publisher = session
    if settings.notifier_role_arn:  # publish as the one role topic policies name, not as this function
        from chalicelib.adapters.sts import role_session

        publisher = role_session(
            session, settings.notifier_role_arn, "nexus-notifier", settings.region, config
        )
    notifications = NotificationService(
        SecretsManagerStore(session.client("secretsmanager", region_name=settings.region, config=config)),
        SnsTopicPublisher(publisher, config),
        UrllibWebhookPoster(allow_local=settings.allow_local_webhooks),
        NotificationSettings(
            settings.webhook_secret_prefix, settings.allow_local_webhooks, settings.notifier_role_arn
        ),
    )
    objects = S3TemplateObjects(
        session.client("s3", region_name=settings.region, config=config), settings.template_reader_role_arn
    )
    return Automation(store, DeploymentSources(objects, store, notifications), notifications)


class Container:
    """Holds the services of one process; built on first use from the environment.

    On AWS a process runs one function, with that function's environment and role, so one set of
    services is right. The local AWS runs every function in one process, each under its own role:
    it runs each handler inside ``serving(that function's services)``, which ``get`` answers meanwhile
    (a context variable, so concurrent invocations on other threads keep theirs).
    """

    def __init__(self) -> None:
        self._services: Services | None = None
        self._lock = threading.Lock()
        self._serving: ContextVar[Services | None] = ContextVar("nexus_serving", default=None)

    @contextmanager
    def serving(self, services: Services) -> Iterator[None]:
        """Answer ``services`` from ``get`` in this context until the block ends."""
        token = self._serving.set(services)
        try:
            yield
        finally:
            self._serving.reset(token)

    def get(self, environ: Mapping[str, str] | None = None) -> Services:
        serving = self._serving.get()
        if serving is not None:
            return serving
        if self._services is None:
            with self._lock:
                if self._services is None:
                    from chalicelib.settings import Settings

                    self._services = build_services(Settings.from_env(environ or os.environ))
        return self._services

    def configure(self, services: Services | None) -> None:
        """Install services built elsewhere (tests, local mode); None resets to lazy building."""
        with self._lock:
            self._services = services
