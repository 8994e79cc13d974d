"""Shared fixtures: the embedded local AWS, the app wired to it, a tenant token, a target account.

Every test that touches AWS gets a fresh ``LocalAws`` (moto, with the project's realism patches) into
whose central account the service is deployed from its own cloud template: the real
``statemachine/deployment.asl.json`` executes there, and every function (workflow steps, event handlers,
the API) runs the app's own handler in-process under the execution role the template gives it.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import boto3
import pytest
from chalice.test import Client

import app as app_module
from chalicelib.composition import Services
from chalicelib.domain.permissions import PermissionProfile, load_profile
from localaws.collector import collect_less_often
from localaws.environment import CENTRAL_ACCOUNT, LocalAws
from localaws.faults import FaultSettings
from localaws.functions import FunctionHost
from tests.contract import check_answer
from tests.support.http_server import serving
from tests.support.polling import until

TARGET_ACCOUNT = "111111111111"
OTHER_ACCOUNT = "222222222222"
TARGET_ROLE = "NexusDeploymentRole"
TARGET_REGIONS = ("us-east-1", "eu-west-1")
# The wait for a stack event before the workflow reconciles anyway: short, so that a missed event
# shows as a slow test (and in the tests that count reconciles), never as a hang.
EVENT_TIMEOUT_SECONDS = 5


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    _set_fake_credentials(monkeypatch)


def _set_fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)


def app_host(aws: LocalAws) -> FunctionHost:
    """Runs the deployed functions with this app's handlers and its container."""
    return FunctionHost(aws, app_module.container)


def own_function(aws: LocalAws, name: str, handler: Any, timeout: int = 3) -> str:
    """A Lambda function of the test's own in the central account, running ``handler`` in-process
    (``timeout``: the function's, in seconds; 3 is Lambda's default)."""
    from localaws import lambda_runner
    from localaws.stack_resources import stub_code

    session = aws.central_session()
    role = session.client("iam").create_role(
        RoleName=f"test-{name}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    arn: str = session.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="test.handler",
        Code={"ZipFile": stub_code()},
        Timeout=timeout,
    )["FunctionArn"]
    lambda_runner.register({name: handler})
    return arn


def local_aws_for_app(**kwargs: Any) -> LocalAws:
    """A LocalAws with the service deployed from its template and its functions run by this app, and the
    faults ``NEXUS_LOCAL_FAULTS`` asks for (none by default)."""
    kwargs.setdefault("faults", FaultSettings.from_env(os.environ))
    return LocalAws(app_host, **kwargs)


@contextmanager
def wired(aws: LocalAws, **overrides: str) -> Iterator[Services]:
    """The deployed functions' environments tuned for tests (completion by stack events, the default,
    with a short wait before the fallback reconcile and polls with no wait, then ``overrides``); yields
    the API function's services, which the HTTP routes get (under the API's role). Inside another
    ``wired`` block, ``overrides`` go on top of that block's tuning, which is put back at the end."""
    previous = aws.host.tuning
    base = (
        previous
        if previous is not None
        else {
            "NEXUS_POLL_INITIAL_SECONDS": "0",
            "NEXUS_POLL_MAX_SECONDS": "0",
            "NEXUS_EVENT_TIMEOUT_SECONDS": str(EVENT_TIMEOUT_SECONDS),
        }
    )
    built = aws.host.configure({**base, **overrides})
    assert built is not None
    try:
        yield built
    finally:
        aws.drain_executions()  # the steps of executions still running need the services
        aws.host.configure(previous)


@pytest.fixture
def local_aws() -> Iterator[LocalAws]:
    with local_aws_for_app() as aws:
        yield aws


@pytest.fixture
def services(local_aws: LocalAws) -> Iterator[Services]:
    with wired(local_aws) as built:
        yield built


@pytest.fixture
def client(services: Services) -> Iterator[Client]:
    with Client(app_module.app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def module_client() -> Iterator[tuple[Client, Services, LocalAws]]:
    """One local AWS for a whole module: for tests that only read, or write nothing that others see."""
    with pytest.MonkeyPatch.context() as patch:
        _set_fake_credentials(patch)
        with local_aws_for_app() as aws, wired(aws) as built, Client(app_module.app) as test_client:
            yield test_client, built, aws


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}


@pytest.fixture
def tenant(services: Services) -> Tenant:
    return Tenant("tenant-a", services.auth.issue("tenant-a", "tests"))


@pytest.fixture
def other_tenant(services: Services) -> Tenant:
    return Tenant("tenant-b", services.auth.issue("tenant-b", "tests"))


def call(
    client: Client, method: str, path: str, tenant: Tenant | None, body: Any = None, **headers: str
) -> Any:
    all_headers = dict(tenant.headers) if tenant else {"Content-Type": "application/json"}
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    payload = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    data = payload.encode() if isinstance(payload, str) else payload
    response = client.http.request(method, path, headers=all_headers, body=data or b"")
    check_answer(method, path, response.status_code, response.body)
    return response


def create_target_role(
    aws: LocalAws,
    trust_policy: dict[str, Any],
    account_id: str = TARGET_ACCOUNT,
    *,
    forward: bool = True,
    profile: str | PermissionProfile = "default",
) -> str:
    """Do what the target account's admin does with the trust policy the API returned: deploy the
    bootstrap template (the role with the profile's permissions) and forward the account's stack events
    to the service's bus."""
    arn = f"arn:aws:iam::{account_id}:role/{TARGET_ROLE}"
    with _admin_setup():
        aws.bootstrap_role(arn, trust_policy, profile=profile)
        if forward:
            aws.forward_stack_events(account_id, TARGET_REGIONS)
    return arn


def remove_target_role(aws: LocalAws, account_id: str = TARGET_ACCOUNT) -> None:
    """The target account's admin removes the service's access (deletes the bootstrap stack)."""
    with _admin_setup():
        aws.remove_bootstrap(f"arn:aws:iam::{account_id}:role/{TARGET_ROLE}")


def policy_profile(document: dict[str, Any]) -> PermissionProfile:
    """A test's own permissions, bootstrapped as a profile would be."""
    return PermissionProfile("test", "a test's own permissions", document)


def guide_profile() -> PermissionProfile:
    """The guide's "Minimum Required Permissions" exactly as pasted (without GUIDE_CORRECTIONS)."""
    text = resources.files("chalicelib").joinpath("data", "required-permissions.json").read_text()
    document: dict[str, Any] = json.loads(text)
    return policy_profile(document)


def default_profile_and(sid: str, *actions: str) -> PermissionProfile:
    """The default profile and one more statement: for a stack of resources the guide grants nothing for."""
    document = load_profile().policy()
    document["Statement"].append({"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": "*"})
    return policy_profile(document)


_ADMIN = threading.local()


@contextmanager
def _admin_setup() -> Iterator[None]:
    """Calls a target account's administrator makes (its bootstrap stack): ``aws_calls`` leaves them out."""
    _ADMIN.active = True
    try:
        yield
    finally:
        _ADMIN.active = False


def register_target(
    client: Client,
    tenant: Tenant,
    aws: LocalAws,
    *,
    with_role: bool = True,
    profile: str | PermissionProfile = "default",
) -> dict[str, Any]:
    response = call(
        client,
        "POST",
        "/targets",
        tenant,
        {
            "name": "team-a-prod",
            "account_id": TARGET_ACCOUNT,
            "role_arn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/{TARGET_ROLE}",
            "regions": ["us-east-1", "eu-west-1"],
        },
    )
    assert response.status_code == 201, response.body
    target: dict[str, Any] = json.loads(response.body)
    if with_role:
        create_target_role(aws, target["trust_policy"], profile=profile)
    return target


def deployment_request(target_id: str, stack_name: str, template_body: str, **fields: Any) -> dict[str, Any]:
    """The body of ``POST /deployments`` in us-east-1; ``fields`` adds or replaces the rest."""
    body = {
        "target_id": target_id,
        "region": "us-east-1",
        "stack_name": stack_name,
        "template_body": template_body,
    }
    return {**body, **fields}


def deploy(
    client: Client, tenant: Tenant, target_id: str, stack_name: str, template_body: str, **fields: Any
) -> str:
    """``POST /deployments`` (202 asserted): the new deployment's id."""
    response = call(
        client,
        "POST",
        "/deployments",
        tenant,
        deployment_request(target_id, stack_name, template_body, **fields),
    )
    assert response.status_code == 202, response.body
    deployment_id: str = json.loads(response.body)["deployment_id"]
    return deployment_id


def wait_for(client: Client, tenant: Tenant, deployment_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll the public API until the deployment's current operation has ended."""

    def shown() -> dict[str, Any]:
        body: dict[str, Any] = json.loads(call(client, "GET", f"/deployments/{deployment_id}", tenant).body)
        return body

    return until(
        shown,
        ready=lambda body: body["operation"]["status"] in ("SUCCEEDED", "FAILED"),
        timeout=timeout,
        interval=0.02,
        max_interval=0.25,
        what=f"deployment {deployment_id} to settle",
    )


def stacks_in(aws: LocalAws, account_id: str, region: str = "us-east-1") -> list[dict[str, Any]]:
    cfn = aws.account_session(account_id).client("cloudformation", region_name=region)
    return [dict(s) for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]


def ended_execution(
    sfn: Any, execution_arn: str, *, timeout: float, interval: float = 0.05
) -> dict[str, Any]:
    """DescribeExecution's answer once the execution is no longer RUNNING."""
    described: dict[str, Any] = until(
        lambda: sfn.describe_execution(executionArn=execution_arn),
        ready=lambda d: d["status"] != "RUNNING",
        timeout=timeout,
        interval=interval,
        what=f"execution {execution_arn} to end",
    )
    return described


def running_executions(aws: LocalAws, machine_arn: str) -> list[Any]:
    """ListExecutions of the central account's ``machine_arn``, those RUNNING."""
    sfn = aws.central_session().client("stepfunctions")
    executions: list[Any] = sfn.list_executions(stateMachineArn=machine_arn, statusFilter="RUNNING")[
        "executions"
    ]
    return executions


def state_names(history: Iterable[Any]) -> list[str]:
    """The states an execution's history entered, in order (its events as GetExecutionHistory gives them)."""
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def execution_history(aws: LocalAws, operation_id: str) -> list[dict[str, Any]]:
    sfn = aws.account_session(CENTRAL_ACCOUNT).client("stepfunctions")
    arn = aws.central.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{operation_id}"
    ended_execution(sfn, arn, timeout=10, interval=0.02)
    return [dict(e) for e in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]]


def boto3_session_for(aws: LocalAws, account: str) -> boto3.Session:
    return aws.account_session(account)


@dataclass
class AwsCalls:
    """Every botocore API call made in this process (any thread), as (service, operation), but a target
    account administrator's setup (``create_target_role``)."""

    calls: list[tuple[str, str]]
    threads: list[int] = field(default_factory=list)  # the thread of each call (threading.get_ident)
    # and its name: the local AWS runs each invocation of a function on a thread named after it
    thread_names: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # the lists grow together

    def on_this_thread(self, since: int = 0) -> list[tuple[str, str]]:
        """The calls from ``calls[since]`` on made on the calling thread: a request through the test
        client, not the event handlers and workflow steps the local AWS runs meanwhile on its own."""
        me = threading.get_ident()
        with self.lock:
            pairs = list(zip(self.calls[since:], self.threads[since:], strict=True))
        return [call for call, thread in pairs if thread == me]

    def by_function(self, function: str) -> Counter[tuple[str, str]]:
        """The calls that the invocations of the Lambda function ``function`` (its logical id) made,
        each with how many times (localaws/lambda_runner.py names their threads ``lambda-<function>``)."""
        with self.lock:
            pairs = list(zip(self.calls, self.thread_names, strict=True))
        return Counter(call for call, name in pairs if name == f"lambda-{function}")

    def count(self, service: str, operation: str | None = None) -> int:
        return sum(1 for s, o in self.calls if s == service and (operation is None or o == operation))

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()
            self.threads.clear()
            self.thread_names.clear()


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> AwsCalls:
    from botocore.client import BaseClient

    recorded = AwsCalls([])
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: Any, operation_name: str, api_params: Any) -> Any:
        if not getattr(_ADMIN, "active", False):
            with recorded.lock:
                recorded.calls.append((self.meta.service_model.service_name, operation_name))
                recorded.threads.append(threading.get_ident())
                recorded.thread_names.append(threading.current_thread().name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return recorded


@contextmanager
def webhook_receiver(path: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on 127.0.0.1 recording each POST: headers (lower-case names), body, path."""
    from http.server import BaseHTTPRequestHandler

    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            received.append({"headers": headers, "body": body, "path": self.path})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        yield f"{url}{path}", received


def pytest_configure(config: pytest.Config) -> None:
    """Each test process (every xdist worker configures) collects cyclic garbage less often: see
    localaws/collector.py."""
    collect_less_often()
