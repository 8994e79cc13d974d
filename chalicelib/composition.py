"""The composition root: the only place that reads settings and creates AWS clients.

``build_services`` wires adapters into services. ``Container`` builds them on first use (so nothing
happens at import, and a cold start pays only for what its first request needs) and lets tests and
local mode hand in their own settings or session. boto3 is imported here, lazily, to keep it off
the import path of the HTTP handler module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
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
    from chalicelib.service.onboarding import OnboardingService
    from chalicelib.service.ports import IdempotencyGuard, Metrics
    from chalicelib.service.redeploys import RedeployService
    from chalicelib.service.rollouts import RolloutService
    from chalicelib.service.sources import DeploymentSources
    from chalicelib.service.targets import TargetService
    from chalicelib.service.templates import TemplateService
    from chalicelib.service.workflow import WorkflowService
    from chalicelib.settings import Settings, TelemetrySettings

from chalicelib.observability import Telemetry


@dataclass(frozen=True)
class Services:
    settings: Settings
    telemetry: Telemetry  # the tracer and the metrics (chalicelib/observability.py)
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
    # Describing templates for the console's forms (service/templates.py).
    templates: TemplateService
    # Connecting accounts with typed credentials: test them, Fetch Roles, bootstrap (service/onboarding.py).
    onboarding: OnboardingService


def build_telemetry(settings: TelemetrySettings) -> Telemetry:
    """Metrics in CloudWatch's embedded format on stdout; traces only when tracing is on, so that
    local mode and the tests never import the X-Ray SDK."""
    from chalicelib.adapters.metrics import EmfMetrics
    from chalicelib.adapters.tracing import NoTracing, XRayTracing
    from chalicelib.observability import SERVICE_NAME

    tracing = NoTracing() if settings.trace_disabled else XRayTracing(SERVICE_NAME)
    return Telemetry(tracing, EmfMetrics(settings.metrics_namespace, SERVICE_NAME), settings.function_name)


def build_services(
    settings: Settings, session: boto3.Session | None = None, telemetry: Telemetry | None = None
) -> Services:
    import boto3
    from botocore.config import Config

    from chalicelib.adapters.automation_store import NotifyingDeploymentStore
    from chalicelib.adapters.drift import StsDriftAccess
    from chalicelib.adapters.dynamodb import DynamoLockStore, DynamoTargetStore, DynamoTokenStore, SharedTable
    from chalicelib.adapters.iam import IamRoleProbe
    from chalicelib.adapters.idempotency import PowertoolsIdempotency
    from chalicelib.adapters.retries import ThrottleCounter
    from chalicelib.adapters.rollouts import DynamoRolloutStore
    from chalicelib.adapters.s3 import S3TemplatePublisher
    from chalicelib.adapters.secrets import SecretsManagerParameters
    from chalicelib.adapters.signin import Boto3AccountSignIn, GuardedAdfsClient
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
    from chalicelib.service.onboarding import OnboardingService, OnboardingSettings
    from chalicelib.service.ports import CredentialChecks, StackLookup
    from chalicelib.service.redeploys import RedeployService, RedeploySettings
    from chalicelib.service.rollouts import RolloutService
    from chalicelib.service.targets import TargetGuards, TargetService
    from chalicelib.service.templates import TemplateService
    from chalicelib.service.workflow import WorkflowService, WorkflowSettings

    configure_logging(settings.log_level)
    telemetry = telemetry or build_telemetry(settings.telemetry)
    metrics = telemetry.metrics
    throttles = ThrottleCounter(metrics)
    # Observed before any client is made from it: each client copies the session's event handlers.
    session = throttles.observe(session or boto3.Session(region_name=settings.region))
    config = Config(retries={"mode": "standard", "total_max_attempts": settings.aws_max_attempts})
    table = session.resource("dynamodb", region_name=settings.region, config=config).Table(
        settings.table_name
    )
    automation = build_automation(settings, session, config, table, metrics, throttles.observe)
    # One SharedTable under every store, so all their calls share one lock (see _SerializedTable).
    shared = SharedTable(table)
    target_store = DynamoTargetStore(shared)
    # Every save of an ended operation notifies its owner (chalicelib/service/notifications.py).
    deployment_store = NotifyingDeploymentStore(shared, automation.notifications.on_saved)
    lock_store = DynamoLockStore(shared)
    token_store = DynamoTokenStore(shared)
    sfn = session.client("stepfunctions", region_name=settings.region, config=config)
    secrets = SecretsManagerParameters(
        session.client("secretsmanager", region_name=settings.region, config=config),
        settings.parameter_secret_prefix,
    )
    waiters = DynamoCompletionWaiters(table)
    callbacks = StepFunctionsCallbacks(sfn)
    completion = CompletionService(waiters, callbacks)
    targets = TargetService(
        target_store,
        deployment_store,
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
        observe=throttles.observe,
        loader=session._session.get_component("data_loader"),  # boto3 keeps its botocore session there
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
        deployment_store,
        lock_store,
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
        metrics=metrics,
    )
    rollouts = RolloutService(
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
        metrics=metrics,
        operation_timeout_seconds=settings.operation_timeout_seconds,
    )
    workflow = WorkflowService(
        deployment_store,
        lock_store,
        targets,
        target_access,
        WorkflowSettings(
            settings.lock_lease_seconds, settings.operation_timeout_seconds, settings.events_lost_seconds
        ),
        completion,
        secrets,
        metrics=metrics,
        item_ends=rollouts,  # the deployment execution's last step ends the rollout item it ran for
    )
    publisher = (
        S3TemplatePublisher(
            session.client("s3", region_name=settings.region, config=config),
            settings.bootstrap_bucket,
            settings.region,
        )
        if settings.bootstrap_bucket
        else None
    )
    access = AccessService(targets, checks, settings.event_bus_arn, publisher)
    onboarding = OnboardingService(
        targets,
        access,
        Boto3AccountSignIn(config, settings.region),
        GuardedAdfsClient(settings.adfs_allowed_hosts, settings.adfs_ca_bundle),
        lookup,
        OnboardingSettings(wait_seconds=settings.bootstrap_wait_seconds),
    )
    return Services(
        settings=settings,
        telemetry=telemetry,
        auth=AuthService(token_store),
        targets=targets,
        deployments=deployments,
        workflow=workflow,
        idempotency=PowertoolsIdempotency(
            settings.table_name, session, settings.idempotency_ttl_seconds, boto_config=config
        ),
        access=access,
        rollouts=rollouts,
        redeploys=RedeployService(
            deployments,
            automation.store,
            deployment_store,
            automation.sources,
            RedeploySettings(settings.redeploy_claim_ttl_seconds, settings.redeploy_claim_lease_seconds),
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
        templates=TemplateService(deployments, targets, automation.sources),
        onboarding=onboarding,
    )


@dataclass(frozen=True)
class Automation:
    store: AutomationDynamoStore
    sources: DeploymentSources
    notifications: NotificationService


def build_automation(
    settings: Settings,
    session: boto3.Session,
    config: Config,
    table: Table,
    metrics: Metrics,
    observe: Callable[[boto3.Session], boto3.Session],
) -> Automation:
    """The adapters of event-driven automation: the redeploy ledger, S3 templates, notifications.
    ``observe``: counts the throttles of a session's clients, for the notifier role's own session."""
    from chalicelib.adapters.automation_store import AutomationDynamoStore
    from chalicelib.adapters.notify import SecretsManagerStore, SnsTopicPublisher, UrllibWebhookPoster
    from chalicelib.adapters.s3 import S3TemplateObjects
    from chalicelib.service.notifications import NotificationService, NotificationSettings
    from chalicelib.service.sources import DeploymentSources

    store = AutomationDynamoStore(table)
    publisher = session
    if settings.notifier_role_arn:  # publish as the one role topic policies name, not as this function
        from chalicelib.adapters.sts import role_session

        publisher = observe(
            role_session(session, settings.notifier_role_arn, "nexus-notifier", settings.region, config)
        )
    notifications = NotificationService(
        SecretsManagerStore(session.client("secretsmanager", region_name=settings.region, config=config)),
        SnsTopicPublisher(publisher, config),
        UrllibWebhookPoster(allow_local=settings.allow_local_webhooks),
        NotificationSettings(
            settings.webhook_secret_prefix, settings.allow_local_webhooks, settings.notifier_role_arn
        ),
        metrics=metrics,
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
        self._telemetry: Telemetry | None = None
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
            telemetry = self.telemetry(environ)
            with self._lock:
                if self._services is None:
                    from chalicelib.settings import Settings

                    settings = Settings.from_env(environ or os.environ)
                    self._services = build_services(settings, telemetry=telemetry)
        return self._services

    def telemetry(self, environ: Mapping[str, str] | None = None) -> Telemetry:
        """The tracer and metrics of every handler (its middleware): the services' once they exist,
        else built from the telemetry settings alone (GET /health needs no other)."""
        services = self._serving.get() or self._services
        if services is not None:
            return services.telemetry
        with self._lock:
            if self._telemetry is None:
                from chalicelib.settings import TelemetrySettings

                self._telemetry = build_telemetry(TelemetrySettings.from_env(environ or os.environ))
            return self._telemetry

    def configure(self, services: Services | None) -> None:
        """Install services built elsewhere (tests, local mode); None resets to lazy building."""
        with self._lock:
            self._services = services
