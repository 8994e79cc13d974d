"""Settings, read from the environment once, when the composition root asks; never at import.

A missing or malformed variable fails fast with its name, so a misconfigured function says why at
its first invocation instead of failing somewhere inside a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.domain.automation import CLAIM_LEASE_SECONDS
from chalicelib.domain.metrics import DEFAULT_NAMESPACE

ModelT = TypeVar("ModelT", bound=BaseModel)


class SettingsError(RuntimeError):
    pass


def _validated(model: type[ModelT], values: Mapping[str, object]) -> ModelT:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise SettingsError(f"NexusAI Deployer is misconfigured: {problems}") from None


class TelemetrySettings(BaseModel):
    """What the handlers' middleware needs (chalicelib/observability.py): readable on its own, so a
    function whose other settings are wrong still traces and counts its invocations."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # CloudWatch's namespace rules; AWS/ is reserved for AWS's own metrics.
    metrics_namespace: str = Field(
        default=DEFAULT_NAMESPACE, pattern=r"^[A-Za-z0-9._/#: -]{1,255}$", alias="NEXUS_METRICS_NAMESPACE"
    )
    # Powertools' own switch: unset in the cloud (tracing on), true in local mode and the tests.
    trace_disabled: bool = Field(default=False, alias="POWERTOOLS_TRACE_DISABLED")
    # The function's logical id in the cloud template (infra/package.py sets it on each function): the
    # ``function`` dimension the alarms read. Its deployed name ends in CloudFormation's random suffix.
    function_name: str = Field(default="", pattern=r"^[A-Za-z0-9]{0,64}$", alias="NEXUS_FUNCTION_NAME")

    @field_validator("metrics_namespace")
    @classmethod
    def _not_aws_namespace(cls, value: str) -> str:
        if not value.strip() or value.startswith("AWS/"):
            raise ValueError("a CloudWatch namespace of your own: not blank, not under AWS/")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TelemetrySettings:
        return _validated(cls, environ)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(alias="NEXUS_TABLE_NAME", min_length=3)
    state_machine_arn: str = Field(default="", alias="NEXUS_STATE_MACHINE_ARN")
    rollout_state_machine_arn: str = Field(default="", alias="NEXUS_ROLLOUT_STATE_MACHINE_ARN")
    # The principal target roles must trust: the service's Lambda role in the cloud template.
    service_principal_arn: str = Field(alias="NEXUS_SERVICE_ROLE_ARN", min_length=20)
    region: str = Field(alias="AWS_REGION", min_length=5)
    # Role names (after "role/", path included) the service may assume; the cloud template's
    # TargetRoleNamePattern, so a target whose role the service's IAM policy can't assume is refused
    # when it registers rather than failing its first deployment.
    target_role_pattern: str = Field(default="*", alias="NEXUS_TARGET_ROLE_PATTERN", min_length=1)
    # How the workflow learns that a stack operation ended (statemachine/deployment.asl.json):
    # "events": a .waitForTaskToken task released by CloudFormation's "Stack Status Change" events, which
    # the bootstrap template forwards from each target account, with one DescribeStacks reconcile when no
    # event comes within event_timeout_seconds; "poll": the Wait/PollStack loop below.
    completion_mode: Literal["events", "poll"] = Field(default="events", alias="NEXUS_COMPLETION_MODE")
    event_timeout_seconds: int = Field(default=600, ge=1, le=3600, alias="NEXUS_EVENT_TIMEOUT_SECONDS")
    # After an operation waited in vain for its stack event, its account and region poll for this long
    # (0: every operation waits for events, and a lost one costs that operation the event wait).
    events_lost_seconds: int = Field(default=3600, ge=0, le=86400, alias="NEXUS_EVENTS_LOST_SECONDS")
    poll_initial_seconds: int = Field(default=5, ge=0, le=60, alias="NEXUS_POLL_INITIAL_SECONDS")
    poll_max_seconds: int = Field(default=60, ge=0, le=300, alias="NEXUS_POLL_MAX_SECONDS")
    assume_role_seconds: int = Field(default=900, ge=900, le=3600, alias="NEXUS_ASSUME_ROLE_SECONDS")
    lock_lease_seconds: int = Field(default=900, ge=60, alias="NEXUS_LOCK_LEASE_SECONDS")
    operation_timeout_seconds: int = Field(default=6 * 3600, ge=60, alias="NEXUS_OPERATION_TIMEOUT_SECONDS")
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60, alias="NEXUS_IDEMPOTENCY_TTL_SECONDS")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", alias="NEXUS_LOG_LEVEL")
    aws_max_attempts: int = Field(default=5, ge=1, le=10, alias="NEXUS_AWS_MAX_ATTEMPTS")
    # Event-driven automation (chalicelib/service/redeploys.py, drift.py, notifications.py).
    redeploy_claim_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, alias="NEXUS_REDEPLOY_CLAIM_TTL_SECONDS"
    )
    # A redeploy claim older than this is taken over (RedeploySettings.claim_lease_seconds): longer than
    # the claiming functions' 30 s Lambda timeout (shorter lets a live claim be taken over: two redeploys;
    # the tests use 0), and shorter than the minute before Lambda's retry of an event (longer makes that
    # retry a duplicate: the redeploy is lost).
    redeploy_claim_lease_seconds: int = Field(
        default=CLAIM_LEASE_SECONDS, ge=0, lt=60, alias="NEXUS_REDEPLOY_CLAIM_LEASE_SECONDS"
    )
    drift_poll_seconds: float = Field(default=5.0, ge=0, le=60, alias="NEXUS_DRIFT_POLL_SECONDS")
    drift_budget_seconds: float = Field(default=600.0, ge=0, le=840, alias="NEXUS_DRIFT_BUDGET_SECONDS")
    webhook_secret_prefix: str = Field(
        default="nexus-deployer/webhooks/",
        pattern=r"^[A-Za-z0-9_/+=.@-]{1,200}/$",
        alias="NEXUS_WEBHOOK_SECRET_PREFIX",
    )
    # The central account (the service's own) is refused as a target unless named here, and then only
    # with a role that is not the service's own.
    central_account_target: str = Field(
        default="", pattern=r"^([0-9]{12})?$", alias="NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET"
    )
    # A role that can be assumed *without* the external ID (the confused-deputy hole) blocks deployments
    # to its target until its trust policy is fixed; 1 lets them through (the check is still reported).
    allow_unenforced_external_id: bool = Field(default=False, alias="NEXUS_ALLOW_UNENFORCED_EXTERNAL_ID")
    # How long a passed external-ID check holds before the workflow tries AssumeRole without it again.
    external_id_recheck_seconds: int = Field(
        default=24 * 3600, ge=0, le=30 * 24 * 3600, alias="NEXUS_EXTERNAL_ID_RECHECK_SECONDS"
    )
    # NoEcho parameter values wait here, one secret per operation, until their stack call.
    parameter_secret_prefix: str = Field(
        default="nexus-deployer/parameters/",
        pattern=r"^[A-Za-z0-9_/+=.@-]{1,200}/$",
        alias="NEXUS_PARAMETER_SECRET_PREFIX",
    )
    # The one principal that publishes to customers' SNS topics (the template's NotifierRole): every
    # function assumes it to publish, so a topic policy names one role. Empty: publish as this function.
    notifier_role_arn: str = Field(default="", alias="NEXUS_NOTIFIER_ROLE_ARN")
    # The principal that reads template objects from customers' buckets (the API's role), named in hints.
    template_reader_role_arn: str = Field(default="", alias="NEXUS_TEMPLATE_READER_ROLE_ARN")
    # The InspectTarget function, which the API invokes to look into target accounts (Test Credentials,
    # forget) under the service role; empty: do it in this process (the function itself, the steps).
    inspect_function: str = Field(default="", alias="NEXUS_INSPECT_FUNCTION")
    # Local mode and tests only: webhooks may be http:// and loopback (the SSRF guard is off).
    allow_local_webhooks: bool = Field(default=False, alias="NEXUS_ALLOW_LOCAL_WEBHOOKS")
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    # Onboarding from the console (chalicelib/service/onboarding.py). The ADFS hosts (host or host:port,
    # comma-separated) the service may sign in at for Fetch Roles: nothing else is fetched; a CA bundle for
    # an ADFS whose certificate a private CA signed; how long POST /targets/{id}/bootstrap waits.
    adfs_hosts: str = Field(default="", alias="NEXUS_ADFS_HOSTS")
    adfs_ca_bundle: str | None = Field(default=None, alias="NEXUS_ADFS_CA_BUNDLE")
    bootstrap_wait_seconds: float = Field(default=25.0, ge=0, le=28, alias="NEXUS_BOOTSTRAP_WAIT_SECONDS")
    # The cloud template's bucket for quick-create bootstrap templates; empty (local mode): no link.
    bootstrap_bucket: str = Field(
        default="", pattern=r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$", alias="NEXUS_BOOTSTRAP_BUCKET"
    )

    @property
    def adfs_allowed_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower().rstrip(".") for h in self.adfs_hosts.split(",") if h.strip())

    @property
    def central_account(self) -> str:
        """The service's own account: the one its roles live in."""
        return self.service_principal_arn.split(":")[4]

    @property
    def event_bus_arn(self) -> str:
        """The service account's default bus in its region: where target accounts forward stack events."""
        partition, account = (
            self.service_principal_arn.split(":")[1],
            self.service_principal_arn.split(":")[4],
        )
        return f"arn:{partition}:events:{self.region}:{account}:event-bus/default"

    @model_validator(mode="after")
    def _central_target_is_the_central_account(self) -> Settings:
        if self.central_account_target and self.central_account_target != self.central_account:
            raise ValueError(
                f"NEXUS_ALLOW_CENTRAL_ACCOUNT_TARGET names {self.central_account_target}, but the service's "
                f"account is {self.central_account}; name the service's own account, or leave it empty"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_event_wait(self) -> Settings:
        # The lock's lease is renewed by each step; a wait for an event must end (and reconcile) first.
        if self.event_timeout_seconds >= self.lock_lease_seconds:
            raise ValueError(
                "NEXUS_EVENT_TIMEOUT_SECONDS must be shorter than NEXUS_LOCK_LEASE_SECONDS "
                f"({self.event_timeout_seconds} >= {self.lock_lease_seconds})"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values: dict[str, object] = dict(environ)
        values.setdefault("AWS_REGION", values.get("AWS_DEFAULT_REGION", ""))
        values["telemetry"] = TelemetrySettings.from_env(environ)
        return _validated(cls, values)
