"""``LocalAws``: the embedded AWS as one object, for the tests and for local mode.

Entering it starts moto with state-machine execution on, installs the project's realism patches
(in-process Lambda, trust-policy enforcement, stacks that take time and fail like AWS), and
provisions the central account from the cloud template's own definitions. The service then runs
as the central ``NexusDeployerService`` role, as its Lambda functions do on AWS, so target trust
policies name that role exactly as they would in production.

Two modes share that provisioning and that identity. In-process (the default, for tests) moto is
``mock_aws``: botocore never leaves the process. Server mode (``serve_on=(host, port)``, for local
mode) runs a ``moto.server.ThreadedMotoServer`` in this process instead, because the patches must
live beside the server that runs them; while it runs, this process's ``AWS_ENDPOINT_URL`` points at
it (so the service reaches it exactly as it would reach AWS) and ``MOTO_PORT`` names its port (moto's
Step Functions interpreter invokes Lambda tasks through boto3 at ``localhost:$MOTO_PORT``).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
import botocore.loaders
import botocore.session

from localaws import (
    authorization,
    cloudformation,
    concurrency,
    drift,
    eventbridge,
    iam,
    lambda_runner,
    saml,
    sts,
)
from localaws import faults as faults_module
from localaws.provision import SERVICE_ROLE_NAME, CentralResources, provision_central

if TYPE_CHECKING:
    from chalicelib.domain.permissions import PermissionProfile

CENTRAL_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
# Where bootstrap_role deploys a target account's bootstrap stack (the admin's sign-in region): not a
# region the tests or the benchmarks deploy to, so theirs hold only the stacks under test.
BOOTSTRAP_REGION = "us-west-2"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}


class LocalAws:
    def __init__(
        self,
        handlers: Mapping[str, lambda_runner.Handler],
        *,
        region: str = DEFAULT_REGION,
        simulation: cloudformation.StackSimulation | None = None,
        serve_on: tuple[str, int] | None = None,
        event_rules: Mapping[str, Mapping[str, Any]] | None = None,
        faults: faults_module.FaultSettings | None = None,
    ) -> None:
        self._handlers = dict(handlers)
        self.faults = faults or faults_module.NO_FAULTS
        self._event_rules = dict(event_rules or {})
        self.region = region
        self.simulation = simulation or cloudformation.StackSimulation(stack_seconds=0)
        self._serve_on = serve_on
        self._mock: Any = None
        self._server: Any = None
        self._saved_environ: dict[str, str | None] = {}
        self._central: CentralResources | None = None
        self._loader = botocore.loaders.create_loader()  # shared: service models are parsed once

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> LocalAws:
        from moto import mock_aws

        self.faults.check_functions(self._handlers)
        install_patches(self.simulation)
        lambda_runner.register(self._handlers)
        try:
            if self._serve_on is None:
                self._mock = mock_aws(config=MOTO_CONFIG)
                self._mock.start()
            else:
                self._start_server(*self._serve_on)
            self._central = provision_central(
                self.account_session(CENTRAL_ACCOUNT),
                account_id=CENTRAL_ACCOUNT,
                function_names=self._handlers,
                event_rules=self._event_rules,
            )
            faults_module.configure(self.faults)  # after provisioning: the central account's setup is spared
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._central is not None and self._mock is not None:
            self.drain_executions()  # in-process (tests); local mode's Ctrl-C should not wait
        eventbridge.reset()  # scheduled stack events belong to this AWS only
        faults_module.configure(faults_module.NO_FAULTS)  # this AWS's faults end with it
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._server is not None:
            self._server.stop()
            self._server = None
            for name, value in self._saved_environ.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def drain_executions(self, timeout: float = 15.0) -> None:
        """Let running executions end before the backends go, so none fails half-way in a torn-down AWS."""
        sfn = self.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
        deadline = time.monotonic() + timeout
        arns = [self.central.state_machine_arn, self.central.rollout_state_machine_arn]
        while time.monotonic() < deadline:
            running = [
                e
                for arn in arns
                for e in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
            ]
            if not running:
                return
            time.sleep(0.05)

    def _start_server(self, host: str, port: int) -> None:
        from moto.server import ThreadedMotoServer

        url = f"http://{host}:{port}"
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._server.start()
        # MOTO_ACCOUNT_ID would override every caller's account, so it goes while the server runs.
        for name, value in {"AWS_ENDPOINT_URL": url, "MOTO_PORT": str(port), "MOTO_ACCOUNT_ID": None}.items():
            self._saved_environ[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        # Through the server's own config endpoint, as documented, so this also proves the server answers.
        body = json.dumps(MOTO_CONFIG).encode()
        request = urllib.request.Request(f"{url}/moto-api/config", data=body, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - our own http:// URL
            pass
        # The endpoint's answer leaves the stepfunctions section out; read what it set instead.
        from moto.core.config import default_user_config

        if not default_user_config.get("stepfunctions", {}).get("execute_state_machine"):
            raise RuntimeError(f"the moto server at {url} did not turn on state machine execution")

    @property
    def endpoint_url(self) -> str | None:
        """The server's URL in server mode; None in-process."""
        return None if self._serve_on is None else f"http://{self._serve_on[0]}:{self._serve_on[1]}"

    # -- what the service needs ------------------------------------------------------------------

    @property
    def central(self) -> CentralResources:
        if self._central is None:
            raise RuntimeError("LocalAws is not started")
        return self._central

    def account_session(self, account_id: str) -> boto3.Session:
        """An administrator of ``account_id`` (to set up a target account, as its admin would)."""
        return self._session(**sts.account_credentials(account_id).boto3_kwargs())

    def service_session(self) -> boto3.Session:
        """The service's own identity: the central NexusDeployerService role, as on AWS Lambda.

        Its credentials refresh themselves before they expire, as Lambda's do, so a long-running
        local mode keeps working after the role session's hour is up.
        """
        from botocore.credentials import RefreshableCredentials

        sts_client = self.account_session(CENTRAL_ACCOUNT).client("sts")

        def assume() -> dict[str, str]:
            credentials = sts_client.assume_role(
                RoleArn=self.central.service_role_arn, RoleSessionName="nexus-service", DurationSeconds=3600
            )["Credentials"]
            return {
                "access_key": credentials["AccessKeyId"],
                "secret_key": credentials["SecretAccessKey"],
                "token": credentials["SessionToken"],
                "expiry_time": credentials["Expiration"].isoformat(),
            }

        core = self._core_session()
        core._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
            assume(), assume, "assume-role"
        )
        return boto3.Session(botocore_session=core, region_name=self.region)

    def _session(self, **credentials: str) -> boto3.Session:
        return boto3.Session(botocore_session=self._core_session(), region_name=self.region, **credentials)

    def _core_session(self) -> botocore.session.Session:
        core = botocore.session.Session()
        core.register_component("data_loader", self._loader)
        return core

    def bootstrap_role(
        self,
        role_arn: str,
        trust_policy: Mapping[str, Any],
        *,
        profile: str | PermissionProfile = "default",
        region: str = BOOTSTRAP_REGION,
    ) -> str:
        """Do what a target account's administrator does: deploy the bootstrap template for ``role_arn``.

        The template is the one ``GET /targets/{id}/bootstrap-template`` serves (the deployment role with
        ``trust_policy`` and the profile's permissions, and the CloudFormation service role), deployed in
        the role's account as its administrator would, so a test's deployment role has exactly the
        permissions a bootstrapped role has. ``profile`` names a permission profile, or is one (a test's
        own document). Event forwarding is left to :meth:`forward_stack_events`. Returns the stack's id.
        """
        from chalicelib.domain.bootstrap import bootstrap_template
        from chalicelib.domain.model import Target
        from chalicelib.domain.permissions import load_profile

        account = role_arn.split(":")[4]
        name = role_arn.rsplit("/", 1)[-1]
        granted = load_profile(profile) if isinstance(profile, str) else profile
        target = Target(
            tenant_id="local",
            target_id=f"local-{name}",
            name=name,
            account_id=account,
            role_arn=role_arn,
            regions=(self.region,),
            external_id="",
            trust_policy=dict(trust_policy),
            created_at="",
            permission_profile=granted.name,
        )
        cfn = self.account_session(account).client("cloudformation", region_name=region)
        stack_id: str = cfn.create_stack(
            StackName=self.bootstrap_stack_name(role_arn),
            TemplateBody=json.dumps(bootstrap_template(target, granted)),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )["StackId"]
        return stack_id

    def remove_bootstrap(self, role_arn: str, region: str = BOOTSTRAP_REGION) -> None:
        """The administrator deletes the bootstrap stack: the role and its permissions are gone."""
        cfn = self.account_session(role_arn.split(":")[4]).client("cloudformation", region_name=region)
        cfn.delete_stack(StackName=self.bootstrap_stack_name(role_arn))

    @staticmethod
    def bootstrap_stack_name(role_arn: str) -> str:
        return "nexus-bootstrap-" + re.sub(r"[^A-Za-z0-9-]", "-", role_arn.rsplit("/", 1)[-1])

    @property
    def event_bus_arn(self) -> str:
        """The central account's default bus: where target accounts forward their stack events."""
        return f"arn:aws:events:{self.region}:{self.central.account_id}:event-bus/default"

    def forward_stack_events(self, account_id: str, regions: Iterable[str] = ()) -> None:
        """Set up, in ``account_id``, what the bootstrap template's forwarding resources are.

        Built from the template's own resources (``stack_events_forwarding``), so the tests and the
        benchmarks forward exactly what a bootstrapped account forwards, without deploying a stack
        per account. One rule per region (``regions``, default the local AWS's region).
        """
        from chalicelib.domain.bootstrap import FORWARDER_ROLE, FORWARDING_RULE, stack_events_forwarding

        resources = stack_events_forwarding(self.event_bus_arn)
        session = self.account_session(account_id)
        role = resources[FORWARDER_ROLE]["Properties"]
        iam_client = session.client("iam")
        try:
            role_arn = iam_client.get_role(RoleName=FORWARDER_ROLE)["Role"]["Arn"]
        except iam_client.exceptions.NoSuchEntityException:
            role_arn = iam_client.create_role(
                RoleName=FORWARDER_ROLE, AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"])
            )["Role"]["Arn"]
            for policy in role["Policies"]:
                iam_client.put_role_policy(
                    RoleName=FORWARDER_ROLE,
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(policy["PolicyDocument"]),
                )
        rule = resources[FORWARDING_RULE]["Properties"]
        (target,) = rule["Targets"]  # the service's bus
        for region in tuple(regions) or (self.region,):
            events = session.client("events", region_name=region)
            events.put_rule(
                Name=FORWARDING_RULE,
                EventPattern=json.dumps(rule["EventPattern"]),
                State=rule["State"],
                Description=rule["Description"],
            )
            events.put_targets(
                Rule=FORWARDING_RULE,
                Targets=[{"Id": target["Id"], "Arn": target["Arn"], "RoleArn": role_arn}],
            )

    def settings_env(self, **overrides: str) -> dict[str, str]:
        """The environment the service's settings read, pointing at the provisioned resources.
        Tracing is off (there is no X-Ray here) unless an override turns it on."""
        return {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_REGION": self.region,
            "NEXUS_TABLE_NAME": self.central.table_name,
            "NEXUS_STATE_MACHINE_ARN": self.central.state_machine_arn,
            "NEXUS_ROLLOUT_STATE_MACHINE_ARN": self.central.rollout_state_machine_arn,
            "NEXUS_SERVICE_ROLE_ARN": self.central.service_role_arn,
            **overrides,
        }


def chalice_functions(app: Any) -> tuple[dict[str, lambda_runner.Handler], dict[str, dict[str, Any]]]:
    """A Chalice app's Lambda functions by name, and the EventBridge patterns of its ``on_cw_event`` ones.

    What ``chalice package`` deploys: each ``@app.lambda_function`` and each ``@app.on_cw_event`` handler
    as a function (the latter with a rule on the default bus). Other event sources (SNS, schedules)
    are left to the tests that drive them through ``chalice.test.Client``. Each runs as Lambda runs it:
    the module attribute its handler string names, with the app's middleware around it.
    """
    handlers: dict[str, lambda_runner.Handler] = {
        fn.name: _entry_point(fn.handler_string) for fn in app.pure_lambda_functions
    }
    rules: dict[str, dict[str, Any]] = {}
    for source in app.event_sources:
        pattern = getattr(source, "event_pattern", None)
        if pattern is None:
            continue
        handlers[source.name] = _entry_point(source.handler_string)
        rules[source.name] = dict(pattern)
    return handlers, rules


def _entry_point(handler_string: str) -> lambda_runner.Handler:
    """What Lambda calls for ``app.<name>``: the decorated module attribute (middleware included)."""
    import sys

    module_name, _, attribute = handler_string.rpartition(".")
    handler: lambda_runner.Handler = getattr(sys.modules[module_name], attribute)
    return handler


def install_patches(simulation: cloudformation.StackSimulation) -> None:
    concurrency.install()
    lambda_runner.install()
    sts.install()
    iam.install()
    saml.install()
    # Identity policies of role sessions and IAM users, everywhere but the central account: the service's
    # own functions all run as one role there until each runs under its own (localaws/authorization.py).
    authorization.install(exempt_accounts=frozenset({CENTRAL_ACCOUNT}))
    cloudformation.install(simulation)
    drift.install()  # DetectStackDrift, which moto lacks (localaws/drift.py)
    eventbridge.install()  # Lambda targets, and CloudFormation's stack events (localaws/eventbridge.py)
    faults_module.install()  # NEXUS_LOCAL_FAULTS, put in force by each LocalAws (localaws/faults.py)
    from localaws import admission, dynamodb, serialization, stepfunctions

    admission.install()  # at most 64 running executions per state machine (localaws/admission.py)

    dynamodb.install()  # TransactWriteItems journals the items it touches, not whole tables
    stepfunctions.install()  # the interpreter's per-state clients and parsers, cached
    serialization.install()  # response serializer: a dict member's aliases derived once per shape


__all__ = [
    "BOOTSTRAP_REGION",
    "CENTRAL_ACCOUNT",
    "SERVICE_ROLE_NAME",
    "LocalAws",
    "chalice_functions",
    "install_patches",
]
