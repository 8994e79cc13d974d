"""``LocalAws``: the embedded AWS as one object, for the tests and for local mode.

Entering it starts moto with state-machine execution on, installs the project's realism patches
(in-process Lambda, trust-policy enforcement, stacks that take time and fail like AWS), and deploys the
service into the central account from its own cloud template: the template ``make package`` builds,
after the SAM transform (``localaws/template.py``), created resource by resource (``localaws/stack.py``).
Its functions then run in-process under the execution roles the template gives them
(``localaws/functions.py``, the ``host``), its state machines are the template's with
``DefinitionSubstitutions`` applied, and events reach handlers only through the template's rules and
subscription. So target trust policies name the template's ``ServiceRole``, exactly as in production.
In-process, a template deployed once in this process is not deployed again: the next ``LocalAws`` gets
a copy of the central account as that deployment left it (``localaws/snapshots.py``).

Two modes share that deployment. In-process (the default, for tests) moto is ``mock_aws``: botocore
never leaves the process. Server mode (``serve_on=(host, port)``, for local mode) runs a
``moto.server.ThreadedMotoServer`` in this process instead, because the patches must live beside the
server that runs them; while it runs, this process's ``AWS_ENDPOINT_URL`` points at it (so the service
reaches it exactly as it would reach AWS) and ``MOTO_PORT`` names its port (moto's Step Functions
interpreter invokes Lambda tasks through boto3 at ``localhost:$MOTO_PORT``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session

from localaws import (
    actions,
    async_invoke,
    authorization,
    cloudformation,
    concurrency,
    drift,
    dynamodb_expressions,
    eventbridge,
    iam,
    kms,
    lambda_runner,
    s3,
    saml,
    secretsmanager,
    sessions,
    snapshots,
    sns,
    sts,
)
from localaws import faults as faults_module
from localaws.stack import DeployedStack, deploy_stack

if TYPE_CHECKING:
    from chalicelib.domain.permissions import PermissionProfile
    from localaws.functions import FunctionHost

CENTRAL_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
# The stack the service is deployed as; its resources' names derive from it, as CloudFormation's do.
STACK_NAME = "nexus-deployer-local"
# Where bootstrap_role deploys a target account's bootstrap stack (the admin's sign-in region): not a
# region the tests or the benchmarks deploy to, so theirs hold only the stacks under test.
BOOTSTRAP_REGION = "us-west-2"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}
LAMBDA_SERVICE = "lambda.amazonaws.com"


@dataclass(frozen=True)
class CentralResources:
    """The deployed stack's resources that tests, local mode and the benchmarks name."""

    account_id: str
    region: str
    table_name: str
    state_machine_arn: str
    service_role_arn: str
    function_arns: dict[str, str]
    rollout_state_machine_arn: str = ""

    @classmethod
    def of(cls, stack: DeployedStack) -> CentralResources:
        return cls(
            account_id=stack.account_id,
            region=stack.region,
            table_name=stack.ref("DeploymentsTable"),
            state_machine_arn=stack.ref("DeploymentStateMachine"),
            service_role_arn=stack.attribute("ServiceRole", "Arn"),
            function_arns={name: f.arn for name, f in stack.functions().items()},
            rollout_state_machine_arn=stack.ref("RolloutStateMachine"),
        )


HostFactory = Callable[["LocalAws"], "FunctionHost"]

# In-process deployments of the service's stack by (template, parameters, region): the stack and a copy
# of the central account's backends right after it was deployed. A few templates at most (tests change
# copies of the service's own); each copy holds IAM's managed policies, some megabytes.
_DEPLOYED: dict[str, tuple[DeployedStack, snapshots.AccountSnapshot]] = {}
_DEPLOYED_KEPT = 4


class LocalAws:
    def __init__(
        self,
        host: HostFactory | None = None,
        *,
        region: str = DEFAULT_REGION,
        simulation: cloudformation.StackSimulation | None = None,
        serve_on: tuple[str, int] | None = None,
        template: Mapping[str, Any] | None = None,
        stack_parameters: Mapping[str, str] | None = None,
        faults: faults_module.FaultSettings | None = None,
        async_retries: async_invoke.AsyncRetries | None = None,
    ) -> None:
        """``host`` runs the stack's functions (None: none runs; see ``localaws/functions.py``);
        ``template`` replaces the service's own (a test's changed copy of it); ``async_retries`` the
        waits of Lambda's retries of a failed asynchronous invocation (``localaws/async_invoke.py``)."""
        self._host_factory = host
        self.faults = faults or faults_module.NO_FAULTS
        self.async_retries = async_retries or async_invoke.DEFAULT
        self._host: FunctionHost | None = None
        self._template = template
        self._stack_parameters = dict(stack_parameters or {})
        self._stack: DeployedStack | None = None
        self._iam_admins: dict[str, Any] = {}  # an IAM client per account, to read roles' trust policies
        self._drain_client: Any = None  # the central account's Step Functions, for drain_executions
        self.region = region
        self.simulation = simulation or cloudformation.StackSimulation(stack_seconds=0)
        self._serve_on = serve_on
        self._mock: Any = None
        self._server: Any = None
        self._saved_environ: dict[str, str | None] = {}
        self._central: CentralResources | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> LocalAws:
        from moto import mock_aws

        from localaws.template import service_template

        install_patches(self.simulation)
        async_invoke.configure(self.async_retries)
        try:
            template = self._template if self._template is not None else service_template(region=self.region)
            if self._serve_on is None:
                self._mock = mock_aws(config=MOTO_CONFIG)
                self._mock.start()
            else:
                self._start_server(*self._serve_on)
            self._stack = self._deploy(template)
            self._central = CentralResources.of(self._stack)
            if self._host_factory is not None:
                self._host = self._host_factory(self)
                lambda_runner.register(self._host.handlers(), self._host.names())
            if self._host is not None:
                self.faults.check_functions(set(self._host.names().values()))
            faults_module.configure(self.faults)  # after provisioning: the central account's setup is spared
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _deploy(self, template: Mapping[str, Any]) -> DeployedStack:
        """The service's stack in the central account: deployed, or in-process a copy of the same
        template's deployment made earlier in this process (``localaws/snapshots.py``)."""
        key = None
        if self._serve_on is None:
            key = hashlib.sha256(
                json.dumps([template, self._stack_parameters, self.region], sort_keys=True).encode()
            ).hexdigest()
            deployed = _DEPLOYED.pop(key, None)
            if deployed is not None:
                _DEPLOYED[key] = deployed  # the most recently used is evicted last
                snapshots.restore(deployed[1])
                return deployed[0]
        stack = deploy_stack(
            self.account_session(CENTRAL_ACCOUNT),
            template,
            stack_name=STACK_NAME,
            account_id=CENTRAL_ACCOUNT,
            parameters=self._stack_parameters,
        )
        if key is not None:
            while len(_DEPLOYED) >= _DEPLOYED_KEPT:
                _DEPLOYED.pop(next(iter(_DEPLOYED)))
            _DEPLOYED[key] = (stack, snapshots.capture(CENTRAL_ACCOUNT))
        return stack

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._central is not None and self._mock is not None:
            self.drain_executions()  # in-process (tests); local mode's Ctrl-C should not wait
        if self._host is not None:
            self._host.close()
            self._host = None
        eventbridge.reset()  # scheduled stack events (and Lambda's retries) belong to this AWS only
        async_invoke.configure(async_invoke.DEFAULT)
        faults_module.configure(faults_module.NO_FAULTS)  # this AWS's faults end with it
        self._drain_client = None
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
        if self._drain_client is None:  # one per LocalAws, not a session and a client per call
            self._drain_client = self.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
        sfn = self._drain_client
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

    @property
    def stack(self) -> DeployedStack:
        """The service's stack as deployed in the central account."""
        if self._stack is None:
            raise RuntimeError("LocalAws is not started")
        return self._stack

    @property
    def host(self) -> FunctionHost:
        """What runs the stack's functions (given as ``host`` when this was made)."""
        if self._host is None:
            raise RuntimeError("this LocalAws runs no functions: pass host=...")
        return self._host

    def account_session(self, account_id: str) -> boto3.Session:
        """An administrator of ``account_id`` (to set up a target account, as its admin would)."""
        return self._session(**sts.account_credentials(account_id).boto3_kwargs())

    def central_session(self) -> boto3.Session:
        """An administrator of the central account (to look at the service's table or executions)."""
        return self.account_session(CENTRAL_ACCOUNT)

    def role_session(self, role_arn: str, service: str = LAMBDA_SERVICE) -> boto3.Session:
        """A session of ``role_arn`` as ``service`` gets one to run code under it (Lambda: a function's
        execution role). The role's trust policy must let that service assume it, as AWS requires.

        Its credentials refresh themselves before they expire, as Lambda's do, so a long-running
        local mode keeps working after the role session's hour is up.
        """
        from botocore.credentials import RefreshableCredentials
        from moto.sts.models import sts_backends

        from localaws.policy import service_trust_allows

        account, partition = role_arn.split(":")[4], role_arn.split(":")[1]
        role_name = role_arn.rsplit("/", 1)[-1]
        if account not in self._iam_admins:
            self._iam_admins[account] = self.account_session(account).client("iam")
        trust = self._iam_admins[account].get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
        if not service_trust_allows(trust, service, context={"aws:sourceaccount": account}):
            raise PermissionError(f"{role_arn}'s trust policy does not let {service} assume it")

        def assume() -> dict[str, str]:
            session = sts_backends[account][partition].assume_role(
                region_name=self.region,
                role_session_name=role_name[:64],
                role_arn=role_arn,
                policy="",
                duration=3600,
                external_id="",
            )
            return {
                "access_key": str(session.access_key_id),
                "secret_key": str(session.secret_access_key),
                "token": str(session.session_token),
                "expiry_time": session.expiration.replace(tzinfo=UTC).isoformat(),  # moto's is naive UTC
            }

        core = self._core_session()
        core._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
            assume(), assume, "assume-role"
        )
        return boto3.Session(botocore_session=core, region_name=self.region)

    def _session(self, **credentials: str) -> boto3.Session:
        return boto3.Session(botocore_session=self._core_session(), region_name=self.region, **credentials)

    def _core_session(self) -> botocore.session.Session:
        return sessions.new_core_session()  # the process's loader and builtin handlers (localaws/sessions.py)

    def fire_schedule(self, rule_logical_id: str) -> list[Any]:
        """What EventBridge does when a schedule rule of the stack comes due (moto never fires them):
        each Lambda target of the rule gets a "Scheduled Event", through the Lambda API; answers their
        results."""
        session = self.central_session()
        rule = self.stack.ref(rule_logical_id)
        rule_arn = self.stack.attribute(rule_logical_id, "Arn")
        event = {
            "version": "0",
            "id": f"local-{time.monotonic_ns()}",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": CENTRAL_ACCOUNT,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.region,
            "resources": [rule_arn],
            "detail": {},
        }
        results = []
        for target in session.client("events").list_targets_by_rule(Rule=rule)["Targets"]:
            response = session.client("lambda").invoke(FunctionName=target["Arn"], Payload=json.dumps(event))
            results.append(json.loads(response["Payload"].read() or b"null"))
        return results

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
        return f"arn:{self.stack.partition}:events:{self.region}:{self.central.account_id}:event-bus/default"

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


def install_patches(simulation: cloudformation.StackSimulation) -> None:
    concurrency.install()
    actions.install()  # a request's action method found without listing its class (localaws/actions.py)
    lambda_runner.install()
    sts.install()
    iam.install()
    saml.install()
    # Identity policies of role sessions and IAM users, in every account: the service's functions run
    # under the roles its template gives them, so a call the template does not allow is refused
    # (localaws/authorization.py).
    authorization.install()
    cloudformation.install(simulation)
    drift.install()  # DetectStackDrift, which moto lacks (localaws/drift.py)
    eventbridge.install()  # Lambda targets, and CloudFormation's stack events (localaws/eventbridge.py)
    async_invoke.install()  # Lambda's retries of asynchronous invocations, its DLQ (localaws/async_invoke.py)
    from localaws import execution_events

    execution_events.install()  # Step Functions' "Execution Status Change" (localaws/execution_events.py)
    from localaws import stop_reasons

    stop_reasons.install()  # StopExecution's error and cause kept (localaws/stop_reasons.py)
    sns.install()  # Lambda subscribers get AWS's record: the topic, the message id (localaws/sns.py)
    s3.install()  # bucket policies decided with their conditions (localaws/s3.py)
    faults_module.install()  # NEXUS_LOCAL_FAULTS, put in force by each LocalAws (localaws/faults.py)
    from localaws import (
        access_keys,
        admission,
        choice_paths,
        dynamodb,
        error_matching,
        map_runs,
        projection,
        serialization,
        stepfunctions,
        task_tokens,
    )

    admission.install()  # at most 64 running executions per state machine (localaws/admission.py)
    map_runs.install()  # a Distributed Map fails past its tolerated failures (localaws/map_runs.py)
    task_tokens.install()  # a closed task's token is refused: TaskTimedOut (localaws/task_tokens.py)
    error_matching.install()  # States.ALL misses DataLimitExceeded and Runtime (localaws/error_matching.py)
    choice_paths.install()  # a Choice rule on a path the input lacks: States.Runtime (localaws/choice_paths.py)

    dynamodb.install()  # TransactWriteItems journals the items it touches, not whole tables
    dynamodb_expressions.install()  # placeholders no expression uses are refused, as AWS refuses them
    projection.install()  # a projected item converted once, not once per attribute named
    secretsmanager.install()  # a secret value over 65,536 bytes is refused (localaws/secretsmanager.py)
    kms.install()  # a KMS key's signing key pair made when first used (localaws/kms.py)
    stepfunctions.install()  # the interpreter's per-state clients and parsers, cached
    serialization.install()  # response serializer: a dict member's aliases derived once per shape
    access_keys.install()  # a request's account found by its key, not by walking every account


__all__ = [
    "BOOTSTRAP_REGION",
    "CENTRAL_ACCOUNT",
    "STACK_NAME",
    "CentralResources",
    "LocalAws",
    "install_patches",
]
