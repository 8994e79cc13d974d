"""Sessions in target accounts: AssumeRole with the target's external ID, per workflow step.

Credentials live only inside the boto3 session this returns and die with the step; they are never
returned to the caller, logged or stored.

Every session shares one botocore data loader (the service's own session's, handed over by the
composition root), so a step does not re-read botocore's endpoint data and service models from disk:
per rollout item that was most of the CPU (1.14 s -> 0.46 s measured locally) and of the memory of
concurrent executions. (A loader of its own per ``StsTargetAccess`` read them again for every set of
services built: in the test suite, every function of every local AWS, 2.8% of its CPU.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from chalicelib.adapters.cloudformation import CloudFormationGateway
from chalicelib.adapters.errors import aws_call
from chalicelib.domain.errors import DeployerError

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

MAX_SESSION_SECONDS = 3600  # a Lambda function is itself a role: AWS refuses more than an hour


def role_session(
    session: boto3.Session, role_arn: str, session_name: str, region: str, client_config: Config
) -> boto3.Session:
    """A session of another role of the service's own account, assumed with ``session``'s credentials on
    its first call and again before each expiry (an hour; a Lambda role may not chain longer)."""
    from botocore.credentials import DeferredRefreshableCredentials

    sts = session.client("sts", region_name=region, config=client_config)

    def assume() -> dict[str, str]:
        with aws_call("AssumeRole"):
            credentials = sts.assume_role(
                RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=MAX_SESSION_SECONDS
            )["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    core = botocore.session.Session()
    core._credentials = DeferredRefreshableCredentials(assume, "assume-role")  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=core, region_name=region)


class StsTargetAccess:
    def __init__(
        self,
        sts: STSClient,
        client_config: Config,
        session_seconds: int = 900,
        observe: Callable[[boto3.Session], boto3.Session] | None = None,
        loader: botocore.loaders.Loader | None = None,
    ) -> None:
        self._sts = sts
        self._config = client_config
        self._seconds = min(session_seconds, MAX_SESSION_SECONDS)
        self._loader = loader if loader is not None else botocore.loaders.create_loader()
        # Hooks each new session before its clients are made (counting throttles: adapters/retries.py).
        self._observe = observe

    def session(
        self, *, role_arn: str, external_id: str | None, session_name: str, region: str
    ) -> boto3.Session:
        kwargs: dict[str, object] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": self._seconds,
        }
        if external_id is not None:
            kwargs["ExternalId"] = external_id
        with aws_call("AssumeRole"):
            credentials = self._sts.assume_role(**kwargs)["Credentials"]  # type: ignore[arg-type]
        core = botocore.session.Session()
        core.register_component("data_loader", self._loader)
        session = boto3.Session(
            botocore_session=core,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
        # Each boto3.Session appends boto3's data directory to its loader's search paths: on the one
        # loader of a warm Lambda's every step, the list would grow by one path per target session.
        paths = self._loader.search_paths
        if paths and paths.count(paths[-1]) > 1:
            paths.pop()
        return self._observe(session) if self._observe is not None else session

    def refuses_without_external_id(self, *, role_arn: str, session_name: str) -> bool:
        """The confused-deputy check: AssumeRole with no ExternalId must be AccessDenied. The session
        of a role that accepts it is dropped at once, unused."""
        try:
            with aws_call("AssumeRole"):
                self._sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=900)
        except DeployerError as error:
            if error.code == "ACCESS_DENIED":
                return True
            raise
        return False

    def stacks(
        self, *, role_arn: str, external_id: str, session_name: str, region: str
    ) -> CloudFormationGateway:
        session = self.session(
            role_arn=role_arn, external_id=external_id, session_name=session_name, region=region
        )
        return CloudFormationGateway(session.client("cloudformation", config=self._config))
