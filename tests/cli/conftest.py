"""Fixtures for the ``nexus`` CLI: a target account (111111111111) set up as its administrator would.

The CLI runs in-process through Typer's ``CliRunner`` against the in-process local AWS (``LocalAws``):
its boto3 clients reach moto with the project's STS/IAM/SAML patches, and the ADFS provider is a real
HTTP server in a thread. The operator is another account (222222222222) for role assumption, or an
IAM user of the target account for keys, profiles and MFA.

The everyday commands (``test_daily_*``) are run as a user runs them instead: ``.venv/bin/nexus``
subprocesses (``Cli``) against a real local mode (``python -m localaws.run`` on free ports). One local
mode serves each module, and its target account 111111111111 is set up once, the way the README does
it: ``targets create``, ``local admin --profile``, ``targets bootstrap --profile`` (``target_id``).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from chalicelib.domain.permissions import load_profile
from localaws.adfs import AdfsProvider, AdfsUser
from localaws.environment import LocalAws
from localaws.sts import CLOCK, account_credentials
from nexus_cli.main import app
from tests.support.local_mode import BIN, ROOT, LocalMode, clean_env, local_mode

TARGET = "111111111111"
OPERATOR_ACCOUNT = "222222222222"
EXTERNAL_ID = "nexus-ext-3f9a1c"
ROLE = f"arn:aws:iam::{TARGET}:role/NexusDeploymentRole"
PARTIAL_ROLE = f"arn:aws:iam::{TARGET}:role/NexusPartialRole"
MFA_ROLE = f"arn:aws:iam::{TARGET}:role/NexusMfaRole"
SAML_PROVIDER = f"arn:aws:iam::{TARGET}:saml-provider/corp-adfs"
ADFS_ROLE = f"arn:aws:iam::{TARGET}:role/AdfsDeployer"
ADFS_READONLY_ROLE = f"arn:aws:iam::{TARGET}:role/AdfsReadOnly"
KEY_ID_RE = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}")
TOKEN = "nxs_cli_daily_test_token"
APP = str(ROOT / "examples" / "app-stack.json")


def without_statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return {**document, "Statement": [s for s in document["Statement"] if s.get("Sid") != sid]}


@dataclass
class Operator:
    key: str
    secret: str
    user_arn: str


@dataclass
class TargetAccount:
    aws: LocalAws
    operator: Operator  # an IAM user of the target account with the deployment policy
    adfs: AdfsProvider

    def env(self, key: str, secret: str) -> dict[str, str | None]:
        return {
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": None,
            "AWS_SECURITY_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_ENDPOINT_URL": None,
        }

    def operator_env(self) -> dict[str, str | None]:
        """Credentials of an administrator of the operator's own account (222222222222)."""
        return self.env(*account_credentials(OPERATOR_ACCOUNT))


def _trust(principal: str, condition: dict[str, Any] | None = None, action: str = "sts:AssumeRole") -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _may_simulate_itself(iam: Any, arn: str, *, role: str = "", user: str = "") -> None:
    """What the bootstrap template grants a deployment role: iam:SimulatePrincipalPolicy on itself,
    which ``credentials test`` uses to check the permissions (AWS refuses it otherwise)."""
    grant = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy", "Resource": arn}],
        }
    )
    if role:
        iam.put_role_policy(RoleName=role, PolicyName="self-check", PolicyDocument=grant)
    else:
        iam.put_user_policy(UserName=user, PolicyName="self-check", PolicyDocument=grant)


@pytest.fixture
def target(local_aws: LocalAws) -> Iterator[TargetAccount]:
    iam = local_aws.account_session(TARGET).client("iam")
    policy = load_profile().policy()
    external = {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    iam.create_role(
        RoleName="NexusDeploymentRole",
        AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{OPERATOR_ACCOUNT}:root", external),
    )
    iam.put_role_policy(
        RoleName="NexusDeploymentRole", PolicyName="deploy", PolicyDocument=json.dumps(policy)
    )
    iam.create_role(
        RoleName="NexusPartialRole",
        AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{OPERATOR_ACCOUNT}:root", external),
    )
    iam.put_role_policy(
        RoleName="NexusPartialRole",
        PolicyName="deploy",
        PolicyDocument=json.dumps(without_statement(policy, "ECSPermissions")),
    )
    iam.create_role(
        RoleName="NexusMfaRole",
        AssumeRolePolicyDocument=_trust(
            f"arn:aws:iam::{TARGET}:root", {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        ),
    )
    iam.put_role_policy(RoleName="NexusMfaRole", PolicyName="deploy", PolicyDocument=json.dumps(policy))
    user = iam.create_user(UserName="ops")["User"]
    iam.put_user_policy(UserName="ops", PolicyName="deploy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="ops")["AccessKey"]
    operator = Operator(key["AccessKeyId"], key["SecretAccessKey"], user["Arn"])

    saml_trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": SAML_PROVIDER},
                    "Action": "sts:AssumeRoleWithSAML",
                    "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
                }
            ],
        }
    )
    for name in ("AdfsDeployer", "AdfsReadOnly"):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=saml_trust)
    iam.put_role_policy(RoleName="AdfsDeployer", PolicyName="deploy", PolicyDocument=json.dumps(policy))
    for name in ("NexusDeploymentRole", "NexusPartialRole", "NexusMfaRole", "AdfsDeployer", "AdfsReadOnly"):
        _may_simulate_itself(iam, f"arn:aws:iam::{TARGET}:role/{name}", role=name)
    _may_simulate_itself(iam, user["Arn"], user="ops")
    users = {
        "alice": AdfsUser("correct horse", [(ADFS_ROLE, SAML_PROVIDER), (ADFS_READONLY_ROLE, SAML_PROVIDER)]),
    }
    with AdfsProvider(users) as adfs:
        iam.create_saml_provider(Name="corp-adfs", SAMLMetadataDocument=adfs.metadata_xml())
        try:
            yield TargetAccount(local_aws, operator, adfs)
        finally:
            CLOCK.reset()


def run(args: list[str], env: Mapping[str, str | None] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, args, env=dict(env) if env is not None else None, input=stdin)


def report_of(result: Result) -> dict[str, Any]:
    """The CLI's JSON document. CliRunner captures this process's stdout, where the in-process service's
    functions (the API server's, InspectTarget's) also write their metric documents (CloudWatch EMF,
    an ``_aws`` key): in a real run they are another process's output, so they are left out here."""
    decoder, text = json.JSONDecoder(), result.stdout
    found: list[Any] = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        document, position = decoder.raw_decode(text, position)
        if not (isinstance(document, dict) and "_aws" in document):
            found.append(document)
    (report,) = found
    assert isinstance(report, dict), report
    return report


def assert_no_secrets(result: Result, *secrets: str) -> None:
    text = result.output
    assert not KEY_ID_RE.search(text), text
    for secret in secrets:
        assert secret not in text


@dataclass
class Cli:
    env: dict[str, str]
    home: Path
    calls: list[list[str]] = field(default_factory=list)

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        return subprocess.run(
            [str(BIN / "nexus"), *args],
            input=stdin,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )

    def ok(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **kwargs)
        assert result.returncode == 0, (
            f"nexus {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.ok(*args, "--json", **kwargs).stdout)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    with local_mode(TOKEN, env=clean_env(NEXUS_LOCAL_STACK_SECONDS="1")) as running:
        yield running


@pytest.fixture(scope="module")
def cli(local: LocalMode, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("home")
    env = clean_env(
        HOME=str(home),
        NEXUS_PORT=str(local.api_port),
        NEXUS_AWS_PORT=str(local.aws_port),
        NEXUS_API_TOKEN=TOKEN,
    )
    return Cli(env, home)


@pytest.fixture(scope="module")
def target_id(cli: Cli) -> str:
    """Account 111111111111 registered and bootstrapped by its local admin, as in the README."""
    target = cli.json(
        "targets", "create", "--name", "team-a", "--account-id", TARGET, "--region", "us-east-1"
    )
    cli.ok("local", "admin", TARGET, "--profile", "team-a-admin")
    report = cli.json("targets", "bootstrap", target["target_id"], "--profile", "team-a-admin")
    assert report["ok"] is True, report
    return str(target["target_id"])
