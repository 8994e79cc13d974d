"""``LocalAws``: the embedded AWS as one object, for the tests and for local mode.

Entering it starts moto with state-machine execution on, installs the project's realism patches
(in-process Lambda, trust-policy enforcement, stacks that take time and fail like AWS), and
provisions the central account from the cloud template's own definitions. The service then runs
as the central ``NexusDeployerService`` role, as its Lambda functions do on AWS, so target trust
policies name that role exactly as they would in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import boto3
import botocore.loaders
import botocore.session

from localaws import cloudformation, lambda_runner, sts
from localaws.provision import SERVICE_ROLE_NAME, CentralResources, provision_central

CENTRAL_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}


class LocalAws:
    def __init__(
        self,
        handlers: Mapping[str, lambda_runner.Handler],
        *,
        region: str = DEFAULT_REGION,
        simulation: cloudformation.StackSimulation | None = None,
    ) -> None:
        self._handlers = dict(handlers)
        self.region = region
        self.simulation = simulation or cloudformation.StackSimulation(stack_seconds=0)
        self._mock: Any = None
        self._central: CentralResources | None = None
        self._loader = botocore.loaders.create_loader()  # shared: service models are parsed once

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> LocalAws:
        from moto import mock_aws

        install_patches(self.simulation)
        lambda_runner.register(self._handlers)
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._mock.start()
        self._central = provision_central(
            self.account_session(CENTRAL_ACCOUNT), account_id=CENTRAL_ACCOUNT, function_names=self._handlers
        )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

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
        """The service's own identity: the central NexusDeployerService role, as on AWS Lambda."""
        client = self.account_session(CENTRAL_ACCOUNT).client("sts")
        credentials = client.assume_role(
            RoleArn=self.central.service_role_arn, RoleSessionName="nexus-service", DurationSeconds=3600
        )["Credentials"]
        return self._session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def _session(self, **credentials: str) -> boto3.Session:
        core = botocore.session.Session()
        core.register_component("data_loader", self._loader)
        return boto3.Session(botocore_session=core, region_name=self.region, **credentials)

    def settings_env(self, **overrides: str) -> dict[str, str]:
        """The environment the service's settings read, pointing at the provisioned resources."""
        return {
            "AWS_REGION": self.region,
            "NEXUS_TABLE_NAME": self.central.table_name,
            "NEXUS_STATE_MACHINE_ARN": self.central.state_machine_arn,
            "NEXUS_SERVICE_ROLE_ARN": self.central.service_role_arn,
            **overrides,
        }


def install_patches(simulation: cloudformation.StackSimulation) -> None:
    lambda_runner.install()
    sts.install()
    cloudformation.install(simulation)


__all__ = ["CENTRAL_ACCOUNT", "SERVICE_ROLE_NAME", "LocalAws", "install_patches"]
